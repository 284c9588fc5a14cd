package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// fanoutNode is one node of an in-process ring that reads through the
// fan-out: a head, the API (writes forwarded, reads fanned out) on a
// loopback server that can be taken down and brought back.
type fanoutNode struct {
	name  string
	head  *tsdb.Head
	api   *API
	srv   *httptest.Server
	down  atomic.Bool
	reads *ring.Queryable
	reg   *prometheus.Registry // the fan-out's metrics
}

// newFanoutRing starts n nodes with replication factor rf, every one
// reading the whole ring.
func newFanoutRing(t testing.TB, n, rf int) []*fanoutNode {
	t.Helper()
	var view atomic.Pointer[ring.Snapshot]
	nodes := make([]*fanoutNode, n)
	members := make([]ring.Node, n)
	for i := range nodes {
		fn := &fanoutNode{name: fmt.Sprintf("n%d", i)}
		var h atomic.Pointer[http.Handler]
		fn.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if fn.down.Load() {
				// A node that is down: its connections are refused.
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
			}
			(*h.Load()).ServeHTTP(w, r)
		}))
		t.Cleanup(fn.srv.Close)
		head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
		if err != nil {
			t.Fatal(err)
		}
		fn.head = head
		po := ring.DefaultPeerOptions()
		po.Registerer = prometheus.NewRegistry()
		peers, err := ring.NewPeers(po)
		if err != nil {
			t.Fatal(err)
		}
		opts := ingest.Options{Limits: ingest.DefaultLimits(), Now: func() time.Time { return testNow },
			Ring: &ingest.RingOptions{Self: fn.name, ReplicationFactor: rf, View: view.Load, Forwarder: peers}}
		in, err := ingest.New(head, opts)
		if err != nil {
			t.Fatal(err)
		}
		fo := ring.DefaultFanoutOptions()
		fo.Self, fo.Local, fo.View, fo.Peers, fo.ReplicationFactor = fn.name, head, view.Load, peers, rf
		fn.reg = prometheus.NewRegistry()
		fo.Registerer = fn.reg
		fo.PushdownMinSeries = 0
		local := evaluator.NewEngine(head, evaluator.Options{})
		fo.Aggregate = func(ctx context.Context, req ring.AggregateRequest, keys []uint64) ([]byte, error) {
			return AggregateLocally(ctx, local, head, req, keys)
		}
		if fn.reads, err = ring.NewQueryable(fo); err != nil {
			t.Fatal(err)
		}
		fn.api = New(Options{Ingester: in, Storage: head, Ring: staticRing{}, RingAggregate: fo.Aggregate})
		fn.api.SetRingReads(fn.reads)
		fn.api.SetQueryEngine(evaluator.NewEngine(PushdownStore(fn.reads, evaluator.DefaultMaxSeries), evaluator.Options{}))
		handler := fn.api.Handler()
		h.Store(&handler)
		nodes[i] = fn
		members[i] = ring.Node{Name: fn.name, URL: fn.srv.URL, State: ring.StateActive, Tokens: ring.GenerateTokens(128, nil)}
	}
	view.Store(ring.NewSnapshot(members))
	return nodes
}

// etcdFleet writes the samples of members etcd members (four fsync
// histogram buckets and a request counter each) at ts.
func etcdFleet(members int, ts int64, step int) []byte {
	var wr prompb.WriteRequest
	for m := range members {
		base := []prompb.Label{
			{Name: "cluster", Value: fmt.Sprintf("etcd-%d", m/3)},
			{Name: "instance", Value: fmt.Sprintf("10.0.0.%d:2379", m)},
		}
		for bi, le := range []string{"0.001", "0.01", "0.1", "+Inf"} {
			wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
				Labels:  append([]prompb.Label{{Name: "__name__", Value: "etcd_disk_wal_fsync_duration_seconds_bucket"}}, append(slices.Clone(base), prompb.Label{Name: "le", Value: le})...),
				Samples: []prompb.Sample{{Value: float64(step * (bi + 1) * (m + 1)), Timestamp: ts}},
			})
		}
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels: append([]prompb.Label{{Name: "__name__", Value: "etcd_server_proposals_committed_total"}}, base...),
			// + m/1000: no two members tie, so that topk's answer does not
			// depend on the order series come in.
			Samples: []prompb.Sample{{Value: float64(step*(m%5+1)) + float64(m)/1000, Timestamp: ts}},
		})
	}
	raw, _ := wr.Marshal()
	return snappy.Encode(nil, raw)
}

