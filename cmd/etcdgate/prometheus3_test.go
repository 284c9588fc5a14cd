package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// TestPrometheus3RemoteWriteV2: Prometheus 3 scrapes itself and sends
// everything to etcdgate as remote write 2.0 (protobuf_message
// io.prometheus.write.v2.Request, with metadata); etcdgate then lists the
// same series of the job as Prometheus itself, every request was decoded
// as 2.0, and none was refused.
func TestPrometheus3RemoteWriteV2(t *testing.T) {
	promBin := testbin.Prometheus3(t)
	_, gw := startGateway(t)

	promPort := testnet.FreePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_native_histograms: false
  external_labels:
    replica: itest3
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:%d"]}]
remote_write:
  - url: %s/api/v1/write
    protobuf_message: io.prometheus.write.v2.Request
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
`, promPort, gw)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := startProcess(t, promBin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort),
		"--storage.remote.flush-deadline=5s",
		"--enable-feature=metadata-wal-records",
	)
	promURL := fmt.Sprintf("http://127.0.0.1:%d", promPort)

	const job = `{job="prometheus"}`
	key := func(s map[string]string) string { return fmt.Sprint(s) } // fmt sorts map keys
	var got, want []string
	// Prometheus's own series of the job grow for the first scrapes, and
	// what it sends arrives about a second later: wait for both to settle
	// on the same set.
	waitFor(t, 90*time.Second, "etcdgate to hold the series Prometheus 3 scraped", func() bool {
		got, want = got[:0], want[:0]
		for _, s := range seriesOf(t, gw, job) {
			got = append(got, key(s))
		}
		for _, s := range seriesOf(t, promURL, job) {
			s["replica"] = "itest3" // Prometheus adds external labels on send only
			want = append(want, key(s))
		}
		slices.Sort(got)
		slices.Sort(want)
		return len(want) > 100 && slices.Equal(got, want)
	})
	t.Logf("%d series of the job on both", len(got))
	if v := metricValue(t, gw, `etcdgate_ingest_requests_decoded_total{protocol="2.0"}`); v == "" || v == "0" {
		t.Fatalf("no request was decoded as remote write 2.0: %q", v)
	}
	if v := metricValue(t, gw, `etcdgate_ingest_requests_decoded_total{protocol="1.0"}`); v != "0" {
		t.Fatalf("Prometheus 3 sent %q requests as remote write 1.0", v)
	}
	for _, code := range []string{"400", "413", "415", "429", "500", "503"} {
		if v := metricValue(t, gw, fmt.Sprintf(`etcdgate_http_requests_total{code=%q,handler="write"}`, code)); v != "" {
			t.Fatalf("Prometheus 3's writes got %s responses: %s", code, v)
		}
	}
	if err := prom.stop(30 * time.Second); err != nil {
		t.Fatalf("stop prometheus: %v", err)
	}
}
