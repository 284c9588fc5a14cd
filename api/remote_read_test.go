package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/tsdb"
)

// rrSeries is a series as remote read answers it: labels and samples.
type rrSeries struct {
	Labels  string
	Samples []prompb.Sample
}

// seedRemoteRead writes three series of 300 samples each, 15 s apart,
// the newest a minute before testNow, their values irregular so that
// chunks are not trivially small; it returns what it wrote by series.
func seedRemoteRead(t *testing.T) (*testEnv, map[string][]prompb.Sample) {
	t.Helper()
	e := newTestEnv(t)
	want := map[string][]prompb.Sample{}
	rng := rand.New(rand.NewPCG(1, 2))
	var tss []prompb.TimeSeries
	for _, inst := range []string{"m1", "m2", "m3"} {
		job := "etcd"
		if inst == "m3" {
			job = "apiserver"
		}
		var ss []prompb.Sample
		for i := 299; i >= 0; i-- {
			ss = append(ss, prompb.Sample{Timestamp: ms(time.Minute + time.Duration(i)*15*time.Second), Value: math.Round(rng.Float64()*1e6) / 100})
		}
		ts := series(ss, "__name__", "up", "instance", inst, "job", job)
		tss = append(tss, ts)
		want[labelsString(ts.Labels)] = ss
	}
	if code, body := e.post(encode(t, tss...), nil); code != http.StatusNoContent {
		t.Fatalf("seed: %d %s", code, body)
	}
	return e, want
}

func labelsString(ls []prompb.Label) string {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels().String()
}

func matcher(typ prompb.LabelMatcher_Type, name, value string) *prompb.LabelMatcher {
	return &prompb.LabelMatcher{Type: typ, Name: name, Value: value}
}

func rrQuery(start, end int64, ms ...*prompb.LabelMatcher) *prompb.Query {
	return &prompb.Query{StartTimestampMs: start, EndTimestampMs: end, Matchers: ms}
}

func encodeRead(t testing.TB, req *prompb.ReadRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// postRead sends body to /api/v1/read as Prometheus does.
func postRead(t testing.TB, url string, body []byte, user string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/read", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	if user != "" {
		req.SetBasicAuth(user, user+"-secret")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// readSamplesAnswer decodes a SAMPLES answer into each query's series.
func readSamplesAnswer(t *testing.T, resp *http.Response) [][]rrSeries {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct, ce := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"); ct != "application/x-protobuf" || ce != "snappy" {
		t.Fatalf("Content-Type %q, Content-Encoding %q", ct, ce)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var rr prompb.ReadResponse
	if err := rr.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	out := make([][]rrSeries, len(rr.Results))
	for i, res := range rr.Results {
		out[i] = []rrSeries{}
		for _, ts := range res.Timeseries {
			out[i] = append(out[i], rrSeries{Labels: labelsString(ts.Labels), Samples: ts.Samples})
		}
	}
	return out
}

// readFrames decodes a STREAMED_XOR_CHUNKS answer as a client does:
// each frame's length and CRC checked, no frame over maxFrame, no chunk
// over 120 samples or outside its stated times; series cut over frames
// are joined. It returns each query's series in the order they came.
func readFrames(t *testing.T, r io.Reader, maxFrame int) [][]rrSeries {
	t.Helper()
	br := bufio.NewReader(r)
	var out [][]rrSeries
	lastIndex := int64(-1)
	for {
		size, err := binary.ReadUvarint(br)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("frame length: %v", err)
		}
		if size > uint64(maxFrame) {
			t.Fatalf("frame of %d bytes, bound %d", size, maxFrame)
		}
		var sum uint32
		if err := binary.Read(br, binary.BigEndian, &sum); err != nil {
			t.Fatalf("frame CRC: %v", err)
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(br, data); err != nil {
			t.Fatalf("frame data: %v", err)
		}
		if got := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)); got != sum {
			t.Fatalf("frame CRC %x, want %x", got, sum)
		}
		var resp prompb.ChunkedReadResponse
		if err := resp.Unmarshal(data); err != nil {
			t.Fatal(err)
		}
		if len(resp.ChunkedSeries) != 1 {
			t.Fatalf("%d series in a frame, want 1", len(resp.ChunkedSeries))
		}
		if resp.QueryIndex < lastIndex {
			t.Fatalf("query %d after query %d", resp.QueryIndex, lastIndex)
		}
		lastIndex = resp.QueryIndex
		for int64(len(out)) <= resp.QueryIndex {
			out = append(out, []rrSeries{})
		}
		cs := resp.ChunkedSeries[0]
		lset := labelsString(cs.Labels)
		q := out[resp.QueryIndex]
		if len(q) == 0 || q[len(q)-1].Labels != lset {
			q = append(q, rrSeries{Labels: lset})
		}
		cur := &q[len(q)-1]
		for _, c := range cs.Chunks {
			if c.Type != prompb.Chunk_XOR {
				t.Fatalf("chunk type %v", c.Type)
			}
			chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Data)
			if err != nil {
				t.Fatal(err)
			}
			if n := chk.NumSamples(); n < 1 || n > 120 {
				t.Fatalf("chunk of %d samples", n)
			}
			it := chk.Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				if ts < c.MinTimeMs || ts > c.MaxTimeMs {
					t.Fatalf("sample at %d outside its chunk [%d, %d]", ts, c.MinTimeMs, c.MaxTimeMs)
				}
				cur.Samples = append(cur.Samples, prompb.Sample{Timestamp: ts, Value: v})
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
		}
		out[resp.QueryIndex] = q
	}
}

