package main

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"time"

	"github.com/etcdgate/etcdgate/probe"
	"github.com/etcdgate/etcdgate/relabel"
)

// ProbeConfig is the probe: section: which etcd clusters are inspected,
// how often and how hard. Targets are reloadable; the rest changes on
// restart.
type ProbeConfig struct {
	// Targets are clusters to inspect, besides those of the registry.
	Targets []ProbeTargetConfig `yaml:"targets"`
	// RegistryTargets inspects every registry cluster that lists
	// endpoints, with RegistryTLS.
	RegistryTargets bool           `yaml:"registry_targets"`
	RegistryTLS     ProbeTLSConfig `yaml:"registry_tls"`
	// RegistryEndpointAllow lists the endpoint patterns registry targets
	// may be dialed at (probe_allow.go); registry_targets needs it. A
	// cluster with an endpoint outside it is refused, never dialed.
	RegistryEndpointAllow []string `yaml:"registry_endpoint_allow"`
	// Concurrency bounds the runs in progress across all targets.
	Concurrency int `yaml:"concurrency"`
	// Jitter spreads each interval by up to this fraction.
	Jitter float64 `yaml:"jitter"`
	// MaxBackoff bounds how far failing runs of a target are spaced out.
	MaxBackoff Duration `yaml:"max_backoff"`
	// RecordRetention is how long records are served by
	// /api/v1/inspections; MaxRecords bounds how many are kept.
	RecordRetention Duration          `yaml:"record_retention"`
	MaxRecords      int               `yaml:"max_records"`
	Inspections     InspectionsConfig `yaml:"inspections"`
	// MaxResponseBytes bounds one answer of an etcd member: a larger one
	// is refused before it is read (a keyspace scan asks for fewer keys).
	MaxResponseBytes int `yaml:"max_response_bytes"`
}

// ProbeTargetConfig is one etcd cluster to inspect.
type ProbeTargetConfig struct {
	Cluster   string         `yaml:"cluster"`
	Endpoints []string       `yaml:"endpoints"`
	TLS       ProbeTLSConfig `yaml:"tls"`
	// Labels are product, scenario, size, region and extras; those not
	// given come from the registry's entry for the cluster.
	Labels map[string]string `yaml:"labels"`
	// Inspections to run (default all) and per-inspection intervals.
	Inspections []string            `yaml:"inspections"`
	Intervals   map[string]Duration `yaml:"intervals"`
}

// ProbeTLSConfig names PEM files.
type ProbeTLSConfig struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

func (c ProbeTLSConfig) tls() probe.TLSConfig {
	return probe.TLSConfig{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ServerName: c.ServerName}
}

// InspectionsConfig configures each inspection.
type InspectionsConfig struct {
	Consistency ScheduleConfig  `yaml:"consistency"`
	Health      HealthConfig    `yaml:"health"`
	BigValues   BigValuesConfig `yaml:"big_values"`
	KeyCount    KeyCountConfig  `yaml:"key_count"`
	HotKeys     HotKeysConfig   `yaml:"hot_keys"`
}

// ScheduleConfig is when an inspection runs and how long it may take.
type ScheduleConfig struct {
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
}

type HealthConfig struct {
	ScheduleConfig `yaml:",inline"`
	QuotaWarnRatio float64 `yaml:"quota_warn_ratio"`
	MaxApplyLag    uint64  `yaml:"max_apply_lag"`
}

// PagingConfig bounds keyspace scans.
type PagingConfig struct {
	PageSize       int64 `yaml:"page_size"`
	BytesPerSecond int64 `yaml:"bytes_per_second"`
	MaxKeys        int64 `yaml:"max_keys"`
}

type BigValuesConfig struct {
	ScheduleConfig `yaml:",inline"`
	PagingConfig   `yaml:",inline"`
	ThresholdBytes int64    `yaml:"threshold_bytes"`
	TopN           int      `yaml:"top_n"`
	Prefixes       []string `yaml:"prefixes"`
	MaxPrefixes    int      `yaml:"max_prefixes"`
}

type KeyCountConfig struct {
	ScheduleConfig `yaml:",inline"`
	PagingConfig   `yaml:",inline"`
	Prefixes       []string `yaml:"prefixes"`
	MaxPrefixes    int      `yaml:"max_prefixes"`
}

type HotKeysConfig struct {
	ScheduleConfig      `yaml:",inline"`
	Window              Duration `yaml:"window"`
	TopN                int      `yaml:"top_n"`
	Prefixes            []string `yaml:"prefixes"`
	WarnWritesPerSecond float64  `yaml:"warn_writes_per_second"`
	MaxKeys             int      `yaml:"max_keys"`
}