// fanoutQueries are the queries compared with one store's answers.
var fanoutQueries = []string{
	`rate(etcd_server_proposals_committed_total[5m])`,
	`sum by (cluster) (rate(etcd_server_proposals_committed_total[5m]))`,
	`histogram_quantile(0.99, sum by (cluster, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))`,
	`topk(3, etcd_server_proposals_committed_total)`,
	`absent(etcd_server_proposals_committed_total{cluster="nope"})`,
	`absent(etcd_server_proposals_committed_total)`,
	`count(etcd_disk_wal_fsync_duration_seconds_bucket)`,
	`count by (le) (etcd_disk_wal_fsync_duration_seconds_bucket)`,
}

type apiAnswer struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
	Warnings  []string        `json:"warnings"`
}

func apiGet(t testing.TB, base, path string, params url.Values) (int, apiAnswer) {
	t.Helper()
	resp, err := http.Get(base + path + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a apiAnswer
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s: %v: %s", path, err, b)
	}
	return resp.StatusCode, a
}

// canonical returns a query answer's data with its series in a fixed
// order: two engines over differently ordered stores may list a vector
// in different orders.
func canonical(t testing.TB, data json.RawMessage) string {
	t.Helper()
	var d struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	rs := make([]string, len(d.Result))
	for i, r := range d.Result {
		rs[i] = string(r)
	}
	slices.Sort(rs)
	return d.ResultType + ":" + strings.Join(rs, "\n")
}