// wantSeries is the expected answer: the written series whose labels
// contain every fragment (and none of those prefixed with "!"), sorted,
// with their samples in [mint, maxt].
func wantSeries(written map[string][]prompb.Sample, mint, maxt int64, fragments ...string) []rrSeries {
	out := []rrSeries{}
	for ls, ss := range written {
		ok := true
		for _, f := range fragments {
			if not, found := strings.CutPrefix(f, "!"); found {
				ok = ok && !strings.Contains(ls, not)
			} else {
				ok = ok && strings.Contains(ls, f)
			}
		}
		if !ok {
			continue
		}
		var in []prompb.Sample
		for _, s := range ss {
			if s.Timestamp >= mint && s.Timestamp <= maxt {
				in = append(in, s)
			}
		}
		if len(in) > 0 {
			out = append(out, rrSeries{Labels: ls, Samples: in})
		}
	}
	slices.SortFunc(out, func(a, b rrSeries) int { return strings.Compare(a.Labels, b.Labels) })
	return out
}

func sameAnswer(t *testing.T, got, want [][]rrSeries) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d query results, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("query %d: %d series, want %d: %v", i, len(got[i]), len(want[i]), seriesNames(got[i]))
		}
		for j := range want[i] {
			g, w := got[i][j], want[i][j]
			if g.Labels != w.Labels {
				t.Fatalf("query %d series %d: %s, want %s", i, j, g.Labels, w.Labels)
			}
			if !slices.EqualFunc(g.Samples, w.Samples, func(a, b prompb.Sample) bool {
				return a.Timestamp == b.Timestamp && math.Float64bits(a.Value) == math.Float64bits(b.Value)
			}) {
				t.Fatalf("query %d %s: %d samples differ from the %d written", i, g.Labels, len(g.Samples), len(w.Samples))
			}
		}
	}
}

func seriesNames(ss []rrSeries) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Labels)
	}
	return out
}

