package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
	"github.com/etcdgate/etcdgate/probe"
)

func TestProbeCommand(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
	if _, err := c.Client(t).Put(t.Context(), "/registry/pods/ns/p", "v"); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(t)
	eps := strings.Join(c.Endpoints(), ",")
	var out, errb bytes.Buffer
	code := run([]string{"probe", "--target", eps, "--inspection", "consistency", "--cluster", "etcd-cli", "--series"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "status:     success") ||
		!strings.Contains(out.String(), "message:    total key num is 1, nodeKeyDiff is 0, 3 members compared") ||
		!strings.Contains(out.String(), `etcdgate_inspection_success{cluster="etcd-cli",inspection="consistency"} 1`) {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}

	out.Reset()
	code = run([]string{"probe", "--target", eps, "--inspection", "key_count", "--output", "json"}, &out, &errb)
	var rec probe.Record
	if err := json.Unmarshal(out.Bytes(), &rec); code != 0 || err != nil || rec.Status != probe.StatusSuccess ||
		rec.Cluster != strings.TrimPrefix(c.Endpoints()[0], "http://") || rec.Requests == 0 {
		t.Fatalf("exit %d, %v: %+v\n%s", code, err, rec, errb.String())
	}

	out.Reset()
	gone := etcdtest.FreeURL(t, "http")
	code = run([]string{"probe", "--target", gone.String(), "--inspection", "health", "--timeout", "2s"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "status:     failed") || !strings.Contains(out.String(), "connection refused") {
		t.Fatalf("unreachable: exit %d\n%s", code, out.String())
	}
}

func TestProbeCommandBadFlags(t *testing.T) {
	for want, args := range map[string][]string{
		"--target and --inspection are required":                      {"--inspection", "health"},
		`--inspection: unknown inspection "hotkeys": want one of`:     {"--target", "http://127.0.0.1:2379", "--inspection", "hotkeys"},
		`--output "yaml": want text or json`:                          {"--target", "http://a:1", "--inspection", "health", "--output", "yaml"},
		`--target "etcd-x": neither a list of URLs`:                   {"--target", "etcd-x", "--inspection", "health"},
		`--target: target "ftp:": endpoint "ftp://a:1": want http://`: {"--target", "ftp://a:1", "--inspection", "health", "--cluster", "ftp:"},
		"--timeout -1s: must be positive":                             {"--target", "http://a:1", "--inspection", "health", "--timeout", "-1s"},
		"tls cert_file and key_file go together":                      {"--target", "https://a:1", "--inspection", "health", "--cert-file", "c.pem"},
		"read config: open /nonexistent.yml":                          {"--target", "http://a:1", "--inspection", "health", "--config", "/nonexistent.yml"},
		"flag provided but not defined: -endpoints":                   {"--endpoints", "http://a:1"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"probe"}, args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", args, code, errb.String(), want)
		}
	}
}

// TestServeProbe runs the gateway with a probe target: its inspections
// show at /api/v1/inspections, their series are stored, and the
// scheduler's metrics are exposed.
func TestServeProbe(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
	cfgPath := filepath.Join(t.TempDir(), "etcdgate.yml")
	cfg := fmt.Sprintf(`probe:
  targets:
    - cluster: etcd-serve
      endpoints: [%s]
      labels: {product: payments, region: eu-west}
      inspections: [health, consistency]
  inspections:
    health: {interval: 500ms, timeout: 5s}
    consistency: {interval: 500ms, timeout: 5s}
`, strings.Join(c.Endpoints(), ", "))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, base := startGateway(t, "--config", cfgPath)
	waitFor(t, 20*time.Second, "a consistency record", func() bool {
		_, body := httpGet(base + "/api/v1/inspections?cluster=etcd-serve&inspection=consistency")
		return strings.Contains(body, `"status":"success","message":"total key num is 0, nodeKeyDiff is 0`)
	})
	sel := url.QueryEscape(`etcdgate_inspection_success{cluster="etcd-serve",inspection="health",product="payments"}`)
	waitFor(t, 20*time.Second, "stored inspection series", func() bool {
		code, body := httpGet(base + "/api/v1/series?match[]=" + sel)
		return code == http.StatusOK && strings.Contains(body, `"region":"eu-west"`)
	})
	if v := metricValue(t, base, `etcdgate_probe_runs_total{inspection="health",status="success"}`); v == "" || v == "0" {
		t.Fatalf("etcdgate_probe_runs_total = %q", v)
	}
	if code, body := httpGet(base + "/api/v1/inspections?status=fine"); code != http.StatusBadRequest || !strings.Contains(body, "want success, warning or failed") {
		t.Fatalf("bad status filter: %d %s", code, body)
	}
	if err := p.stop(30 * time.Second); err != nil {
		t.Fatalf("shutdown with the probe running: %v", err)
	}
}