// TestFanoutEqualsOneStore: four nodes with RF 3 (each holds about 3/4
// of the series), one of them down while some samples are written (its
// replicas have gaps), then back. Every query through every node equals
// the answer of one store holding all the data; with one node down the
// answers are the same and carry no warning; with two down they carry a
// partial-response warning naming them, or fail with 503 under
// partial_response=false. /api/v1/series lists each series once.
func TestFanoutEqualsOneStore(t *testing.T) {
	nodes := newFanoutRing(t, 4, 3)
	ref := newTestEnv(t)
	ref.api.SetQueryEngine(evaluator.NewEngine(ref.head, evaluator.Options{}))
	const members = 30
	for step := range 41 { // 10 minutes at 15 s
		ts := ms(10*time.Minute) + int64(step)*15000
		body := etcdFleet(members, ts, step)
		// n0 misses a stretch: the first node of the ring's order, so
		// that its gapped copies come first in every merge.
		nodes[0].down.Store(step >= 10 && step < 20)
		via := nodes[1+step%3]
		if code := postBody(t, via.srv.URL, body); code != http.StatusNoContent {
			t.Fatalf("write %d through %s: %d", step, via.name, code)
		}
		if code, msg := ref.post(body, nil); code != http.StatusNoContent {
			t.Fatalf("reference write: %d %s", code, msg)
		}
	}
	nodes[0].down.Store(false)
	// Writes are answered at quorum: wait until every third copy landed.
	want := ref.head.NumSeries()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var total int64
		for _, n := range nodes {
			total += int64(n.head.NumSeries())
		}
		if total == 3*int64(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range nodes {
		if n.head.NumSeries() == want {
			t.Fatalf("node %s holds every series: the test needs each node to miss some", n.name)
		}
	}

	at := strconv.FormatInt(ms(0)/1000, 10)
	compare := func(label string, down int) {
		t.Helper()
		for _, q := range fanoutQueries {
			_, wantI := apiGet(t, ref.server.URL, "/api/v1/query", url.Values{"query": {q}, "time": {at}})
			rp := url.Values{"query": {q}, "start": {strconv.FormatInt(ms(8*time.Minute)/1000, 10)}, "end": {at}, "step": {"30"}}
			_, wantR := apiGet(t, ref.server.URL, "/api/v1/query_range", rp)
			for _, n := range nodes {
				if n.down.Load() {
					continue
				}
				for _, c := range []struct {
					path string
					p    url.Values
					want apiAnswer
				}{{"/api/v1/query", url.Values{"query": {q}, "time": {at}}, wantI}, {"/api/v1/query_range", rp, wantR}} {
					code, got := apiGet(t, n.srv.URL, c.path, c.p)
					if code != http.StatusOK {
						t.Fatalf("%s: %s %s through %s: %d %s", label, c.path, q, n.name, code, got.Error)
					}
					// With two of four down, a series whose live copy is the
					// one that missed a stretch (n0's) has a gap: partial.
					if g, w := canonical(t, got.Data), canonical(t, c.want.Data); g != w && down < 2 {
						t.Fatalf("%s: %s %s through %s:\n got %s\nwant %s", label, c.path, q, n.name, g, w)
					}
					if hasPartial(got.Warnings) != (down >= 2) {
						t.Fatalf("%s: %s %s through %s: warnings %q", label, c.path, q, n.name, got.Warnings)
					}
				}
			}
		}
		// /api/v1/series lists each series exactly once, through every node.
		_, wantS := apiGet(t, ref.server.URL, "/api/v1/series", url.Values{"match[]": {`{__name__=~"etcd_.+"}`}})
		for _, n := range nodes {
			if n.down.Load() {
				continue
			}
			_, got := apiGet(t, n.srv.URL, "/api/v1/series", url.Values{"match[]": {`{__name__=~"etcd_.+"}`}})
			if string(got.Data) != string(wantS.Data) && down < 2 {
				t.Fatalf("%s: series through %s differ from one store's", label, n.name)
			}
			for _, p := range []string{"/api/v1/labels", "/api/v1/label/instance/values"} {
				_, w := apiGet(t, ref.server.URL, p, nil)
				_, g := apiGet(t, n.srv.URL, p, nil)
				if string(g.Data) != string(w.Data) && down < 2 {
					t.Fatalf("%s: %s through %s: %s, want %s", label, p, n.name, g.Data, w.Data)
				}
				if hasPartial(g.Warnings) != (down >= 2) {
					t.Fatalf("%s: %s through %s: warnings %q", label, p, n.name, g.Warnings)
				}
			}
		}
	}
	var seriesCount []json.RawMessage
	_, s := apiGet(t, nodes[0].srv.URL, "/api/v1/series", url.Values{"match[]": {`{__name__=~"etcd_.+"}`}})
	if err := json.Unmarshal(s.Data, &seriesCount); err != nil || len(seriesCount) != members*5 {
		t.Fatalf("series through n0: %d, want %d (%v)", len(seriesCount), members*5, err)
	}

	compare("all up", 0)
	// The aggregations were pushed down; the series n0 missed a stretch
	// of were read raw (the answers above are the proof they were right).
	var pushed, raw float64
	for _, n := range nodes {
		pushed += gathered(t, n.reg, "etcdgate_ring_pushdown_aggregations_total", "outcome", "pushed")
		raw += gathered(t, n.reg, "etcdgate_ring_pushdown_raw_series_total", "", "")
	}
	if pushed == 0 || raw == 0 {
		t.Fatalf("pushed-down aggregations %v, raw series %v: want both", pushed, raw)
	}
	nodes[1].down.Store(true)
	compare("n1 down", 1)
	nodes[2].down.Store(true)
	compare("n1, n2 down", 2)
	for _, p := range []string{"/api/v1/query", "/api/v1/series", "/api/v1/labels", "/api/v1/label/le/values"} {
		code, a := apiGet(t, nodes[0].srv.URL, p, url.Values{"query": {"up"}, "match[]": {"{le!=\"\"}"}, "partial_response": {"false"}})
		if code != http.StatusServiceUnavailable || !strings.Contains(a.Error, "n1, n2") {
			t.Fatalf("%s with partial_response=false: %d %q", p, code, a.Error)
		}
	}
	if code, _ := apiGet(t, nodes[0].srv.URL, "/api/v1/query", url.Values{"query": {"up"}, "partial_response": {"maybe"}}); code != http.StatusBadRequest {
		t.Fatalf("partial_response=maybe: %d, want 400", code)
	}
	// /api/v1/status/tsdb stays local, and says so.
	if code, a := apiGet(t, nodes[0].srv.URL, "/api/v1/status/tsdb", nil); code != http.StatusOK || len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "this node's store only") {
		t.Fatalf("status/tsdb in a ring: %d, warnings %q", code, a.Warnings)
	}
}

