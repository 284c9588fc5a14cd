package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if err != nil || empty != cfg {
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
		lim.MaxFutureDrift != time.Hour || lim.MaxDecompressedBodyBytes != 8<<20 ||
		cfg.DBOptions().WALSync != "interval" || cfg.DBOptions().Retention != 30*24*time.Hour ||
		cfg.HeadLimits().MaxSeries != 5000000 || cfg.DBOptions().StalenessPeriod != time.Hour {
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
		"wal_sync.bad.yml":                      `wal sync "always"`,
		"short_retention.bad.yml":               "retention 30m0s is shorter than the chunk range",
	}
	files, _ := filepath.Glob("testdata/*.bad.yml")
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