// defaultProbeConfig inspects nothing until targets are configured; the
// intervals suit a fleet: cheap checks often, keyspace scans rarely.
func defaultProbeConfig() ProbeConfig {
	s, so := probe.DefaultSettings(), probe.DefaultSchedulerOptions()
	paging := PagingConfig(s.BigValues.Paging)
	sched := func(interval, timeout time.Duration) ScheduleConfig {
		return ScheduleConfig{Interval: Duration(interval), Timeout: Duration(timeout)}
	}
	return ProbeConfig{
		Concurrency:      so.Concurrency,
		Jitter:           so.Jitter,
		MaxBackoff:       Duration(so.MaxBackoff),
		RecordRetention:  Duration(24 * time.Hour),
		MaxRecords:       100000,
		MaxResponseBytes: probe.DefaultMaxResponseBytes,
		Inspections: InspectionsConfig{
			Consistency: sched(5*time.Minute, time.Minute),
			Health: HealthConfig{ScheduleConfig: sched(30*time.Second, 10*time.Second),
				QuotaWarnRatio: s.Health.QuotaWarnRatio, MaxApplyLag: s.Health.MaxApplyLag},
			BigValues: BigValuesConfig{ScheduleConfig: sched(time.Hour, 10*time.Minute), PagingConfig: paging,
				ThresholdBytes: s.BigValues.Threshold, TopN: s.BigValues.TopN, MaxPrefixes: s.BigValues.MaxPrefixes},
			KeyCount: KeyCountConfig{ScheduleConfig: sched(10*time.Minute, 5*time.Minute), PagingConfig: paging,
				MaxPrefixes: s.KeyCount.MaxPrefixes},
			HotKeys: HotKeysConfig{ScheduleConfig: sched(10*time.Minute, time.Minute), Window: Duration(s.HotKeys.Window),
				TopN: s.HotKeys.TopN, WarnWritesPerSecond: s.HotKeys.WarnWritesPerSecond, MaxKeys: s.HotKeys.MaxKeys},
		},
	}
}

// Enabled reports whether anything is to be inspected.
func (c ProbeConfig) Enabled() bool { return len(c.Targets) > 0 || c.RegistryTargets }

// Settings translates the inspections' settings.
func (c ProbeConfig) Settings() probe.Settings {
	in := c.Inspections
	return probe.Settings{
		Health: probe.Health{QuotaWarnRatio: in.Health.QuotaWarnRatio, MaxApplyLag: in.Health.MaxApplyLag},
		BigValues: probe.BigValues{Threshold: in.BigValues.ThresholdBytes, TopN: in.BigValues.TopN, Prefixes: in.BigValues.Prefixes,
			MaxPrefixes: in.BigValues.MaxPrefixes, Paging: probe.Paging(in.BigValues.PagingConfig)},
		KeyCount: probe.KeyCount{Prefixes: in.KeyCount.Prefixes, MaxPrefixes: in.KeyCount.MaxPrefixes,
			Paging: probe.Paging(in.KeyCount.PagingConfig)},
		HotKeys: probe.HotKeys{Window: time.Duration(in.HotKeys.Window), TopN: in.HotKeys.TopN, Prefixes: in.HotKeys.Prefixes,
			WarnWritesPerSecond: in.HotKeys.WarnWritesPerSecond, MaxKeys: in.HotKeys.MaxKeys},
	}
}

// schedules returns each inspection's schedule by name.
func (c ProbeConfig) schedules() map[string]ScheduleConfig {
	in := c.Inspections
	return map[string]ScheduleConfig{"consistency": in.Consistency, "health": in.Health.ScheduleConfig,
		"big_values": in.BigValues.ScheduleConfig, "key_count": in.KeyCount.ScheduleConfig, "hot_keys": in.HotKeys.ScheduleConfig}
}

// SchedulerOptions translates the scheduling settings; targets come from
// the function given.
func (c ProbeConfig) SchedulerOptions(targets func() []probe.Target) probe.SchedulerOptions {
	o := probe.DefaultSchedulerOptions()
	o.Concurrency, o.Jitter, o.MaxBackoff, o.Targets = c.Concurrency, c.Jitter, time.Duration(c.MaxBackoff), targets
	sched := c.schedules()
	for _, in := range c.Settings().All() {
		s := sched[in.Name()]
		o.Plans = append(o.Plans, probe.Plan{Inspection: in, Interval: time.Duration(s.Interval), Timeout: time.Duration(s.Timeout)})
	}
	return o
}

