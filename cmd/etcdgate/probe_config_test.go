package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/relabel"
)

func TestLoadProbeConfigFull(t *testing.T) {
	cfg, err := LoadConfig("testdata/probe/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Probe
	s := p.Settings()
	if !p.Enabled() || p.Concurrency != 8 || s.Health.MaxApplyLag != 500 || s.BigValues.Threshold != 512<<10 ||
		s.BigValues.Paging.PageSize != 200 || s.KeyCount.Paging.BytesPerSecond != 4<<20 || s.HotKeys.Window != 30*time.Second ||
		len(s.KeyCount.Prefixes) != 2 || s.HotKeys.MaxKeys != 5000 || p.MaxResponseBytes != 4<<20 ||
		s.BigValues.Paging.MaxKeys != 100000 || s.BigValues.MaxPrefixes != 20 || s.KeyCount.Paging.MaxKeys != 2000000 {
		t.Fatalf("loaded %+v", p)
	}
	so := p.SchedulerOptions(nil)
	if so.Jitter != 0.2 || so.MaxBackoff != 5*time.Minute || len(so.Plans) != 5 || so.Plans[1].Interval != 15*time.Second ||
		so.Plans[4].Timeout != 2*time.Minute {
		t.Fatalf("scheduler options %+v", so)
	}
	tc := p.Targets[0].TLS
	if tc.CAFile != "/etc/etcd/ca.pem" || tc.CertFile != filepath.Join("testdata/probe", "certs/client.pem") {
		t.Fatalf("tls paths are not relative to the config: %+v", tc)
	}

	reg := relabel.NewRegistry()
	recs, err := relabel.LoadRegistryFile(cfg.Registry.File)
	if err != nil {
		t.Fatal(err)
	}
	reg.SetFile(recs)
	reg.PutEtcd(&relabel.Record{Cluster: "etcd-new", Product: "search", Endpoints: []string{"https://10.1.0.1:2379"}})
	targets := p.ProbeTargets(reg)
	if len(targets) != 2 {
		t.Fatalf("targets %+v", targets)
	}
	// The configured target's labels win; the registry fills the rest.
	if l := targets[0].Labels; l["size"] != "small" || l["product"] != "payments" || l["region"] != "eu-west" || l["team"] != "storage" ||
		targets[0].Intervals["health"] != 10*time.Second || targets[0].TLS.ServerName != "etcd.local" {
		t.Fatalf("configured target %+v", targets[0])
	}
	if targets[1].Cluster != "etcd-new" || targets[1].Labels["product"] != "search" || targets[1].TLS.CertFile != filepath.Join("testdata/probe", "certs/probe.pem") {
		t.Fatalf("registry target %+v", targets[1])
	}
}

func TestLoadProbeConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Probe.Enabled() || len(cfg.Probe.ProbeTargets(nil)) != 0 || cfg.Probe.Settings().BigValues.Threshold != 100<<10 {
		t.Fatalf("default probe config %+v", cfg.Probe)
	}
}

// TestLoadProbeConfigBad checks that each bad probe section is refused
// with a message that names the problem.
func TestLoadProbeConfigBad(t *testing.T) {
	want := map[string]string{
		"unknown_inspection.bad.yml":     `probe: target "etcd-1": unknown inspection "hotkeys": want one of [consistency health big_values key_count hot_keys]`,
		"endpoint.bad.yml":               `probe: target "etcd-1": endpoint "127.0.0.1:2379": want http://host:port or https://host:port`,
		"duplicate_target.bad.yml":       `probe: duplicate target "etcd-1"`,
		"hot_keys_timeout.bad.yml":       "probe: hot_keys timeout 30s must exceed its window 1m0s",
		"registry_targets.bad.yml":       "probe: registry_targets needs registry.file or registry.etcd.endpoints",
		"threshold.bad.yml":              "probe: big_values: threshold must be positive",
		"page_size.bad.yml":              "probe: key_count: page_size 50000: want 1 to 10000",
		"concurrency.bad.yml":            "probe: concurrency 0: want at least 1",
		"unknown_key.bad.yml":            "line 5: field quota_ratio not found",
		"tls_pair.bad.yml":               `probe: target "etcd-1": tls cert_file and key_file go together`,
		"registry_allow_missing.bad.yml": "probe: registry_targets needs registry_endpoint_allow",
		"registry_allow_pattern.bad.yml": `probe: registry_endpoint_allow "10.0.0.1:2379": want http(s)://host:port`,
		"max_response.bad.yml":           "probe: max_response_bytes 1024: want at least 64 KiB",
		"max_keys.bad.yml":               "probe: big_values: max_keys 0: want at least 1",
	}
	checkBadConfigs(t, "testdata/probe/*.bad.yml", want)
}

