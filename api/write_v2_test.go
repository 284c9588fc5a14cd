package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

const contentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

// encodeV2 is a 2.0 body: every series named by its labels (name, value
// pairs), with one sample a minute ago.
func encodeV2(t *testing.T, req *writev2.Request) []byte {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// requestV2 builds a 2.0 request of series given as label pairs, each with
// one sample a minute ago.
func requestV2(series ...[]string) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for _, ls := range series {
		ts := writev2.TimeSeries{Samples: []writev2.Sample{{Value: 1, Timestamp: ms(time.Minute)}}}
		for _, s := range ls {
			ts.LabelsRefs = append(ts.LabelsRefs, st.Symbolize(s))
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	return req
}

// postWrite sends body to url's path with the given Content-Type and
// Content-Encoding ("" leaves the header out).
func postWrite(t *testing.T, url string, body []byte, contentType, encoding string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	req.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// written returns the three 2.0 response headers, "-" for an absent one.
func written(h http.Header) [3]string {
	var out [3]string
	for i, k := range []string{headerSamplesWritten, headerHistogramsWritten, headerExemplarsWritten} {
		if out[i] = "-"; len(h.Values(k)) > 0 {
			out[i] = h.Get(k)
		}
	}
	return out
}

// TestWriteV2Negotiation: the Content-Type's proto parameter chooses the
// message; an unknown one, another media type or encoding is 415 and
// stores nothing; 2.0 answers carry the written headers.
func TestWriteV2Negotiation(t *testing.T) {
	v1 := encode(t, series(one(1), "__name__", "up", "job", "v1"))
	v2 := encodeV2(t, requestV2([]string{"__name__", "up", "job", "v2"}, []string{"__name__", "up", "job", "v2", "instance", "b"}))
	cases := []struct {
		name, path, contentType, encoding string
		body                              []byte
		code                              int
		msg                               string
		written                           [3]string
		stored                            []string
	}{
		{"2.0", "/api/v1/write", contentTypeV2, "snappy", v2, 204, "", [3]string{"2", "0", "0"}, []string{"v2", "v2"}},
		{"2.0 quoted, spaced, upper-case", "/api/v1/write", `Application/X-Protobuf; proto="io.prometheus.write.v2.Request"`, "Snappy", v2, 204, "", [3]string{"2", "0", "0"}, []string{"v2", "v2"}},
		{"1.0 without proto", "/api/v1/write", "application/x-protobuf", "snappy", v1, 204, "", [3]string{"1", "-", "-"}, []string{"v1"}},
		{"1.0 named", "/api/v1/write", "application/x-protobuf;proto=prometheus.WriteRequest", "snappy", v1, 204, "", [3]string{"1", "-", "-"}, []string{"v1"}},
		{"1.0 without headers", "/api/v1/write", "", "", v1, 204, "", [3]string{"1", "-", "-"}, []string{"v1"}},
		// A 1.0 body is a valid 2.0 message (its field 1 is reserved in
		// 2.0, so skipped) with nothing in it, as writev2 decodes it too:
		// the zero counts tell the sender nothing was written.
		{"1.0 body sent as 2.0", "/api/v1/write", contentTypeV2, "snappy", v1, 204, "", [3]string{"0", "0", "0"}, nil},
		{"unknown proto", "/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v3.Request", "snappy", v2, 415, `proto "io.prometheus.write.v3.Request"`, [3]string{"-", "-", "-"}, nil},
		{"other media type", "/api/v1/write", "application/json", "snappy", v2, 415, "Content-Type", [3]string{"-", "-", "-"}, nil},
		{"2.0 in gzip", "/api/v1/write", contentTypeV2, "gzip", v2, 415, "Content-Encoding", [3]string{"-", "-", "-"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEnv(t)
			code, hdr, msg := postWrite(t, e.server.URL+c.path, c.body, c.contentType, c.encoding)
			if code != c.code || !strings.Contains(msg, c.msg) || written(hdr) != c.written {
				t.Fatalf("got %d %q written %v, want %d containing %q written %v", code, msg, written(hdr), c.code, c.msg, c.written)
			}
			var stored []string
			for _, job := range []string{"v1", "v2"} {
				for range e.seriesNames(`{job="` + job + `"}`) {
					stored = append(stored, job)
				}
			}
			if got := int(e.head.NumSeries()); !slices.Equal(stored, c.stored) || got != len(c.stored) {
				t.Fatalf("stored %v (%d series), want %v", stored, got, c.stored)
			}
		})
	}
}

// TestWriteV2HeadersOnEveryAnswer: a 2.0 request gets the written headers
// whatever the answer: the counts of a partial write on 400, zeros when
// the request is refused whole (400, 413, 429, 503).
func TestWriteV2HeadersOnEveryAnswer(t *testing.T) {
	good := []string{"__name__", "up", "job", "etcd"}
	t.Run("partial write", func(t *testing.T) {
		e := newTestEnv(t)
		req := requestV2(good, []string{"__name__", "bad", "in-valid", "x"}, []string{"__name__", "with_exemplar"})
		req.Timeseries[2].Exemplars = []writev2.Exemplar{{LabelsRefs: []uint32{3, 4}, Value: 1, Timestamp: ms(time.Minute)}}
		code, hdr, msg := postWrite(t, e.server.URL+"/api/v1/write", encodeV2(t, req), contentTypeV2, "snappy")
		if code != 400 || written(hdr) != [3]string{"2", "0", "0"} || !strings.Contains(msg, "refused 1 of 3 samples (1 of 3 series invalid) and 1 exemplars") {
			t.Fatalf("got %d %q written %v", code, msg, written(hdr))
		}
		if got := e.seriesNames(`{__name__=~".+"}`); !slices.Equal(got, []string{"up", "with_exemplar"}) {
			t.Fatalf("stored %v", got)
		}
	})
	refusedWhole := func(t *testing.T, e *testEnv, body []byte, code int, msg string) {
		t.Helper()
		got, hdr, m := postWrite(t, e.server.URL+"/api/v1/write", body, contentTypeV2, "snappy")
		if got != code || written(hdr) != [3]string{"0", "0", "0"} || !strings.Contains(m, msg) {
			t.Fatalf("got %d %q written %v, want %d containing %q written 0", got, m, written(hdr), code, msg)
		}
		if n := e.head.NumSeries(); n != 0 {
			t.Fatalf("a refused request stored %d series", n)
		}
	}
	t.Run("malformed snappy", func(t *testing.T) {
		refusedWhole(t, newTestEnv(t), []byte("not snappy"), 400, "malformed snappy")
	})
	t.Run("bad symbol reference", func(t *testing.T) {
		req := requestV2(good)
		req.Timeseries[0].LabelsRefs[1] = 99
		refusedWhole(t, newTestEnv(t), encodeV2(t, req), 400, "symbol reference 99 out of range")
	})
	t.Run("symbols[0] not empty", func(t *testing.T) {
		req := requestV2(good)
		req.Symbols[0] = "x"
		refusedWhole(t, newTestEnv(t), encodeV2(t, req), 400, "symbols[0]")
	})
	t.Run("odd labels_refs", func(t *testing.T) {
		req := requestV2(good)
		req.Timeseries[0].LabelsRefs = req.Timeseries[0].LabelsRefs[:3]
		refusedWhole(t, newTestEnv(t), encodeV2(t, req), 400, "odd number of references")
	})
	t.Run("too many series", func(t *testing.T) {
		lim := ingest.DefaultLimits()
		lim.MaxSeriesPerRequest = 1
		e, _ := newLimitedEnv(t, lim, 0)
		refusedWhole(t, e, encodeV2(t, requestV2(good, []string{"__name__", "up", "job", "b"})), 413, "more than 1 series")
	})
	t.Run("overloaded", func(t *testing.T) {
		lim := ingest.DefaultLimits()
		lim.MaxInflightWriteRequests = 1
		e, in := newLimitedEnv(t, lim, 0)
		a, err := in.Admit(10)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release()
		refusedWhole(t, e, encodeV2(t, requestV2(good)), 429, "max_inflight_write_requests")
	})
	t.Run("not ready", func(t *testing.T) {
		srv := httptest.NewServer(New(Options{Ready: func() bool { return false }}).Handler())
		defer srv.Close()
		code, hdr, msg := postWrite(t, srv.URL+"/api/v1/write", encodeV2(t, requestV2(good)), contentTypeV2, "snappy")
		if code != 503 || written(hdr) != [3]string{"0", "0", "0"} {
			t.Fatalf("got %d %q written %v", code, msg, written(hdr))
		}
	})
	t.Run("WAL failed", func(t *testing.T) {
		fs := &tsdb.FaultFS{}
		o := tsdb.DefaultOptions()
		o.Head.StripeSize = 16
		o.CheckpointInterval, o.WALRecoveryInterval = time.Hour, time.Hour
		o.WALFS = fs
		db, err := tsdb.Open(t.TempDir(), o, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		in, err := ingest.New(db, ingest.Options{Limits: ingest.DefaultLimits(), Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		srv := httptest.NewServer(New(Options{Ingester: in, Storage: db, Registerer: reg, Gatherer: reg}).Handler())
		defer srv.Close()
		fs.FailWrites(syscall.ENOSPC)
		for i := range 2 { // the second is refused before the body is read
			code, hdr, msg := postWrite(t, srv.URL+"/api/v1/write", encodeV2(t, requestV2(good)), contentTypeV2, "snappy")
			if code != 503 || hdr.Get("Retry-After") == "" || written(hdr) != [3]string{"0", "0", "0"} {
				t.Fatalf("write %d: %d %q written %v", i, code, msg, written(hdr))
			}
		}
	})
}

// TestRingWriteV2OverHTTP: a 2.0 write to one node of a ring (3 nodes,
// RF 2) is placed on each series' owners over the real peer client,
// which forwards 1.0, and answered with the 2.0 counts; the internal push
// itself takes 1.0 only.
func TestRingWriteV2OverHTTP(t *testing.T) {
	nodes := newTestRing(t, 3, 2)
	var series [][]string
	for i := range 60 {
		series = append(series, []string{"__name__", "etcd_server_has_leader", "instance", strings.Repeat("m", i+1)})
	}
	code, hdr, msg := postWrite(t, nodes[0].srv.URL+"/api/v1/write", encodeV2(t, requestV2(series...)), contentTypeV2, "snappy")
	if code != 204 || written(hdr) != [3]string{"60", "0", "0"} {
		t.Fatalf("write: %d %q written %v", code, msg, written(hdr))
	}
	// The answer comes at quorum (2 of 2 here): every copy is stored.
	total := 0
	for _, n := range nodes {
		total += int(n.head.NumSeries())
	}
	if total != 2*len(series) {
		t.Fatalf("%d series stored on the ring, want %d (2 copies each)", total, 2*len(series))
	}
	code, _, msg = postWrite(t, nodes[1].srv.URL+ring.PushPath, encodeV2(t, requestV2(series[0])), contentTypeV2, "snappy")
	if code != http.StatusUnsupportedMediaType || !strings.Contains(msg, "remote write 1.0 only") {
		t.Fatalf("2.0 to the internal push: %d %q", code, msg)
	}
}
