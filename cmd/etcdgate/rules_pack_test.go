package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/tsdb"
)

const packConfig = "../../deploy/rules/etcdgate.yml"

// TestRulePackPassesPromtool: the default pack with its compiled
// thresholds and SLO rules loads in Debian's Prometheus 2.42.
func TestRulePackPassesPromtool(t *testing.T) {
	promtool := testbin.Promtool(t)
	cfg, err := LoadConfig(packConfig)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rules.Marshal(cfg.groups)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pack.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, res)
	}
}

// packMember is one etcd member of the pack scenario: its fsyncs take
// p99 ≈ 0.448 s (96% under 0.256 s, the rest under 0.512 s).
type packMember struct{ cluster, scenario, size string }

func (m packMember) labels(name string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{"__name__", name, "cluster", m.cluster, "instance", m.cluster + "-0",
		"job", "etcd", "product", "pay", "region", "eu", "scenario", m.scenario, "size", m.size}, kv...)...)
}

func appendPackSeries(t *testing.T, head *tsdb.Head, members []packMember, steps int, step time.Duration) {
	t.Helper()
	app := head.Appender()
	for i := range steps {
		ts := int64(i) * step.Milliseconds()
		for _, m := range members {
			for _, s := range []struct {
				ls labels.Labels
				v  float64
			}{
				{m.labels("etcd_server_has_leader"), 1},
				{m.labels("up"), 1},
				{m.labels("etcd_disk_wal_fsync_duration_seconds_bucket", "le", "0.256"), float64(96 * i)},
				{m.labels("etcd_disk_wal_fsync_duration_seconds_bucket", "le", "0.512"), float64(100 * i)},
				{m.labels("etcd_disk_wal_fsync_duration_seconds_bucket", "le", "+Inf"), float64(100 * i)},
			} {
				if err := app.Append(s.ls, ts, s.v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestRulePackThresholdsByScenario runs the default pack over four
// clusters whose disks are equally slow (fsync p99 ≈ 0.45 s): the
// threshold tables make EtcdHighFsyncDurations fire for the business
// cluster (0.25 s) and the large one (0.4 s), not for the platform
// cluster (1 s) nor the default one (0.5 s), with one rule for all.
func TestRulePackThresholdsByScenario(t *testing.T) {
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	members := []packMember{
		{"biz", "business", "large"}, {"plat", "platform", "default"},
		{"big", "unknown", "large"}, {"plain", "unknown", "default"},
	}
	step := 30 * time.Second
	appendPackSeries(t, head, members, 30, step)
	m := packManager(t, head)
	ctx := context.Background()
	for i := range 30 {
		for _, g := range m.Groups() {
			g.Eval(ctx, time.UnixMilli(0).Add(time.Duration(i)*step))
			if i == 0 {
				g.RestoreForState(ctx, time.UnixMilli(0))
			}
		}
	}
	var firing []string
	for _, g := range m.Groups() {
		for _, r := range g.Rules() {
			if h := r.Health(); h.Health != rules.HealthGood {
				t.Errorf("rule %s of %s: %s %s", r.Name(), g.Name(), h.Health, h.LastError)
			}
			ar, ok := r.(*rules.AlertingRule)
			if !ok || ar.Name() != "EtcdHighFsyncDurations" {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					firing = append(firing, a.Labels.Get("cluster"))
				}
			}
		}
	}
	sort.Strings(firing)
	if strings.Join(firing, " ") != "big biz" {
		t.Fatalf("EtcdHighFsyncDurations firing for %q, want big and biz", firing)
	}
}

// packManager runs the default pack (thresholds, rules, SLOs) over head
// with the real engine; the caller drives the groups (Options.Manual).
func packManager(tb testing.TB, head *tsdb.Head) *rules.Manager {
	tb.Helper()
	cfg, err := LoadConfig(packConfig)
	if err != nil {
		tb.Fatal(err)
	}
	opts := rules.DefaultOptions()
	opts.Query = rules.EngineQueryFunc(evaluator.NewEngine(head, evaluator.Options{}))
	opts.Appendable, opts.Queryable, opts.Manual = rules.TSDBAppendable{Store: head}, head, true
	m, err := rules.NewManager(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Stop)
	if err := m.Update(cfg.groups); err != nil {
		tb.Fatal(err)
	}
	return m
}
