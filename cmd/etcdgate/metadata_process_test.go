package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// These tests send metadata through the real write path: they need
// ingest's decoders to hand the metadata of a request to the sink
// (ingest.Options.MetadataSink, wired in openStore to newMetadataSink).

// metadataOf GETs /api/v1/metadata with query from a Prometheus-compatible
// API and returns its data; nil while the server does not listen or is
// not ready yet (Prometheus answers 503 while it starts).
func metadataOf(t *testing.T, base string, query url.Values) map[string][]map[string]string {
	t.Helper()
	code, body := httpGet(base + "/api/v1/metadata?" + query.Encode())
	if code == 0 || code == http.StatusServiceUnavailable {
		return nil
	}
	if code != http.StatusOK {
		t.Fatalf("metadata from %s: %d %s", base, code, body)
	}
	var resp struct {
		Status string                         `json:"status"`
		Data   map[string][]map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Status != "success" {
		t.Fatalf("metadata from %s: %v %s", base, err, body)
	}
	return resp.Data
}

// TestPrometheusMetadata: Debian's Prometheus 2.42 scrapes itself and
// remote-writes 1.0 with metadata (metadata_config send); etcdgate's
// /api/v1/metadata then answers for Prometheus's own metrics what
// Prometheus's /api/v1/metadata answers.
func TestPrometheusMetadata(t *testing.T) {
	promBin := prometheusBinary(t)
	_, gw := startGateway(t)
	promPort := testnet.FreePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:%d"]}]
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 1s
    metadata_config:
      send: true
      send_interval: 1s
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
	)
	promURL := fmt.Sprintf("http://127.0.0.1:%d", promPort)

	metrics := []string{"prometheus_build_info", "prometheus_http_requests_total", "go_goroutines",
		"prometheus_http_request_duration_seconds", "go_gc_duration_seconds", "prometheus_tsdb_head_series"}
	for _, m := range metrics {
		q := url.Values{"metric": {m}}
		waitFor(t, 60*time.Second, m+"'s metadata in Prometheus", func() bool { return len(metadataOf(t, promURL, q)[m]) > 0 })
		var got, want map[string][]map[string]string
		waitFor(t, 60*time.Second, m+"'s metadata in etcdgate (ingest must hand metadata to the sink)", func() bool {
			got, want = metadataOf(t, gw, q), metadataOf(t, promURL, q)
			return len(got[m]) > 0
		})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: etcdgate has %v, Prometheus %v", m, got, want)
		}
	}
	// Every metric name Prometheus knows, etcdgate knows with the same
	// metadata once a send interval has passed.
	var got, want map[string][]map[string]string
	waitFor(t, 30*time.Second, "etcdgate to hold Prometheus's metadata", func() bool {
		want = metadataOf(t, promURL, nil)
		got = metadataOf(t, gw, nil)
		for name, mds := range want {
			if !reflect.DeepEqual(got[name], mds) {
				return false
			}
		}
		return true
	})
	if len(want) < 50 {
		t.Fatalf("only %d metric names in Prometheus's metadata", len(want))
	}
	if v := metricValue(t, gw, `etcdgate_tsdb_metadata_metrics`); v == "" || v == "0" {
		t.Fatalf("etcdgate_tsdb_metadata_metrics = %q", v)
	}
	// limit and limit_per_metric as Prometheus applies them.
	for _, q := range []url.Values{{"limit": {"3"}}, {"limit": {"0"}}, {"limit_per_metric": {"1"}, "metric": {"go_goroutines"}}} {
		if g, w := len(metadataOf(t, gw, q)), len(metadataOf(t, promURL, q)); g != w {
			t.Fatalf("%v: etcdgate answers %d names, Prometheus %d", q, g, w)
		}
	}
	if code, _ := httpGet(gw + "/api/v1/metadata?limit=x"); code != http.StatusBadRequest {
		t.Fatalf("limit=x: %d, want 400", code)
	}
	if err := prom.stop(30 * time.Second); err != nil {
		t.Fatalf("stop prometheus: %v", err)
	}
}

// metadataWrite is a remote write 1.0 body with one sample of each
// metric and its metadata.
func metadataWrite(t *testing.T, ts int64, mds ...prompb.MetricMetadata) []byte {
	t.Helper()
	wr := prompb.WriteRequest{Metadata: mds}
	for _, md := range mds {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: md.MetricFamilyName}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: ts}},
		})
	}
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// TestMetadataSurvivesKill: metadata acknowledged by a write survives a
// SIGKILL of the process right after the answer (written through to the
// store, not waiting for a checkpoint).
func TestMetadataSurvivesKill(t *testing.T) {
	dataDir := t.TempDir()
	p, gw := startGatewayIn(t, dataDir)
	want := map[string][]map[string]string{
		"etcd_server_has_leader":               {{"type": "gauge", "help": "Whether or not a leader exists. 1 is existence, 0 is not.", "unit": ""}},
		"etcd_disk_wal_fsync_duration_seconds": {{"type": "histogram", "help": "The latency distributions of fsync called by WAL.", "unit": "seconds"}},
	}
	body := metadataWrite(t, time.Now().UnixMilli(),
		prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "etcd_server_has_leader", Help: "Whether or not a leader exists. 1 is existence, 0 is not."},
		prompb.MetricMetadata{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "etcd_disk_wal_fsync_duration_seconds", Help: "The latency distributions of fsync called by WAL.", Unit: "seconds"},
	)
	if code, msg := ringWrite(gw, body); code != http.StatusNoContent {
		t.Fatalf("write: %d %s", code, msg)
	}
	if got := metadataOf(t, gw, nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the write (ingest must hand metadata to the sink): %v\nwant %v", got, want)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_, gw = startGatewayIn(t, dataDir)
	if got := metadataOf(t, gw, nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("after kill -9 and restart: %v\nwant %v", got, want)
	}
}