// TestRegistryEndpointAllow: which registry endpoints each pattern lets
// the prober dial.
func TestRegistryEndpointAllow(t *testing.T) {
	for _, tc := range []struct {
		pattern, endpoint string
		want              bool
	}{
		{"https://*.etcd.internal:2379", "https://a.etcd.internal:2379", true},
		{"https://*.etcd.internal:2379", "https://A.ETCD.internal:2379/", true},
		{"https://*.etcd.internal:2379", "https://a.b.etcd.internal:2379", false},
		{"https://*.etcd.internal:2379", "https://etcd.internal:2379", false},
		{"https://*.etcd.internal:2379", "http://a.etcd.internal:2379", false},
		{"https://*.etcd.internal:2379", "https://a.etcd.internal:2380", false},
		{"https://*.etcd.internal:2379", "https://a.etcd.internal", false},
		{"https://*.etcd.internal:2379", "https://a.etcd.internal.evil.com:2379", false},
		{"https://*.etcd.internal:2379", "https://user:pw@a.etcd.internal:2379", false},
		{"https://*.etcd.internal:2379", "https://a.etcd.internal:2379/path", false},
		{"https://*.etcd.internal:2379", "https://a.etcd.internal:2379?x=1", false},
		{"https://*.etcd.internal:*", "https://a.etcd.internal:12379", true},
		{"http://10.1.*.*:2379", "http://10.1.2.3:2379", true},
		{"http://10.1.*.*:2379", "http://10.2.2.3:2379", false},
		{"http://etcd-*-eu.example:2379", "http://etcd-7-eu.example:2379", true},
		{"http://etcd-*-eu.example:2379", "http://etcd-eu.example:2379", false},
		{"http://127.0.0.1:2379", "http://127.0.0.1:2379", true},
		{"http://127.0.0.1:2379", "http://127.0.0.2:2379", false},
	} {
		p, err := parseEndpointPattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := p.match(tc.endpoint); got != tc.want {
			t.Errorf("%s matches %s: %v, want %v", tc.pattern, tc.endpoint, got, tc.want)
		}
	}
	for _, bad := range []string{"10.0.0.1:2379", "ftp://a:1", "https://a", "https://a:1/x", "https://u@a:1", "https://**.a:1", "https://a..b:1"} {
		if _, err := parseEndpointPattern(bad); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	// A cluster with one endpoint outside the list is refused whole.
	reg := relabel.NewRegistry()
	reg.PutEtcd(&relabel.Record{Cluster: "ok", Endpoints: []string{"https://a.etcd.internal:2379"}})
	reg.PutEtcd(&relabel.Record{Cluster: "mixed", Endpoints: []string{"https://a.etcd.internal:2379", "https://10.0.0.1:2379"}})
	c := ProbeConfig{RegistryTargets: true, RegistryEndpointAllow: []string{"https://*.etcd.internal:2379"}}
	targets, refused := c.probeTargets(reg)
	if len(targets) != 1 || targets[0].Cluster != "ok" || len(refused) != 1 || refused[0].Cluster != "mixed" {
		t.Fatalf("targets %+v, refused %+v", targets, refused)
	}
}