// TestRemoteReadAnswers reads the stored samples back in both response
// types and compares them with what was written.
func TestRemoteReadAnswers(t *testing.T) {
	e, written := seedRemoteRead(t)
	all0, all1 := ms(2*time.Hour), ms(0)
	mid0, mid1 := ms(40*time.Minute), ms(20*time.Minute)
	cases := []struct {
		name    string
		queries []*prompb.Query
		want    [][]rrSeries
	}{
		{"one matcher, all of time", []*prompb.Query{rrQuery(all0, all1, matcher(prompb.LabelMatcher_EQ, "job", "etcd"))},
			[][]rrSeries{wantSeries(written, all0, all1, `job="etcd"`)}},
		{"regexp and negative matchers, a window", []*prompb.Query{rrQuery(mid0, mid1,
			matcher(prompb.LabelMatcher_RE, "__name__", "u."), matcher(prompb.LabelMatcher_NEQ, "instance", "m1"))},
			[][]rrSeries{wantSeries(written, mid0, mid1, `!instance="m1"`)}},
		{"several queries answer in order", []*prompb.Query{
			rrQuery(all0, all1, matcher(prompb.LabelMatcher_EQ, "instance", "m3")),
			rrQuery(mid0, mid1, matcher(prompb.LabelMatcher_NRE, "job", "api.*"), matcher(prompb.LabelMatcher_EQ, "__name__", "up")),
			rrQuery(all0, all1, matcher(prompb.LabelMatcher_EQ, "__name__", "nothing")),
		}, [][]rrSeries{wantSeries(written, all0, all1, `instance="m3"`), wantSeries(written, mid0, mid1, `job="etcd"`), {}}},
		{"hints narrow the range", []*prompb.Query{{StartTimestampMs: all0, EndTimestampMs: all1,
			Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "instance", "m1")},
			Hints:    &prompb.ReadHints{StartMs: mid0, EndMs: mid1, StepMs: 15000, Func: "rate", RangeMs: 300000}}},
			[][]rrSeries{wantSeries(written, mid0, mid1, `instance="m1"`)}},
		{"a range without samples", []*prompb.Query{rrQuery(ms(-time.Hour), ms(-time.Hour), matcher(prompb.LabelMatcher_EQ, "job", "etcd"))},
			[][]rrSeries{{}}},
	}
	for _, c := range cases {
		want := c.want
		t.Run(c.name+"/samples", func(t *testing.T) {
			resp := postRead(t, e.server.URL, encodeRead(t, &prompb.ReadRequest{Queries: c.queries}), "")
			sameAnswer(t, readSamplesAnswer(t, resp), want)
		})
		t.Run(c.name+"/streamed", func(t *testing.T) {
			resp := postRead(t, e.server.URL, encodeRead(t, &prompb.ReadRequest{Queries: c.queries,
				AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS}}), "")
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse" {
				t.Fatalf("Content-Type %q", ct)
			}
			got := readFrames(t, resp.Body, remoteReadFrameBytes)
			// Queries without series send no frame: pad to the count.
			for len(got) < len(want) {
				got = append(got, []rrSeries{})
			}
			sameAnswer(t, got, want)
		})
	}
}

// TestRemoteReadSeriesHint: hints.func "series" asks for labels only;
// SAMPLES answers the series without samples, as Prometheus's querier
// does; the streamed answer ignores the hint, as Prometheus's chunk
// querier does.
func TestRemoteReadSeriesHint(t *testing.T) {
	e, written := seedRemoteRead(t)
	q := &prompb.Query{StartTimestampMs: ms(2 * time.Hour), EndTimestampMs: ms(0),
		Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "job", "etcd")},
		Hints:    &prompb.ReadHints{Func: "series"}}
	got := readSamplesAnswer(t, postRead(t, e.server.URL, encodeRead(t, &prompb.ReadRequest{Queries: []*prompb.Query{q}}), ""))
	want := wantSeries(written, ms(2*time.Hour), ms(0), `job="etcd"`)
	for i := range want {
		want[i].Samples = nil
	}
	sameAnswer(t, got, [][]rrSeries{want})
	resp := postRead(t, e.server.URL, encodeRead(t, &prompb.ReadRequest{Queries: []*prompb.Query{q},
		AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS}}), "")
	defer resp.Body.Close()
	sameAnswer(t, readFrames(t, resp.Body, remoteReadFrameBytes), [][]rrSeries{wantSeries(written, ms(2*time.Hour), ms(0), `job="etcd"`)})
}

