package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/api"
)

// configYAML is what /api/v1/status/config serves: the running config
// (the last one loaded or reloaded) as YAML. Every secret of the config
// is a config.Secret, which marshals as "<secret>": passwords, bearer
// tokens and credentials, basic auth, oauth2 client secrets, inline TLS
// keys, secret HTTP headers (TestStatusConfigMasksSecrets).
func (g *gateway) configYAML() (string, error) {
	g.mu.Lock()
	cfg := g.cfg
	g.mu.Unlock()
	return marshalConfig(cfg)
}

func marshalConfig(cfg Config) (string, error) {
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("marshal config: %w", err)
	}
	return string(out), nil
}

// runtimeInfo returns /api/v1/status/runtimeinfo's data for a process
// that started at start.
func (g *gateway) runtimeInfo(start time.Time) func() api.RuntimeInfo {
	return func() api.RuntimeInfo {
		g.mu.Lock()
		retention := g.cfg.Retention
		g.mu.Unlock()
		ri := api.RuntimeInfo{
			StartTime:           start.UTC(),
			ReloadConfigSuccess: gaugeValue(g.reloads.success) == 1,
			LastConfigTime:      time.Unix(int64(gaugeValue(g.reloads.timestamp)), 0).UTC(),
			GoroutineCount:      runtime.NumGoroutine(),
			GOMAXPROCS:          runtime.GOMAXPROCS(0),
			GOMEMLIMIT:          debug.SetMemoryLimit(-1),
			GOGC:                os.Getenv("GOGC"),
			GODEBUG:             os.Getenv("GODEBUG"),
			StorageRetention:    retentionString(retention),
		}
		ri.CWD, _ = os.Getwd()
		ri.Hostname, _ = os.Hostname()
		return ri
	}
}

// retentionString writes the retention as Prometheus does ("15d"); it
// is always positive (tsdb.Options.Validate).
func retentionString(d Duration) string {
	return model.Duration(d).String()
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}
