package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// writeRemoteReadHour writes into etcdgate an hour of two metrics of
// six etcd members, a sample every 15 s, the newest at end: a counter
// and a gauge. Every timestamp is a multiple of 15 s, so that queries
// at other offsets never put a sample on a range's boundary (where
// Prometheus 2 and 3 differ).
func writeRemoteReadHour(t *testing.T, base string, end time.Time) {
	t.Helper()
	end = end.Truncate(15 * time.Second)
	var wr prompb.WriteRequest
	for m := range 6 {
		inst := "m" + strconv.Itoa(m)
		job := "etcd"
		if m >= 4 {
			job = "etcd-events"
		}
		var counter, gauge []prompb.Sample
		c := 0.0
		for i := 240; i >= 0; i-- {
			ts := end.Add(-time.Duration(i) * 15 * time.Second).UnixMilli()
			c += float64((i*7+m*3)%11) + 0.25
			counter = append(counter, prompb.Sample{Timestamp: ts, Value: c})
			gauge = append(gauge, prompb.Sample{Timestamp: ts, Value: float64(1<<20+((i*13+m*29)%97)*4096) + 0.5})
		}
		ls := func(name string) []prompb.Label {
			return []prompb.Label{{Name: "__name__", Value: name}, {Name: "instance", Value: inst}, {Name: "job", Value: job}}
		}
		wr.Timeseries = append(wr.Timeseries,
			prompb.TimeSeries{Labels: ls("rr_requests_total"), Samples: counter},
			prompb.TimeSeries{Labels: ls("rr_db_size_bytes"), Samples: gauge})
	}
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if code := postWrite(http.DefaultClient, base, snappy.Encode(nil, raw)); code != http.StatusNoContent {
		t.Fatalf("write: %d", code)
	}
}

