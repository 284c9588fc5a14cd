package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// writeSeries posts one sample of a series with n extra labels.
func writeSeries(t *testing.T, url string, n int) (int, string) {
	t.Helper()
	ts := prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: "etcd_server_has_leader"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
	}
	for i := range n {
		ts.Labels = append(ts.Labels, prompb.Label{Name: "l" + string(rune('a'+i)), Value: "v"})
	}
	raw, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
	resp, err := http.Post(url+"/api/v1/write", "application/x-protobuf", strings.NewReader(string(snappy.Encode(nil, raw))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 512)
	k, _ := resp.Body.Read(b)
	return resp.StatusCode, string(b[:k])
}

// TestServeReloadAndShutdown runs the binary: a config reload through
// SIGHUP and /-/reload changes limits while the node keeps serving, a
// broken config leaves the previous one in force, and SIGTERM stops the
// process cleanly.
func TestServeReloadAndShutdown(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "etcdgate.yml")
	writeConfig := func(s string) {
		if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("limits:\n  max_labels_per_series: 10\n")
	p, url := startGateway(t, "--config", cfgPath, "--web.enable-lifecycle")

	if code, body := writeSeries(t, url, 5); code != http.StatusNoContent {
		t.Fatalf("write under the first config: %d %s", code, body)
	}

	writeConfig("limits:\n  max_labels_per_series: 3\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "SIGHUP reload to apply", func() bool {
		code, _ := writeSeries(t, url, 5)
		return code == http.StatusBadRequest
	})
	if code, body := writeSeries(t, url, 1); code != http.StatusNoContent {
		t.Fatalf("small series after reload: %d %s", code, body)
	}

	writeConfig("limits: [not, a, map]\n")
	resp, err := http.Post(url+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("reload of a broken config: %d", resp.StatusCode)
	}
	if v := metricValue(t, url, "etcdgate_config_last_reload_successful"); v != "0" {
		t.Fatalf("last reload successful = %q", v)
	}
	if code, _ := writeSeries(t, url, 5); code != http.StatusBadRequest {
		t.Fatalf("previous config not kept after a failed reload: %d", code)
	}

	writeConfig("limits:\n  max_labels_per_series: 10\n")
	if resp, err = http.Post(url+"/-/reload", "", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %v %v", err, resp)
	}
	resp.Body.Close()
	if code, body := writeSeries(t, url, 5); code != http.StatusNoContent {
		t.Fatalf("write after /-/reload: %d %s", code, body)
	}
	if v := metricValue(t, url, `etcdgate_ingest_series_rejected_total{reason="too_many_labels"}`); v == "" || v == "0" {
		t.Fatalf("rejections not counted: %q", v)
	}
	for _, name := range []string{"process_resident_memory_bytes", "etcdgate_tsdb_head_series", "etcdgate_ingest_samples_received_total"} {
		if metricValue(t, url, name) == "" {
			t.Fatalf("/metrics lacks %s", name)
		}
	}
	if err := p.stop(30 * time.Second); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	if !strings.Contains(p.out.String(), "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p.out.String())
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	p := startProcess(t, gatewayBinary, "serve", "--config", "testdata/unknown_key.bad.yml")
	select {
	case <-p.done:
		if p.err == nil || !strings.Contains(p.out.String(), "max_label_count") {
			t.Fatalf("exit %v, output %s", p.err, p.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("etcdgate started with a bad config")
	}
}