// Validate reports the first invalid probe setting.
func (c ProbeConfig) Validate() error {
	if err := c.Settings().Validate(); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if err := c.SchedulerOptions(func() []probe.Target { return nil }).Validate(); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if c.Inspections.HotKeys.Timeout <= c.Inspections.HotKeys.Window {
		return fmt.Errorf("probe: hot_keys timeout %s must exceed its window %s",
			time.Duration(c.Inspections.HotKeys.Timeout), time.Duration(c.Inspections.HotKeys.Window))
	}
	if c.RecordRetention <= 0 || c.MaxRecords < 1 {
		return errors.New("probe: record_retention and max_records must be positive")
	}
	if c.MaxResponseBytes < 64<<10 {
		return fmt.Errorf("probe: max_response_bytes %d: want at least 64 KiB", c.MaxResponseBytes)
	}
	if _, err := compileEndpointAllowList(c.RegistryEndpointAllow); err != nil {
		return err
	}
	if c.RegistryTargets && len(c.RegistryEndpointAllow) == 0 {
		return errors.New("probe: registry_targets needs registry_endpoint_allow: the endpoint patterns registry clusters may be probed at")
	}
	seen := map[string]bool{}
	for _, tc := range c.Targets {
		t := tc.target()
		if err := t.Validate(probe.Names()); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		if seen[t.Cluster] {
			return fmt.Errorf("probe: duplicate target %q", t.Cluster)
		}
		seen[t.Cluster] = true
	}
	return nil
}

func (tc ProbeTargetConfig) target() probe.Target {
	t := probe.Target{Cluster: tc.Cluster, Endpoints: tc.Endpoints, TLS: tc.TLS.tls(), Labels: maps.Clone(tc.Labels),
		Inspections: tc.Inspections}
	if len(tc.Intervals) > 0 {
		t.Intervals = make(map[string]time.Duration, len(tc.Intervals))
		for n, d := range tc.Intervals {
			t.Intervals[n] = time.Duration(d)
		}
	}
	return t
}

// ProbeTargets returns the configured targets, their missing standard
// labels filled from the registry, then the registry's clusters that
// list endpoints (when registry_targets is on), are not configured and
// whose endpoints are all in registry_endpoint_allow. reg may be nil.
func (c ProbeConfig) ProbeTargets(reg *relabel.Registry) []probe.Target {
	out, _ := c.probeTargets(reg)
	return out
}

// probeTargets is ProbeTargets with the registry clusters refused by the
// allow-list.
func (c ProbeConfig) probeTargets(reg *relabel.Registry) ([]probe.Target, []refusedTarget) {
	out := make([]probe.Target, 0, len(c.Targets))
	configured := make(map[string]bool, len(c.Targets))
	for _, tc := range c.Targets {
		t := tc.target()
		if reg != nil {
			if rec := reg.Lookup(t.Cluster); rec != nil {
				t.Labels = mergeLabels(registryLabels(rec), t.Labels)
			}
		}
		configured[t.Cluster] = true
		out = append(out, t)
	}
	if !c.RegistryTargets || reg == nil {
		return out, nil
	}
	allow, err := compileEndpointAllowList(c.RegistryEndpointAllow)
	if err != nil || len(allow) == 0 {
		allow = nil // Validate refuses both; allow nothing
	}
	var refused []refusedTarget
	for id, rec := range reg.Records() {
		if configured[id] || len(rec.Endpoints) == 0 {
			continue
		}
		if !allow.allows(rec.Endpoints) {
			refused = append(refused, refusedTarget{Cluster: id, Endpoints: rec.Endpoints})
			continue
		}
		t := probe.Target{Cluster: id, Endpoints: rec.Endpoints, TLS: c.RegistryTLS.tls(), Labels: registryLabels(rec)}
		if t.Validate(probe.Names()) == nil {
			out = append(out, t)
		}
	}
	return out, refused
}

// registryLabels are the labels a registry entry gives a target.
func registryLabels(rec *relabel.Record) map[string]string {
	ls := maps.Clone(rec.Labels)
	if ls == nil {
		ls = map[string]string{}
	}
	for n, v := range map[string]string{"product": rec.Product, "scenario": rec.Scenario, "size": rec.Size, "region": rec.Region} {
		if v != "" {
			ls[n] = v
		}
	}
	return ls
}

// mergeLabels returns base overlaid with over.
func mergeLabels(base, over map[string]string) map[string]string {
	maps.Copy(base, over)
	return base
}

// resolvePaths makes TLS files relative to the config file's directory,
// as the registry file is.
func (c *ProbeConfig) resolvePaths(dir string) {
	resolveTLSPaths(&c.RegistryTLS, dir)
	for i := range c.Targets {
		resolveTLSPaths(&c.Targets[i].TLS, dir)
	}
}

// resolveTLSPaths makes t's relative files relative to dir.
func resolveTLSPaths(t *ProbeTLSConfig, dir string) {
	for _, p := range []*string{&t.CAFile, &t.CertFile, &t.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}