// roundedResult runs an instant (no step) or range query and returns its
// result normalised for comparison: series sorted, values rounded to 12
// significant digits (the engines sum in different orders, which moves
// the last bits).
func roundedResult(t *testing.T, base, query string, start, end time.Time, step string) string {
	t.Helper()
	secs := func(x time.Time) string { return strconv.FormatFloat(float64(x.UnixMilli())/1000, 'f', 3, 64) }
	path, params := "/api/v1/query_range?", url.Values{"query": {query}, "start": {secs(start)}, "end": {secs(end)}, "step": {step}}
	if step == "" {
		path, params = "/api/v1/query?", url.Values{"query": {query}, "time": {secs(end)}}
	}
	code, body := httpGet(base + path + params.Encode())
	if code != 200 {
		t.Fatalf("%s %s at %s: %d %s", path, query, base, code, body)
	}
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("%s %s at %s: %v", path, query, base, err)
	}
	round := func(p []any) string {
		v, _ := strconv.ParseFloat(fmt.Sprint(p[1]), 64)
		return fmt.Sprintf("%v:%.12g", p[0], v)
	}
	var out []string
	for _, r := range resp.Data.Result {
		vals := []string{}
		if r.Value != nil {
			vals = append(vals, round(r.Value))
		}
		for _, p := range r.Values {
			vals = append(vals, round(p))
		}
		out = append(out, fmt.Sprint(r.Metric, vals))
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

// TestPrometheusRemoteRead: a real Prometheus (Debian's 2.42, whose
// client asks for SAMPLES, and Prometheus 3, which asks for
// STREAMED_XOR_CHUNKS first) with remote_read pointed at etcdgate, and
// no data of its own, answers PromQL over etcdgate's data as etcdgate
// answers it.
func TestPrometheusRemoteRead(t *testing.T) {
	for _, c := range []struct {
		name   string
		bin    func(testing.TB) string
		served string // the response type its client negotiates
	}{{"prometheus-2.42", testbin.Prometheus, "SAMPLES"}, {"prometheus-3", testbin.Prometheus3, "STREAMED_XOR_CHUNKS"}} {
		t.Run(c.name, func(t *testing.T) {
			bin := c.bin(t)
			_, gw := startGateway(t)
			now := time.Now()
			writeRemoteReadHour(t, gw, now)

			promPort := testnet.FreePort(t)
			dir := t.TempDir()
			cfg := fmt.Sprintf("global:\n  scrape_interval: 1m\nremote_read:\n  - url: %s/api/v1/read\n    read_recent: true\n", gw)
			cfgPath := filepath.Join(dir, "prometheus.yml")
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			prom := startProcess(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
				fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
			promURL := fmt.Sprintf("http://127.0.0.1:%d", promPort)
			waitFor(t, 60*time.Second, "prometheus ready", func() bool {
				code, _ := httpGet(promURL + "/-/ready")
				return code == http.StatusOK
			})

			end := now.Truncate(15 * time.Second)
			queries := []string{
				`rr_db_size_bytes`,
				`count(rr_requests_total)`,
				`sum by (job) (rate(rr_requests_total[5m]))`,
				`max_over_time(rr_db_size_bytes{instance="m3"}[10m])`,
				`rr_requests_total{instance=~"m[12]", job!="etcd-events"} - ignoring(instance) group_left rr_requests_total{instance="m0"}`,
			}
			for _, q := range queries {
				for _, off := range []time.Duration{50 * time.Minute, 17 * time.Minute, 61 * time.Second} {
					at := end.Add(-off + 3500*time.Millisecond)
					got, want := roundedResult(t, promURL, q, at, at, ""), roundedResult(t, gw, q, at, at, "")
					if got != want || want == "[]" {
						t.Fatalf("%s at -%s: Prometheus over remote read answers\n%s\netcdgate answers\n%s", q, off, got, want)
					}
				}
				start := end.Add(-55*time.Minute + 3500*time.Millisecond)
				got := roundedResult(t, promURL, q, start, end, "60")
				if want := roundedResult(t, gw, q, start, end, "60"); got != want || want == "[]" {
					t.Fatalf("range %s: Prometheus over remote read answers\n%s\netcdgate answers\n%s", q, got, want)
				}
			}
			if v := metricValue(t, gw, `etcdgate_http_requests_total{code="200",handler="remote_read"}`); v == "" || v == "0" {
				t.Fatalf("etcdgate served no remote read: %q", v)
			}
			typ := fmt.Sprintf(`etcdgate_remote_read_requests_total{type=%q}`, c.served)
			if v := metricValue(t, gw, typ); v == "" || v == "0" {
				t.Fatalf("%s: %q: the client did not read the response type it asks for", typ, v)
			}
			for _, code := range []string{"400", "413", "422", "500", "503"} {
				if v := metricValue(t, gw, fmt.Sprintf(`etcdgate_http_requests_total{code=%q,handler="remote_read"}`, code)); v != "" {
					t.Fatalf("Prometheus's remote reads got %s answers: %s", code, v)
				}
			}
			if err := prom.stop(30 * time.Second); err != nil {
				t.Fatalf("stop prometheus: %v", err)
			}
		})
	}
}

// TestRemoteReadProcess reads the real process over remote read in both
// response types: what was written comes back whole; bad requests get a
// 4xx.
func TestRemoteReadProcess(t *testing.T) {
	_, gw := startGateway(t)
	now := time.Now()
	writeRemoteReadHour(t, gw, now)
	for _, typ := range []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS} {
		body := remoteReadBody(t, &prompb.ReadRequest{AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{typ},
			Queries: []*prompb.Query{{StartTimestampMs: now.Add(-2 * time.Hour).UnixMilli(), EndTimestampMs: now.UnixMilli(),
				Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "rr_requests_total"}}}}})
		resp, err := http.Post(gw+"/api/v1/read", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		n, samples := countRemoteRead(t, resp, typ)
		if n != 6 || samples != 6*241 {
			t.Fatalf("%s: %d series, %d samples; want 6 and %d", typ, n, samples, 6*241)
		}
	}
	resp, err := http.Post(gw+"/api/v1/read", "application/x-protobuf", bytes.NewReader([]byte("garbage")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage: %d", resp.StatusCode)
	}
}

func remoteReadBody(t *testing.T, req *prompb.ReadRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// countRemoteRead decodes a remote read answer of type typ, frames and
// chunks checked, and returns its series and samples.
func countRemoteRead(t *testing.T, resp *http.Response, typ prompb.ReadRequest_ResponseType) (series, samples int) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v %s", typ, resp.StatusCode, err, body)
	}
	if typ == prompb.ReadRequest_SAMPLES {
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		var rr prompb.ReadResponse
		if err := rr.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		for _, ts := range rr.Results[0].Timeseries {
			series++
			samples += len(ts.Samples)
		}
		return series, samples
	}
	seen := map[string]bool{}
	for len(body) > 0 {
		size, n := binary.Uvarint(body)
		if n <= 0 || len(body) < n+4+int(size) {
			t.Fatalf("truncated frame")
		}
		sum := binary.BigEndian.Uint32(body[n:])
		data := body[n+4 : n+4+int(size)]
		body = body[n+4+int(size):]
		if crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != sum {
			t.Fatal("frame CRC mismatch")
		}
		var cr prompb.ChunkedReadResponse
		if err := cr.Unmarshal(data); err != nil {
			t.Fatal(err)
		}
		for _, cs := range cr.ChunkedSeries {
			seen[fmt.Sprint(cs.Labels)] = true
			for _, c := range cs.Chunks {
				chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Data)
				if err != nil {
					t.Fatal(err)
				}
				samples += chk.NumSamples()
			}
		}
	}
	return len(seen), samples
}

