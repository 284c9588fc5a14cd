package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// prometheusBinary finds Debian's prometheus; the test fails without it.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	return testbin.Prometheus(t)
}

// seriesOf asks a Prometheus-compatible API for the label sets matching
// match, sorted as the API returns them.
func seriesOf(t *testing.T, base, match string) []map[string]string {
	t.Helper()
	code, body := httpGet(base + "/api/v1/series?" + url.Values{"match[]": {match}}.Encode())
	if code != http.StatusOK {
		return nil
	}
	var resp struct {
		Status string              `json:"status"`
		Data   []map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Status != "success" {
		t.Fatalf("series from %s: %v %s", base, err, body)
	}
	return resp.Data
}

// TestPrometheusRemoteWrite is the first acceptance test of the write
// path: Debian's Prometheus scrapes itself and etcdgate and remote-writes
// everything to etcdgate, which must then list the series Prometheus
// scraped, with no sample refused.
func TestPrometheusRemoteWrite(t *testing.T) {
	promBin := prometheusBinary(t)
	_, gw := startGateway(t)

	promPort := testnet.FreePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
  external_labels:
    replica: itest
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:%d"]}]
  - job_name: etcdgate
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
`, promPort, gw[len("http://"):], gw)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := startProcess(t, promBin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort),
		"--storage.remote.flush-deadline=5s",
	)
	promURL := fmt.Sprintf("http://127.0.0.1:%d", promPort)

	waitFor(t, 90*time.Second, "both jobs' up series in etcdgate", func() bool {
		return len(seriesOf(t, gw, `up`)) == 2
	})
	// What etcdgate holds of a stable metric equals what Prometheus holds.
	for _, match := range []string{`up`, `prometheus_build_info`, `etcdgate_build_info`} {
		waitFor(t, 30*time.Second, match+" in etcdgate", func() bool { return len(seriesOf(t, gw, match)) > 0 })
		got, want := seriesOf(t, gw, match), seriesOf(t, promURL, match)
		for _, s := range want {
			s["replica"] = "itest" // Prometheus adds external labels on send only
		}
		if !slices.EqualFunc(got, want, func(a, b map[string]string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
			t.Fatalf("%s: etcdgate has %v, Prometheus scraped %v", match, got, want)
		}
	}
	// Queries over what arrived answer as Prometheus answers over what it
	// scraped, at a time both have complete (remote write lags by about a
	// second; a few retries absorb a slow send).
	for _, q := range []string{
		`count by (job) (up)`,
		`sum by (job) (rate(scrape_samples_scraped[10s]))`,
		`histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[15s])))`,
		`max by (job) (max_over_time(scrape_duration_seconds[20s])) > bool 0`,
	} {
		var got, want string
		waitFor(t, 30*time.Second, "etcdgate to answer "+q+" as Prometheus does", func() bool {
			at := strconv.FormatInt(time.Now().Add(-5*time.Second).Unix(), 10)
			got, want = queryResult(t, gw, q, at), queryResult(t, promURL, q, at)
			return got == want && got != "[]"
		})
	}
	// Many metric families arrived, not only a few.
	if n := len(seriesOf(t, gw, `{job="prometheus"}`)); n < 100 {
		t.Fatalf("only %d series of job prometheus arrived", n)
	}
	if v := metricValue(t, gw, `etcdgate_http_requests_total{code="204",handler="write"}`); v == "" || v == "0" {
		t.Fatalf("no successful writes counted: %q", v)
	}
	for _, code := range []string{"400", "413", "415", "500"} {
		if v := metricValue(t, gw, fmt.Sprintf(`etcdgate_http_requests_total{code=%q,handler="write"}`, code)); v != "" {
			t.Fatalf("Prometheus's writes got %s responses: %s", code, v)
		}
	}
	if err := prom.stop(30 * time.Second); err != nil {
		t.Fatalf("stop prometheus: %v", err)
	}
}

// queryResult runs an instant query and returns its result normalised for
// comparison: samples sorted, without the external label Prometheus adds
// when it sends.
func queryResult(t *testing.T, base, query, at string) string {
	t.Helper()
	code, body := httpGet(base + "/api/v1/query?" + url.Values{"query": {query}, "time": {at}}.Encode())
	if code != 200 {
		t.Fatalf("query %s at %s: %d %s", query, base, code, body)
	}
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("query %s at %s: %v", query, base, err)
	}
	var out []string
	for _, r := range resp.Data.Result {
		delete(r.Metric, "replica")
		out = append(out, fmt.Sprint(r.Metric, r.Value))
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}