// TestRemoteReadNegotiation: the first served type of
// accepted_response_types wins; none given means SAMPLES; none served
// is a 400.
func TestRemoteReadNegotiation(t *testing.T) {
	e, _ := seedRemoteRead(t)
	const (
		samples  = prompb.ReadRequest_SAMPLES
		streamed = prompb.ReadRequest_STREAMED_XOR_CHUNKS
	)
	cases := []struct {
		accepted []prompb.ReadRequest_ResponseType
		code     int
		ct       string
	}{
		{nil, 200, "application/x-protobuf"},
		{[]prompb.ReadRequest_ResponseType{samples}, 200, "application/x-protobuf"},
		{[]prompb.ReadRequest_ResponseType{streamed}, 200, "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"},
		{[]prompb.ReadRequest_ResponseType{streamed, samples}, 200, "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"},
		{[]prompb.ReadRequest_ResponseType{samples, streamed}, 200, "application/x-protobuf"},
		{[]prompb.ReadRequest_ResponseType{7, streamed}, 200, "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"},
		{[]prompb.ReadRequest_ResponseType{7}, 400, "text/plain; charset=utf-8"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.accepted), func(t *testing.T) {
			served := func() float64 {
				if c.code != 200 {
					return testutil.ToFloat64(e.api.remoteReadMetrics.requests.WithLabelValues("SAMPLES")) +
						testutil.ToFloat64(e.api.remoteReadMetrics.requests.WithLabelValues("STREAMED_XOR_CHUNKS"))
				}
				typ := "SAMPLES"
				if strings.Contains(c.ct, "streamed") {
					typ = "STREAMED_XOR_CHUNKS"
				}
				return testutil.ToFloat64(e.api.remoteReadMetrics.requests.WithLabelValues(typ))
			}
			before := served()
			resp := postRead(t, e.server.URL, encodeRead(t, &prompb.ReadRequest{AcceptedResponseTypes: c.accepted,
				Queries: []*prompb.Query{rrQuery(ms(time.Hour), ms(0), matcher(prompb.LabelMatcher_EQ, "job", "etcd"))}}), "")
			if d := served() - before; (c.code == 200) != (d == 1) {
				t.Fatalf("etcdgate_remote_read_requests_total of the served type moved by %v", d)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code || resp.Header.Get("Content-Type") != c.ct {
				t.Fatalf("%d %q: %s; want %d %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, c.code, c.ct)
			}
			if c.code == 400 && !strings.Contains(string(body), "no supported response type") {
				t.Fatalf("error %q does not say why", body)
			}
		})
	}
}

// TestRemoteReadMalformed: each malformed request gets a 4xx naming the
// problem, and the node answers the next request.
func TestRemoteReadMalformed(t *testing.T) {
	e, _ := seedRemoteRead(t)
	e.api.SetReadLimits(ReadLimits{RemoteReadMaxQueries: 3, RemoteReadMaxBodyBytes: 1 << 16, Parse: evaluator.ParseLimits{MaxLength: 10000}})
	good := rrQuery(ms(time.Hour), ms(0), matcher(prompb.LabelMatcher_EQ, "job", "etcd"))
	enc := func(qs ...*prompb.Query) []byte { return encodeRead(t, &prompb.ReadRequest{Queries: qs}) }
	raw := func(b []byte) []byte { return snappy.Encode(nil, b) }
	cases := []struct {
		name string
		body []byte
		code int
		msg  string
	}{
		{"empty body", nil, 400, "malformed snappy"},
		{"bad snappy", []byte("not snappy at all"), 400, "malformed snappy"},
		{"snappy header lies", append(binary.AppendUvarint(nil, 100), 0xff, 0xff), 400, "malformed snappy"},
		{"bad protobuf", raw([]byte{0x0a, 0x7f, 0x01}), 400, "malformed protobuf"},
		{"queries field of the wrong wire type", raw([]byte{0x08, 0x01}), 400, "malformed protobuf"},
		{"bad query inside", raw([]byte{0x0a, 0x02, 0x1a, 0x05}), 400, "malformed protobuf"},
		{"no queries", enc(), 400, "no queries"},
		{"no matchers", enc(rrQuery(ms(time.Hour), ms(0))), 400, "at least one matcher"},
		{"only empty-matching matchers", enc(rrQuery(ms(time.Hour), ms(0), matcher(prompb.LabelMatcher_RE, "job", ".*"))), 400, "at least one matcher"},
		{"bad regexp", enc(rrQuery(ms(time.Hour), ms(0), matcher(prompb.LabelMatcher_RE, "job", "(etcd"))), 400, "missing closing )"},
		{"unknown matcher type", enc(rrQuery(ms(time.Hour), ms(0), matcher(9, "job", "etcd"))), 400, "unknown type 9"},
		{"end before start", enc(rrQuery(ms(0), ms(time.Hour), matcher(prompb.LabelMatcher_EQ, "job", "etcd"))), 400, "before start"},
		{"second query bad", enc(good, rrQuery(ms(time.Hour), ms(0))), 400, "query 1"},
		{"too many queries", enc(good, good, good, good), 400, "4 queries, limit 3"},
		{"matcher too long", enc(rrQuery(ms(time.Hour), ms(0), matcher(prompb.LabelMatcher_RE, "job", strings.Repeat("a", 20000)))), 400, "query.max_query_length"},
		{"body too large", bytes.Repeat([]byte{0}, 1<<16+1), 413, "too large"},
		{"decoded body too large", raw(bytes.Repeat([]byte{0}, 1<<16+1)), 413, "too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := postRead(t, e.server.URL, c.body, "")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.msg) {
				t.Fatalf("%d %q, want %d with %q", resp.StatusCode, body, c.code, c.msg)
			}
		})
	}
	got := readSamplesAnswer(t, postRead(t, e.server.URL, enc(good), ""))
	if len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("after the malformed requests: %v", got)
	}
}