// gathered is the value of the metric name (with label=value, when
// label is set) in reg.
func gathered(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == label && l.GetValue() == value }) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{%s=%q}", name, label, value)
	return 0
}

// TestInternalAggregateMalformed: bad parameters of the internal
// aggregate endpoint, and aggregations the engine does not push down,
// are 400 before any work; a good one answers a partial aggregate.
func TestInternalAggregateMalformed(t *testing.T) {
	nodes := newFanoutRing(t, 2, 2)
	if code := postBody(t, nodes[0].srv.URL, etcdFleet(3, ms(time.Minute), 1)); code != http.StatusNoContent {
		t.Fatalf("write: %d", code)
	}
	keys := snappy.Encode(nil, make([]byte, 8))
	post := func(q url.Values, body []byte) (int, []byte) {
		resp, err := http.Post(nodes[0].srv.URL+ring.AggregatePath+"?"+q.Encode(), "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	good := func() url.Values {
		return url.Values{"expr": {"sum(rate(etcd_server_proposals_committed_total[5m]))"}, "start": {"60000"}, "end": {"60000"},
			"step": {"1"}, "lookback": {"300000"}}
	}
	for _, c := range []struct {
		name string
		set  [2]string
		body []byte
	}{
		{"no expr", [2]string{"expr", ""}, keys},
		{"step not a number", [2]string{"step", "1s"}, keys},
		{"keys not snappy", [2]string{}, []byte("nonsense")},
		{"not an aggregation", [2]string{"expr", "etcd_server_proposals_committed_total"}, keys},
		{"topk is not pushed down", [2]string{"expr", "topk(1, rate(etcd_server_proposals_committed_total[5m]))"}, keys},
		{"unparsable", [2]string{"expr", "sum(rate(x[5m]"}, keys},
	} {
		q := good()
		if c.set[0] != "" {
			q.Set(c.set[0], c.set[1])
		}
		if code, b := post(q, c.body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", c.name, code, b)
		}
	}
	code, b := post(good(), keys)
	if code != http.StatusOK {
		t.Fatalf("good request: %d %s", code, b)
	}
}

func hasPartial(ws []string) bool {
	for _, w := range ws {
		if strings.Contains(w, "partial response") {
			return true
		}
	}
	return false
}

// TestInternalSelectMalformed: bad parameters of the internal select
// are 400 before any work; a good one streams the local store only.
func TestInternalSelectMalformed(t *testing.T) {
	nodes := newFanoutRing(t, 2, 2)
	body := etcdFleet(3, ms(time.Minute), 1)
	if code := postBody(t, nodes[0].srv.URL, body); code != http.StatusNoContent {
		t.Fatalf("write: %d", code)
	}
	base := url.Values{"match[]": {`{__name__="etcd_server_proposals_committed_total"}`}, "start": {"0"}, "end": {strconv.FormatInt(ms(0), 10)}, "limit": {"100"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range base {
			v[k] = slices.Clone(vs)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<del>" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	for _, c := range []struct {
		name string
		p    url.Values
	}{
		{"bad matcher", with("match[]", `{__name__=~"(("}`)},
		{"not a selector", with("match[]", `sum(up)`)},
		{"empty matcher only", with("match[]", `{a=""}`)},
		{"two selectors", url.Values{"match[]": {"{a=\"b\"}", "{c=\"d\"}"}, "start": {"0"}, "end": {"1"}, "limit": {"1"}}},
		{"or selector", with("match[]", `{a="b" or c="d"}`)},
		{"no selector", with("match[]", "<del>")},
		{"negative range", with("start", "100", "end", "99")},
		{"start not a number", with("start", "yesterday")},
		{"end missing", with("end", "<del>")},
		{"huge limit", with("limit", "100000000000")},
		{"limit past max_series", with("limit", strconv.Itoa(evaluator.DefaultMaxSeries+1))},
		{"zero limit", with("limit", "0")},
		{"negative limit", with("limit", "-1")},
		{"no limit", with("limit", "<del>")},
		{"unknown mode", with("mode", "chunks")},
		{"chunks not 0 or 1", with("chunks", "yes")},
		{"values without name", with("mode", "values")},
		{"values of a bad name", with("mode", "values", "name", "a-b")},
		{"query too long", with("match[]", `{a="`+strings.Repeat("x", evaluator.DefaultMaxQueryLength)+`"}`)},
		{"keys not base64", with("keys", "!!!!")},
		{"keys not whole", with("keys", ring.EncodeKeys([]uint64{1, 2})[:7])},
		{"keys with mode labels", with("mode", "labels", "keys", ring.EncodeKeys([]uint64{1}))},
		{"digests without a selector", with("mode", "digests", "match[]", "<del>")},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.PostForm(nodes[0].srv.URL+ring.SelectPath, c.p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", resp.StatusCode, b)
			}
		})
	}
	// A good request answers from the local store only: as many series
	// as that node holds.
	for _, n := range nodes {
		resp, err := http.PostForm(n.srv.URL+ring.SelectPath, base)
		if err != nil {
			t.Fatal(err)
		}
		res := &ring.SelectResult{}
		d := ring.NewSelectDecoder(resp.Body, ring.SelectLimits{MaxFrameBytes: 1 << 20, MaxBytes: 1 << 20, MaxSeries: 100})
		var f ring.Frame
		for {
			err := d.Next(&f)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			res.Series = append(res.Series, ring.SelectedSeries{Labels: f.Labels})
		}
		resp.Body.Close()
		q, _ := n.head.Querier(0, ms(0))
		set := q.Select(t.Context(), mustMatchers(t, `{__name__="etcd_server_proposals_committed_total"}`)...)
		local := 0
		for set.Next() {
			local++
		}
		q.Close()
		if len(res.Series) != local || local == 0 {
			t.Fatalf("%s: select streamed %d series, its store holds %d", n.name, len(res.Series), local)
		}
	}
	// chunks=1: the same series, as chunk frames.
	resp, err := http.PostForm(nodes[0].srv.URL+ring.SelectPath, with("chunks", "1"))
	if err != nil {
		t.Fatal(err)
	}
	d := ring.NewSelectDecoder(resp.Body, ring.SelectLimits{MaxFrameBytes: 1 << 20, MaxBytes: 1 << 20, MaxSeries: 100})
	chunked := 0
	for f := (ring.Frame{}); ; {
		err := d.Next(&f)
		if err == io.EOF {
			break
		}
		if err != nil || f.Kind != 'k' || len(f.Chunks) == 0 {
			t.Fatalf("chunks=1: frame %q with %d chunks, err %v; want chunk frames", f.Kind, len(f.Chunks), err)
		}
		chunked++
	}
	resp.Body.Close()
	if chunked == 0 {
		t.Fatal("chunks=1: no series")
	}
	// Over the limit: an error frame marked as the series limit.
	resp, err = http.PostForm(nodes[0].srv.URL+ring.SelectPath, with("limit", "1"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	d = ring.NewSelectDecoder(resp.Body, ring.SelectLimits{MaxFrameBytes: 1 << 20, MaxBytes: 1 << 20, MaxSeries: 100})
	var f ring.Frame
	err = d.Next(&f)
	var se *ring.SelectError
	if !errors.As(err, &se) || !se.TooManySeries {
		t.Fatalf("limit 1: %v, want a too-many-series error frame", err)
	}
}

func mustMatchers(t *testing.T, s string) []*labels.Matcher {
	t.Helper()
	sets, err := parseMatchers([]string{s}, evaluator.ParseLimits{MaxLength: 1 << 16, MaxDepth: 100})
	if err != nil || len(sets) != 1 {
		t.Fatal(err)
	}
	return sets[0]
}
