package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/bench"
)

// TestBenchAgainstGateways runs the real `etcdgate bench` against two
// freshly started gateways and checks the report's figures against the
// gateways' own counters: every sample the report says was accepted was
// counted by the gateway, and every series written is in its head.
func TestBenchAgainstGateways(t *testing.T) {
	gw1, url1 := startGateway(t)
	_, url2 := startGateway(t)
	jsonPath, svgPath := filepath.Join(t.TempDir(), "report.json"), filepath.Join(t.TempDir(), "report.svg")
	cmd := exec.Command(gatewayBinary, "bench",
		"--target", "one="+url1, "--target", "two="+url2+"/api/v1/write", "--pid", "one="+strconv.Itoa(gw1.cmd.Process.Pid),
		"--clusters", "2", "--members", "3", "--interval", "500ms", "--duration", "2s", "--senders", "2",
		"--sample-every", "500ms", "--progress", "plain", "--progress-every", "1s",
		"--out-json", jsonPath, "--out-svg", svgPath)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("etcdgate bench: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "| figure | one | two | two / one |") {
		t.Fatalf("no comparison table on stdout:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "one steady") {
		t.Fatalf("no progress on stderr:\n%s", stderr.String())
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 2 {
		t.Fatalf("%d targets in the report", len(rep.Targets))
	}
	for i, url := range []string{url1, url2} {
		tr := rep.Targets[i]
		accepted, _ := strconv.ParseInt(metricValue(t, url, "etcdgate_ingest_samples_accepted_total"), 10, 64)
		head, _ := strconv.ParseInt(metricValue(t, url, "etcdgate_tsdb_head_series"), 10, 64)
		if tr.SamplesAccepted == 0 || tr.SamplesAccepted != accepted || tr.SamplesSent != accepted {
			t.Errorf("%s: report sent %d, accepted %d; the gateway counted %d accepted", tr.Name, tr.SamplesSent, tr.SamplesAccepted, accepted)
		}
		if tr.SeriesCreated == nil || int64(*tr.SeriesCreated) != head || tr.SeriesWritten != head || int(head) != rep.Fleet.Series {
			t.Errorf("%s: report wrote %d series, created %v; the gateway holds %d; the fleet has %d",
				tr.Name, tr.SeriesWritten, tr.SeriesCreated, head, rep.Fleet.Series)
		}
		if tr.TargetIngested == nil || int64(*tr.TargetIngested) != accepted || tr.RSSBytes == nil || tr.BytesPerSeries == nil {
			t.Errorf("%s: target figures missing: ingested %v, rss %v, bytes/series %v", tr.Name, tr.TargetIngested, tr.RSSBytes, tr.BytesPerSeries)
		}
		if len(tr.Requests) != 1 || tr.Requests["204"] == 0 {
			t.Errorf("%s: requests by code %v, want only 204s", tr.Name, tr.Requests)
		}
	}
	if svg, err := os.ReadFile(svgPath); err != nil || !strings.HasPrefix(string(svg), "<svg") {
		t.Fatalf("SVG: %v", err)
	}
}

func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		check func(o bench.Options) bool
		err   string
	}{
		{"scenario sets defaults", []string{"--scenario", "standard", "--target", "a=http://x"},
			func(o bench.Options) bool {
				return o.Fleet.Series == 1_000_000 && o.Duration == 5*time.Minute && o.Scenario == "standard"
			}, ""},
		{"the ten-million scenario", []string{"--scenario", "10m", "--target", "a=http://x"},
			func(o bench.Options) bool {
				return o.Fleet.Series == 10_000_000 && o.Duration == 4*time.Minute && o.Scenario == "10m" && o.Send.Senders == 64
			}, ""},
		{"flags override the scenario", []string{"--scenario=standard", "--duration", "1m", "--target", "a=http://x"},
			func(o bench.Options) bool { return o.Fleet.Series == 1_000_000 && o.Duration == time.Minute }, ""},
		{"targets and pids", []string{"--target", "a=http://x", "--target", "b=http://y", "--pid", "b=42"},
			func(o bench.Options) bool {
				return len(o.Targets) == 2 && o.Targets[0].PID == 0 && o.Targets[1].PID == 42
			}, ""},
		{"an unnamed pid for one target", []string{"--target", "a=http://x", "--pid", "7"},
			func(o bench.Options) bool { return o.Targets[0].PID == 7 }, ""},
		{"max rss with a unit", []string{"--mode", "ramp", "--max-rss", "1.5GiB", "--target", "a=http://x"},
			func(o bench.Options) bool { return o.Mode == bench.ModeRamp && o.Ramp.MaxRSS == 3<<29 }, ""},
		{"as fast as possible", []string{"--interval", "0", "--target", "a=http://x"},
			func(o bench.Options) bool { return o.Send.Interval == 0 }, ""},
		{"no target", nil, nil, "no target"},
		{"bad target", []string{"--target", "nourl"}, nil, "want NAME=URL"},
		{"unknown mode", []string{"--mode", "sprint", "--target", "a=http://x"}, nil, "unknown mode"},
		{"unknown scenario", []string{"--scenario", "huge", "--target", "a=http://x"}, nil, "unknown scenario"},
		{"unnamed pid with two targets", []string{"--target", "a=http://x", "--target", "b=http://y", "--pid", "7"}, nil, "no such target"},
		{"bad size", []string{"--max-rss", "lots", "--target", "a=http://x"}, nil, "bad size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _, err := parseBenchFlags(append([]string{"--progress", "off"}, tc.args...), io.Discard)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "" && !tc.check(o):
				t.Fatalf("options %+v", o)
			}
		})
	}
}
