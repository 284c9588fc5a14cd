package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddress != "127.0.0.1:9390" || cfg.DataDir != "./data" || cfg.DBOptions().Head.OutOfOrderWindow != 10*time.Minute ||
		cfg.HeadLimits().MaxBytes <= 0 || cfg.DBOptions().Retention != 15*24*time.Hour {
		t.Fatalf("defaults %+v", cfg)
	}
	empty, err := LoadConfig("testdata/empty.good.yml")
	if err != nil || !reflect.DeepEqual(empty, cfg) {
		t.Fatalf("empty file differs from defaults: %v %+v", err, empty)
	}
}

func TestLoadConfigFull(t *testing.T) {
	cfg, err := LoadConfig("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	lim := cfg.IngestLimits()
	if cfg.ListenAddress != "127.0.0.1:19999" || cfg.LogLevel != "debug" ||
		cfg.DBOptions().Head.OutOfOrderWindow != 30*time.Minute || lim.MaxLabelsPerSeries != 20 ||
		lim.MaxFutureDrift != time.Hour || lim.MaxDecompressedBodyBytes != 8<<20 || lim.MaxConcurrentWrites != 6 ||
		cfg.DBOptions().WALSync != "interval" || cfg.DBOptions().Retention != 30*24*time.Hour ||
		cfg.HeadLimits().MaxSeries != 5000000 || cfg.DBOptions().StalenessPeriod != time.Hour ||
		cfg.DBOptions().ShutdownCheckpointTimeout != 90*time.Second ||
		cfg.Query.EngineOptions() != (evaluator.Options{LookbackDelta: 2 * time.Minute, Timeout: 30 * time.Second, MaxSamples: 1000000, MaxSeries: 2000000, MaxConcurrent: 4,
			MaxPointsPerSeries: 11000, MaxSubquerySteps: 1000000, ParseLimits: evaluator.DefaultParseLimits()}) {
		t.Fatalf("loaded %+v", cfg)
	}
}

// TestLoadConfigBad checks that each bad file is refused with a message
// that says what is wrong, with a line number where YAML gives one.
func TestLoadConfigBad(t *testing.T) {
	want := map[string]string{
		"unknown_key.bad.yml":                   "line 4: field max_label_count not found",
		"bad_duration.bad.yml":                  "line 2",
		"bad_level.bad.yml":                     `log_level "loud"`,
		"negative_limit.bad.yml":                "max labels per series -1",
		"syntax.bad.yml":                        "line 3",
		"decompressed_below_compressed.bad.yml": "below max compressed body bytes",
		"concurrent_writes.bad.yml":             "max concurrent writes 0 must be positive",
		"wal_sync.bad.yml":                      `wal sync "always"`,
		"query_limit.bad.yml":                   "query: max_samples must be positive",
		"short_retention.bad.yml":               "retention 30m0s is shorter than the chunk range",
		"chunk_cache.bad.yml":                   "chunk cache bytes -1 is negative",
		"store_compression.bad.yml":             `store compression "lz4": want none, snappy or zstd`,
		"relabel_rule.bad.yml":                  "line 4: relabel config: relabel configuration for hashmod requires non-zero modulus",
		"relabel_unknown_key.bad.yml":           "line 6: field target_lable not found in relabel config",
		"registry_size.bad.yml":                 `registry/bad_size.yml: line 4: cluster "etcd-pay-eu-2": unknown size "medium"`,
		"registry_duplicate.bad.yml":            `registry/duplicate.yml: line 3: duplicate cluster "etcd-pay-eu-1" (first at line 2)`,
		"size_rule.bad.yml":                     "size rule etcd_mvcc_db_total_size_in_bytes: small_below 4.294967296e+09 and large_from 1.048576e+08",
		"metadata_per_metric.bad.yml":           "metadata: max per metric 0 outside 1..1000",
	}
	// rules_*.bad.yml are checked by TestRulesConfigErrors.
	checkBadConfigs(t, "testdata/*.bad.yml", want, "rules_")
}

func TestLoadConfigRelabel(t *testing.T) {
	cfg, err := LoadConfig("testdata/relabel.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	rc := cfg.RelabelConfig()
	if !cfg.RelabelEnabled() || len(rc.RelabelConfigs) != 2 || len(rc.Sources) != 1 || rc.Sources[0].RelabelConfigs[0].Line != 13 ||
		rc.ClusterLabel != "etcd_cluster" || rc.Defaults["scenario"] != "unassigned" || rc.Defaults["size"] != "small" ||
		len(rc.SizeRules) != 2 || cfg.Registry.File != "testdata/registry/clusters.yml" ||
		cfg.Registry.Etcd.Prefix != "/registry/etcd-clusters/" || len(cfg.Registry.Etcd.Endpoints) != 1 {
		t.Fatalf("loaded %+v", cfg)
	}
	if def, _ := LoadConfig(""); def.RelabelEnabled() || def.RelabelConfig().Defaults["size"] != "default" {
		t.Fatalf("defaults enable relabeling: %+v", def.Registry)
	}
}

func TestCheckConfigCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "config", "testdata/full.good.yml", "testdata/empty.good.yml"}, &out, &errOut); code != 0 {
		t.Fatalf("good files: exit %d: %s", code, errOut.String())
	}
	if strings.Count(out.String(), "SUCCESS") != 2 {
		t.Fatalf("output %q", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"check", "config", "testdata/full.good.yml", "testdata/bad_level.bad.yml"}, &out, &errOut); code != 1 {
		t.Fatalf("bad file: exit %d", code)
	}
	if !strings.Contains(errOut.String(), "FAILED") || !strings.Contains(errOut.String(), "bad_level.bad.yml") {
		t.Fatalf("stderr %q", errOut.String())
	}
	if code := run([]string{"check", "rules"}, &out, &errOut); code != 2 {
		t.Fatalf("usage error: exit %d", code)
	}
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func TestCheckRegistryCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "registry", "testdata/registry/clusters.yml", "testdata/registry/bad_size.yml"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), "SUCCESS: testdata/registry/clusters.yml is valid cluster registry") ||
		!strings.Contains(errOut.String(), `line 4: cluster "etcd-pay-eu-2": unknown size "medium"`) {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

// TestReloadRelabel checks the reload wiring: a broken registry file is
// refused and the previous clusters stay; a good edit and new rules are
// applied without a restart.
func TestReloadRelabel(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etcdgate.yml", "data_dir: "+dir+"\nregistry: {file: clusters.yml}\n")
	write("clusters.yml", "clusters: [{cluster: a, product: one}]\n")
	flags := serveFlags{configFile: filepath.Join(dir, "etcdgate.yml")}
	cfg, err := flags.load()
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGateway(cfg, flags, slog.New(slog.DiscardHandler), new(slog.LevelVar))
	if err != nil {
		t.Fatal(err)
	}
	product := func() string {
		out, _, _ := g.relabel.Relabel(labels.FromStrings("__name__", "up", "cluster", "a", "job", "etcd"))
		return out.Get("product")
	}
	if product() != "one" {
		t.Fatal("registry not loaded at start")
	}
	write("clusters.yml", "clusters: [{cluster: a, product: two}, {cluster: a}]\n")
	if err := g.reload(); err == nil || !strings.Contains(err.Error(), "duplicate cluster") {
		t.Fatalf("reload error %v", err)
	}
	if product() != "one" {
		t.Fatal("a refused registry changed the labels")
	}
	write("clusters.yml", "clusters: [{cluster: a, product: two}]\n")
	write("etcdgate.yml", "data_dir: "+dir+"\nregistry: {file: clusters.yml}\nrelabel_configs: [{regex: job, action: labeldrop}]\n")
	if err := g.reload(); err != nil {
		t.Fatal(err)
	}
	out, _, _ := g.relabel.Relabel(labels.FromStrings("__name__", "up", "cluster", "a", "job", "etcd"))
	if out.Get("product") != "two" || out.Get("job") != "" {
		t.Fatalf("after reload: %s", out)
	}
}

// checkBadConfigs loads every file glob matches, but those whose names
// start with skip, and checks that each is refused with the message want
// gives for its name, and that every file has an expectation.
func checkBadConfigs(t *testing.T, glob string, want map[string]string, skip ...string) {
	t.Helper()
	all, _ := filepath.Glob(glob)
	files := slices.DeleteFunc(all, func(f string) bool {
		return slices.ContainsFunc(skip, func(p string) bool { return strings.HasPrefix(filepath.Base(f), p) })
	})
	if len(files) != len(want) {
		t.Fatalf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		_, err := LoadConfig(f)
		if err == nil || !strings.Contains(err.Error(), want[filepath.Base(f)]) {
			t.Errorf("%s: error %v, want it to contain %q", f, err, want[filepath.Base(f)])
		}
	}
}