// TestRemoteReadLimits: the series limit, the sample limit of SAMPLES
// and the slots refuse a read with a clear error before its work.
func TestRemoteReadLimits(t *testing.T) {
	e, _ := seedRemoteRead(t)
	q := rrQuery(ms(2*time.Hour), ms(0), matcher(prompb.LabelMatcher_EQ, "__name__", "up"))
	for _, typ := range []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS} {
		body := encodeRead(t, &prompb.ReadRequest{Queries: []*prompb.Query{q}, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{typ}})
		check := func(name string, l ReadLimits, code int, msg string) {
			t.Run(typ.String()+"/"+name, func(t *testing.T) {
				e.api.SetReadLimits(l)
				resp := postRead(t, e.server.URL, body, "")
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != code || !strings.Contains(string(b), msg) {
					t.Fatalf("%d %q, want %d with %q", resp.StatusCode, b, code, msg)
				}
			})
		}
		check("series limit", ReadLimits{SelectMaxSeries: 2}, 422, "too many series selected")
		check("at the series limit", ReadLimits{SelectMaxSeries: 3}, 200, "")
		if typ == prompb.ReadRequest_SAMPLES {
			check("sample limit", ReadLimits{RemoteReadMaxSamples: 899}, 422, "query.max_samples")
			check("at the sample limit", ReadLimits{RemoteReadMaxSamples: 900}, 200, "")
		}
		e.api.SetReadLimits(ReadLimits{RemoteReadConcurrency: 1, SelectTimeout: 50 * time.Millisecond})
		st := e.api.listingState()
		st.remoteReads <- struct{}{}
		resp := postRead(t, e.server.URL, body, "")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		<-st.remoteReads
		if resp.StatusCode != 503 || !strings.Contains(string(b), "too many remote reads") {
			t.Fatalf("%s, slots taken: %d %q", typ, resp.StatusCode, b)
		}
	}
}

// TestRemoteReadAuth: remote read is a read: a write-only credential is
// refused, a reader's is served.
func TestRemoteReadAuth(t *testing.T) {
	a, _ := newAuthAPI(t, mustPolicy(t, AuthOptions{Web: testWebConfig(t), Authorization: testAuthorization}))
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	body := encodeRead(t, &prompb.ReadRequest{Queries: []*prompb.Query{rrQuery(0, 1, matcher(prompb.LabelMatcher_EQ, "job", "etcd"))}})
	for user, want := range map[string]int{"writer": 403, "": 401, "reader": 200, "admin": 403} {
		resp := postRead(t, srv.URL, body, user)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%q: %d, want %d", user, resp.StatusCode, want)
		}
	}
}

// fakeSeries is a series of given samples for the frame writer.
type fakeSeries struct {
	lset    labels.Labels
	samples []prompb.Sample
}

func (s *fakeSeries) Labels() labels.Labels { return s.lset }
func (s *fakeSeries) Iterator(tsdb.Iterator) tsdb.Iterator {
	return &fakeIterator{s: s.samples, i: -1}
}

type fakeIterator struct {
	s []prompb.Sample
	i int
}

func (it *fakeIterator) Next() bool { it.i++; return it.i < len(it.s) }
func (it *fakeIterator) SeekTo(t int64) bool {
	for it.i < 0 || (it.i < len(it.s) && it.s[it.i].Timestamp < t) {
		it.i++
	}
	return it.i < len(it.s)
}
func (it *fakeIterator) At() (int64, float64) { return it.s[it.i].Timestamp, it.s[it.i].Value }
func (it *fakeIterator) Err() error           { return nil }