// TestRingMetadata: metadata stays on the node that received the write;
// every node of a 3-node ring answers /api/v1/metadata with the union of
// all nodes', an entry two nodes hold once; a killed node costs its part
// only, with a warning naming it.
func TestRingMetadata(t *testing.T) {
	h := newRingHarness(t, "")
	h.ttl = "30s" // the killed node stays in the ring while the answers are compared
	names := []string{"n0", "n1", "n2"}
	for _, n := range names {
		h.start(n, 3)
	}
	for _, n := range names {
		waitActive(t, h.nodes[n].url, 30*time.Second, names...)
	}
	leader := prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "etcd_server_has_leader", Help: "Whether or not a leader exists."}
	now := time.Now().UnixMilli()
	writes := map[string][]prompb.MetricMetadata{
		"n0": {leader, {Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "etcd_server_proposals_committed_total", Help: "Proposals committed."}},
		"n1": {leader, {Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "etcd_disk_wal_fsync_duration_seconds", Help: "fsync.", Unit: "seconds"}},
		"n2": {{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "etcd_mvcc_db_total_size_in_bytes", Help: "DB size.", Unit: "bytes"}},
	}
	for n, mds := range writes {
		if code, msg := ringWrite(h.nodes[n].url, metadataWrite(t, now, mds...)); code != http.StatusNoContent {
			t.Fatalf("write to %s: %d %s", n, code, msg)
		}
	}
	want := map[string][]map[string]string{
		"etcd_server_has_leader":                {{"type": "gauge", "help": "Whether or not a leader exists.", "unit": ""}},
		"etcd_server_proposals_committed_total": {{"type": "counter", "help": "Proposals committed.", "unit": ""}},
		"etcd_disk_wal_fsync_duration_seconds":  {{"type": "histogram", "help": "fsync.", "unit": "seconds"}},
		"etcd_mvcc_db_total_size_in_bytes":      {{"type": "gauge", "help": "DB size.", "unit": "bytes"}},
	}
	for _, n := range names {
		if got := metadataOf(t, h.nodes[n].url, nil); !reflect.DeepEqual(got, want) {
			t.Fatalf("through %s: %v\nwant %v", n, got, want)
		}
		if got := metadataOf(t, h.nodes[n].url, url.Values{"limit": {"2"}}); len(got) != 2 || got["etcd_disk_wal_fsync_duration_seconds"] == nil || got["etcd_mvcc_db_total_size_in_bytes"] == nil {
			t.Fatalf("limit=2 through %s: %v", n, got)
		}
	}
	h.killInRing(h.nodes["n2"])
	code, body := httpGet(h.nodes["n0"].url + "/api/v1/metadata")
	var resp struct {
		Data     map[string][]map[string]string `json:"data"`
		Warnings []string                       `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || code != http.StatusOK {
		t.Fatalf("with n2 killed: %d %s", code, body)
	}
	delete(want, "etcd_mvcc_db_total_size_in_bytes")
	if !reflect.DeepEqual(resp.Data, want) || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "n2") {
		t.Fatalf("with n2 killed: %v, warnings %q", resp.Data, resp.Warnings)
	}
}

// TestPrometheus3Metadata: Prometheus 3 scrapes itself and sends remote
// write 2.0 with per-series metadata (metadata-wal-records); etcdgate's
// /api/v1/metadata answers for Prometheus's own metric families (a
// counter, gauges, a histogram, a summary) what Prometheus's answers:
// the metadata of a histogram's _bucket, _sum and _count series is the
// family's, under the family's name.
func TestPrometheus3Metadata(t *testing.T) {
	promBin := testbin.Prometheus3(t)
	_, gw := startGateway(t)
	promPort := testnet.FreePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_native_histograms: false
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:%d"]}]
remote_write:
  - url: %s/api/v1/write
    protobuf_message: io.prometheus.write.v2.Request
    queue_config:
      batch_send_deadline: 1s
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
	for _, m := range []string{"prometheus_build_info", "go_goroutines", "prometheus_http_requests_total",
		"prometheus_http_request_duration_seconds", "go_gc_duration_seconds"} {
		q := url.Values{"metric": {m}}
		var got, want map[string][]map[string]string
		waitFor(t, 90*time.Second, m+"'s metadata in Prometheus 3 and in etcdgate", func() bool {
			got, want = metadataOf(t, gw, q), metadataOf(t, promURL, q)
			return len(want[m]) > 0 && len(got[m]) > 0
		})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: etcdgate has %v, Prometheus 3 %v", m, got, want)
		}
	}
	if err := prom.stop(30 * time.Second); err != nil {
		t.Fatalf("stop prometheus: %v", err)
	}
}