// TestRingRemoteRead: on a 3-node ring with RF=2, remote read through
// any node answers for the whole ring, each series once with every
// sample (replicas deduplicated), in both response types; with one node
// down still whole; with two down, partial_response=false refuses with
// 503 rather than answer a partial read.
func TestRingRemoteRead(t *testing.T) {
	h := newRingHarness(t, "")
	h.ttl = "30s"
	names := []string{"n0", "n1", "n2"}
	for _, n := range names {
		h.start(n, 2)
	}
	for _, n := range names {
		waitActive(t, h.nodes[n].url, 30*time.Second, names...)
	}
	now := time.Now()
	writeRemoteReadHour(t, h.nodes["n0"].url, now)
	time.Sleep(500 * time.Millisecond) // the answer comes at quorum: let the copies land
	read := func(base, query string, typ prompb.ReadRequest_ResponseType) *http.Response {
		t.Helper()
		body := remoteReadBody(t, &prompb.ReadRequest{AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{typ},
			Queries: []*prompb.Query{{StartTimestampMs: now.Add(-2 * time.Hour).UnixMilli(), EndTimestampMs: now.UnixMilli(),
				Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: "__name__", Value: "rr_.+"}}}}})
		resp, err := http.Post(base+"/api/v1/read"+query, "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	types := []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS}
	whole := func(live ...string) {
		t.Helper()
		for _, n := range live {
			for _, typ := range types {
				if s, k := countRemoteRead(t, read(h.nodes[n].url, "", typ), typ); s != 12 || k != 12*241 {
					t.Fatalf("through %s, %s: %d series, %d samples; want 12 and %d", n, typ, s, k, 12*241)
				}
			}
		}
	}
	whole(names...)
	h.killInRing(h.nodes["n2"])
	whole("n0", "n1")
	h.killInRing(h.nodes["n1"])
	for _, typ := range types {
		resp := read(h.nodes["n0"].url, "?partial_response=false", typ)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "partial") {
			t.Fatalf("%s with two of three nodes down, partial_response=false: %d %q, want 503", typ, resp.StatusCode, b)
		}
	}
}