// TestFrameWriterSplitsSeries: a series too large for one frame is cut
// over frames that each stay within the bound, and reads back whole;
// worst-case samples (random values and irregular times) included.
func TestFrameWriterSplitsSeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		name     string
		maxFrame int
		n        int
		value    func(i int) float64
		step     func(i int) int64
	}{
		{"regular", 4096, 5000, func(i int) float64 { return float64(i % 7) }, func(int) int64 { return 15000 }},
		{"random values", 4096, 5000, func(int) float64 { return rng.NormFloat64() * 1e300 }, func(int) int64 { return 15000 }},
		{"random times and values", 8192, 3000, func(int) float64 { return math.Float64frombits(rng.Uint64()) },
			func(int) int64 { return rng.Int64N(1 << 40) }},
		{"one sample", 4096, 1, func(int) float64 { return 1 }, func(int) int64 { return 1 }},
		{"large frame, one frame", remoteReadFrameBytes, 10000, func(i int) float64 { return float64(i) }, func(int) int64 { return 1000 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &fakeSeries{lset: labels.FromStrings("__name__", "x", "pod", strings.Repeat("p", 300))}
			ts := int64(-1 << 50)
			for i := range c.n {
				ts += c.step(i)
				s.samples = append(s.samples, prompb.Sample{Timestamp: ts, Value: c.value(i)})
			}
			var buf bytes.Buffer
			fw := newFrameWriter(&buf, c.maxFrame)
			if err := fw.writeSeries(2, s, s.Iterator(nil)); err != nil {
				t.Fatal(err)
			}
			got := readFrames(t, bytes.NewReader(buf.Bytes()), c.maxFrame)
			if len(got) != 3 || len(got[2]) != 1 || got[2][0].Labels != s.lset.String() {
				t.Fatalf("got %d queries", len(got))
			}
			g := got[2][0].Samples
			if len(g) != len(s.samples) {
				t.Fatalf("%d samples, want %d", len(g), len(s.samples))
			}
			for i := range g {
				if g[i].Timestamp != s.samples[i].Timestamp || math.Float64bits(g[i].Value) != math.Float64bits(s.samples[i].Value) {
					t.Fatalf("sample %d: %v, want %v", i, g[i], s.samples[i])
				}
			}
		})
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("gone") }

func TestFrameWriterReportsWriteErrors(t *testing.T) {
	s := &fakeSeries{lset: labels.FromStrings("__name__", "x"), samples: []prompb.Sample{{Timestamp: 1, Value: 1}}}
	fw := newFrameWriter(errWriter{}, 4096)
	if err := fw.writeSeries(0, s, s.Iterator(nil)); !errors.Is(err, errReadClientGone) {
		t.Fatalf("err %v", err)
	}
}

// failingStore serves one series, then fails the select: a store (or a
// ring peer) that breaks in the middle of a read.
type failingStore struct{}

func (failingStore) Querier(int64, int64) (tsdb.Querier, error) { return failingQuerier{}, nil }

type failingQuerier struct{ tsdb.Querier }

func (failingQuerier) Select(context.Context, ...*labels.Matcher) tsdb.SeriesSet {
	return &failingSet{}
}
func (failingQuerier) Close() error { return nil }

type failingSet struct{ n int }

func (s *failingSet) Next() bool { s.n++; return s.n == 1 }
func (s *failingSet) At() tsdb.Series {
	return &fakeSeries{lset: labels.FromStrings("__name__", "up"), samples: []prompb.Sample{{Timestamp: 1, Value: 1}}}
}
func (s *failingSet) Err() error {
	if s.n > 1 {
		return errors.New("disk on fire")
	}
	return nil
}

// TestRemoteReadFailureMidStream: a store failing after the first frame
// cuts the stream, so that the client sees a failed read and never a
// short one taken for whole; SAMPLES, built before it is sent, answers
// the error with a 5xx.
func TestRemoteReadFailureMidStream(t *testing.T) {
	e := newTestEnv(t)
	e.api.SetRingReads(failingStore{})
	q := []*prompb.Query{rrQuery(0, 10, matcher(prompb.LabelMatcher_EQ, "__name__", "up"))}
	resp := postRead(t, e.server.URL, encodeRead(t, &prompb.ReadRequest{Queries: q}), "")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "disk on fire") {
		t.Fatalf("SAMPLES: %d %q", resp.StatusCode, b)
	}
	// The first frame may still sit in the server's buffer when the
	// store fails: the client then sees the connection cut before the
	// headers, else in the body; never a clean end.
	resp, err := http.Post(e.server.URL+"/api/v1/read", "application/x-protobuf", bytes.NewReader(encodeRead(t, &prompb.ReadRequest{Queries: q,
		AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS}})))
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("streamed: %d", resp.StatusCode)
		}
		_, err = io.ReadAll(resp.Body)
	}
	if err == nil {
		t.Fatal("the stream ended cleanly after the store failed: a client would take a partial read for a whole one")
	}
}
