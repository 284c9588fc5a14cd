package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/tsdb"
)

// testNow is the clock of every test API: samples are written around it.
var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

type testEnv struct {
	t      *testing.T
	head   *tsdb.Head
	api    *API
	server *httptest.Server
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	opts := tsdb.DefaultHeadOptions()
	opts.StripeSize = 16
	head, err := tsdb.NewHead(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	lim := ingest.DefaultLimits()
	lim.MaxCompressedBodyBytes = 1 << 20
	lim.MaxDecompressedBodyBytes = 4 << 20
	lim.MaxLabelsPerSeries = 8
	lim.MaxLabelNameLength = 64
	lim.MaxLabelValueLength = 128
	in, err := ingest.New(head, ingest.Options{Limits: lim, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a := New(Options{
		Ingester: in, Storage: head, Registerer: reg, Gatherer: reg,
		BuildInfo: BuildInfo{Version: "1.2.3", GoVersion: "go1.26"},
	})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &testEnv{t: t, head: head, api: a, server: srv}
}

// ms is testNow in milliseconds minus offset.
func ms(offset time.Duration) int64 { return testNow.Add(-offset).UnixMilli() }

func series(samples []prompb.Sample, lbls ...string) prompb.TimeSeries {
	ts := prompb.TimeSeries{Samples: samples}
	for i := 0; i+1 < len(lbls); i += 2 {
		ts.Labels = append(ts.Labels, prompb.Label{Name: lbls[i], Value: lbls[i+1]})
	}
	return ts
}

func one(v float64) []prompb.Sample { return []prompb.Sample{{Value: v, Timestamp: ms(time.Minute)}} }

func encode(t *testing.T, ts ...prompb.TimeSeries) []byte {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// post sends body to /api/v1/write with remote-write headers, overridden
// by hdr ("" deletes a header).
func (e *testEnv) post(body []byte, hdr map[string]string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.server.URL+"/api/v1/write", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// get calls a read endpoint and decodes the JSON envelope.
func (e *testEnv) get(path string, params url.Values) (int, response, json.RawMessage) {
	e.t.Helper()
	resp, err := http.Get(e.server.URL + path + "?" + params.Encode())
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s: Content-Type %q", path, ct)
	}
	var env struct {
		response
		Data json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, env.response, env.Data
}

// seriesNames returns the __name__ of every series matching match.
func (e *testEnv) seriesNames(match string) []string {
	e.t.Helper()
	code, env, data := e.get("/api/v1/series", url.Values{"match[]": {match}})
	if code != http.StatusOK {
		e.t.Fatalf("series: %d %+v", code, env)
	}
	var sets []map[string]string
	if err := json.Unmarshal(data, &sets); err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, s := range sets {
		names = append(names, s["__name__"])
	}
	return names
}
