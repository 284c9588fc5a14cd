package ring

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/etcdgate/etcdgate/tsdb"
)

func TestMergeSeries(t *testing.T) {
	a := labels.FromStrings("__name__", "m", "i", "a")
	b := labels.FromStrings("__name__", "m", "i", "b")
	c := labels.FromStrings("__name__", "m", "i", "c")
	s := func(ts ...int64) []Sample {
		out := make([]Sample, len(ts))
		for i, t := range ts {
			out[i] = Sample{T: t, V: float64(t)}
		}
		return out
	}
	type want struct {
		lset labels.Labels
		ts   []int64
	}
	for _, tc := range []struct {
		name    string
		results []*SelectResult
		limit   int
		want    []want
		wantErr error
	}{
		{
			name: "replicas with gaps fill each other",
			results: []*SelectResult{
				{Series: []SelectedSeries{{Labels: a, Samples: s(1, 2, 5)}}},
				{Series: []SelectedSeries{{Labels: a, Samples: s(2, 3, 4)}}},
				{Series: []SelectedSeries{{Labels: a, Samples: s(1, 6)}}},
			},
			want: []want{{a, []int64{1, 2, 3, 4, 5, 6}}},
		},
		{
			name: "different label sets stay apart, sorted",
			results: []*SelectResult{
				{Series: []SelectedSeries{{Labels: c, Samples: s(1)}, {Labels: a, Samples: s(1)}}},
				{Series: []SelectedSeries{{Labels: b, Samples: s(2)}, {Labels: c, Samples: s(1)}}},
				nil, // a failed node
			},
			want: []want{{a, []int64{1}}, {b, []int64{2}}, {c, []int64{1}}},
		},
		{
			name: "a long series in frames, and a replica with all of it",
			results: []*SelectResult{
				{Series: []SelectedSeries{{Labels: a, Samples: s(1, 2)}, {Labels: a, Samples: s(3, 4)}}},
				{Series: []SelectedSeries{{Labels: a, Samples: s(1, 2, 3, 4)}}},
			},
			want: []want{{a, []int64{1, 2, 3, 4}}},
		},
		{
			name: "labels only",
			results: []*SelectResult{
				{Series: []SelectedSeries{{Labels: b}, {Labels: a}}},
				{Series: []SelectedSeries{{Labels: b}}},
			},
			want: []want{{a, nil}, {b, nil}},
		},
		{
			name: "replicas count once against the limit",
			results: []*SelectResult{
				{Series: []SelectedSeries{{Labels: a}, {Labels: b}}},
				{Series: []SelectedSeries{{Labels: a}, {Labels: b}}},
			},
			limit: 2,
			want:  []want{{a, nil}, {b, nil}},
		},
		{
			name: "more distinct series than the limit",
			results: []*SelectResult{
				{Series: []SelectedSeries{{Labels: a}, {Labels: b}}},
				{Series: []SelectedSeries{{Labels: c}}},
			},
			limit:   2,
			wantErr: tsdb.ErrTooManySeries,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeSeries(tc.results, tc.limit, true, math.MinInt64, math.MaxInt64)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d series, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				if !labels.Equal(got[i].lset, w.lset) {
					t.Fatalf("series %d: %s, want %s", i, got[i].lset, w.lset)
				}
				var ts []int64
				it := got[i].Iterator(nil)
				for it.Next() {
					t, v := it.At()
					if v != float64(t) {
						panic("value")
					}
					ts = append(ts, t)
				}
				if !slices.Equal(ts, w.ts) {
					t.Fatalf("series %s: timestamps %v, want %v", w.lset, ts, w.ts)
				}
			}
		})
	}
}

func TestMergeSamplesTieKeepsFirst(t *testing.T) {
	got := mergeSamples([]Sample{{1, 10}, {3, 30}}, []Sample{{1, 99}, {2, 20}, {3, 99}})
	if !slices.Equal(got, []Sample{{1, 10}, {2, 20}, {3, 30}}) {
		t.Fatalf("%v", got)
	}
}

func TestSampleIteratorSeek(t *testing.T) {
	it := (&mergedSeries{samples: []Sample{{10, 1}, {20, 2}, {30, 3}}}).Iterator(nil)
	for _, c := range []struct {
		seek int64
		ok   bool
		at   int64
	}{{5, true, 10}, {10, true, 10}, {11, true, 20}, {20, true, 20}, {30, true, 30}, {31, false, 0}} {
		if ok := it.SeekTo(c.seek); ok != c.ok {
			t.Fatalf("SeekTo(%d) = %v", c.seek, ok)
		} else if ok {
			if ts, _ := it.At(); ts != c.at {
				t.Fatalf("SeekTo(%d) at %d, want %d", c.seek, ts, c.at)
			}
		}
	}
	if it.Next() {
		t.Fatal("Next after the end")
	}
}

// selectHandler serves SelectPath from a head, parsing the parameters
// as the api does (the api's own parsing is tested there).
func selectHandler(t testing.TB, h *tsdb.Head) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != SelectPath || r.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		req := SelectRequest{Mode: r.Form.Get("mode"), Name: r.Form.Get("name")}
		req.Mint, _ = strconv.ParseInt(r.Form.Get("start"), 10, 64)
		req.Maxt, _ = strconv.ParseInt(r.Form.Get("end"), 10, 64)
		req.Limit, _ = strconv.Atoi(r.Form.Get("limit"))
		req.Chunks = r.Form.Get("chunks") == "1" && req.Mode == SelectSeries
		if k := r.Form.Get("keys"); k != "" {
			keys, err := DecodeKeys(k, 1<<20)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			req.SetKeys(keys)
		}
		if s := r.Form.Get("match[]"); s != "" {
			ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(s)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			req.Matchers = ms
		}
		q, err := h.Querier(req.Mint, req.Maxt)
		if err != nil {
			t.Error(err)
			return
		}
		defer q.Close()
		_ = WriteSelect(r.Context(), q, req, w)
	})
}

func appendTo(t testing.TB, h *tsdb.Head, lset labels.Labels, ts ...int64) {
	t.Helper()
	app := h.Appender()
	for _, x := range ts {
		if err := app.Append(lset, x, float64(x)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// testFanout is node n0 of a three-node ring whose peers n1 and n2 serve
// heads over HTTP.
type testFanout struct {
	q     *Queryable
	heads [3]*tsdb.Head
	down  [3]atomic.Bool
	reg   *prometheus.Registry
}

func newTestFanout(t *testing.T, rf int) *testFanout {
	tf := &testFanout{reg: prometheus.NewRegistry()}
	var nodes []Node
	for i := range tf.heads {
		h, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
		if err != nil {
			t.Fatal(err)
		}
		tf.heads[i] = h
		name := "n" + strconv.Itoa(i)
		serve := selectHandler(t, h)
		n := startPeer(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tf.down[i].Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			serve.ServeHTTP(w, r)
		}))
		n.Tokens = GenerateTokens(16, nil)
		nodes = append(nodes, *n)
	}
	// A JOINING node is not asked.
	nodes = append(nodes, Node{Name: "joining", URL: "http://127.0.0.1:1", State: StateJoining})
	snap := NewSnapshot(nodes)
	peers, err := NewPeers(PeerOptions{Registerer: tf.reg})
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultFanoutOptions()
	opts.Self, opts.Local, opts.View, opts.Peers, opts.ReplicationFactor = "n0", tf.heads[0], func() *Snapshot { return snap }, peers, rf
	opts.Registerer = tf.reg
	if tf.q, err = NewQueryable(opts); err != nil {
		t.Fatal(err)
	}
	return tf
}

func selectAll(t *testing.T, ctx context.Context, q tsdb.Queryable, ms ...*labels.Matcher) (map[string][]int64, error) {
	t.Helper()
	qr, err := q.Querier(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer qr.Close()
	set := qr.Select(ctx, ms...)
	out := map[string][]int64{}
	var prev labels.Labels
	for set.Next() {
		s := set.At()
		if !prev.IsEmpty() && labels.Compare(prev, s.Labels()) >= 0 {
			t.Fatalf("series not sorted: %s after %s", s.Labels(), prev)
		}
		prev = s.Labels()
		it := s.Iterator(nil)
		for it.Next() {
			ts, _ := it.At()
			out[s.Labels().String()] = append(out[s.Labels().String()], ts)
		}
	}
	return out, set.Err()
}

// TestFanoutQueryable: replicas with gaps merge into whole series; one
// node of three down still answers everything without a warning; two
// down answer with a warning naming them, or fail when partial answers
// are refused.
func TestFanoutQueryable(t *testing.T) {
	tf := newTestFanout(t, 3)
	a := labels.FromStrings("__name__", "m", "i", "a")
	b := labels.FromStrings("__name__", "m", "i", "b")
	other := labels.FromStrings("__name__", "other", "i", "a")
	// a: each replica misses a different sample; b: only on n1 and n2
	// (n0 missed it); other is not selected.
	appendTo(t, tf.heads[0], a, 10, 20)
	appendTo(t, tf.heads[1], a, 10, 30)
	appendTo(t, tf.heads[2], a, 20, 30)
	appendTo(t, tf.heads[1], b, 10)
	appendTo(t, tf.heads[2], b, 10, 20)
	for _, h := range tf.heads {
		appendTo(t, h, other, 10)
	}
	m := labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")
	want := map[string][]int64{a.String(): {10, 20, 30}, b.String(): {10, 20}}

	check := func(name string, wantWarn bool, wantSeries map[string][]int64) {
		t.Helper()
		ctx, ws := WithWarnings(context.Background())
		got, err := selectAll(t, ctx, tf.q, m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !mapsEqual(got, wantSeries) {
			t.Fatalf("%s: got %v, want %v", name, got, wantSeries)
		}
		if w := ws.Strings(); (len(w) > 0) != wantWarn {
			t.Fatalf("%s: warnings %q, want a warning: %v", name, w, wantWarn)
		}
	}
	check("all up", false, want)

	tf.down[2].Store(true)
	check("n2 down", false, map[string][]int64{a.String(): {10, 20, 30}, b.String(): {10}})

	tf.down[1].Store(true)
	ctx, ws := WithWarnings(context.Background())
	got, err := selectAll(t, ctx, tf.q, m)
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(got, map[string][]int64{a.String(): {10, 20}}) {
		t.Fatalf("n1, n2 down: %v", got)
	}
	w := ws.Strings()
	if len(w) != 1 || !strings.Contains(w[0], "n1, n2") || !strings.Contains(w[0], "partial response") {
		t.Fatalf("warnings %q, want one naming n1, n2", w)
	}
	_, err = selectAll(t, WithPartialResponse(context.Background(), false), tf.q, m)
	if !errors.Is(err, ErrPartialResponse) || !strings.Contains(err.Error(), "n1, n2") {
		t.Fatalf("partial_response=false: %v", err)
	}
	tf.q.SetPartialResponse(false)
	if _, err = selectAll(t, context.Background(), tf.q, m); !errors.Is(err, ErrPartialResponse) {
		t.Fatalf("query.partial_response false: %v", err)
	}
	if _, err = selectAll(t, WithPartialResponse(context.Background(), true), tf.q, m); err != nil {
		t.Fatalf("request allows what the default refuses: %v", err)
	}
	if got := testutil.ToFloat64(tf.q.partials.WithLabelValues("refused")); got != 2 {
		t.Fatalf("refused partial responses %v, want 2", got)
	}
	if got := testutil.ToFloat64(tf.q.partials.WithLabelValues("warned")); got != 2 {
		t.Fatalf("warned partial responses %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(tf.reg, "etcdgate_ring_fanout_requests_total"); err != nil || n == 0 {
		t.Fatalf("fan-out request metrics: %d series, %v", n, err)
	}
}

func mapsEqual(a, b map[string][]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestFanoutLabelsAndLimits(t *testing.T) {
	tf := newTestFanout(t, 3)
	for i, h := range tf.heads {
		for j := range 3 {
			appendTo(t, h, labels.FromStrings("__name__", "m", "node", strconv.Itoa(i), "j", strconv.Itoa(j), "only"+strconv.Itoa(i), "x"), 10)
		}
	}
	ctx := context.Background()
	q, _ := tf.q.Querier(0, 1000)
	names, err := q.LabelNames(ctx)
	if err != nil || !slices.Equal(names, []string{"__name__", "j", "node", "only0", "only1", "only2"}) {
		t.Fatalf("label names %q, %v", names, err)
	}
	vals, err := q.LabelValues(ctx, "node", labels.MustNewMatcher(labels.MatchRegexp, "node", "[12]"))
	if err != nil || !slices.Equal(vals, []string{"1", "2"}) {
		t.Fatalf("label values %q, %v", vals, err)
	}
	m := labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")
	var listed []labels.Labels
	if err := q.(tsdb.SeriesLister).ListSeries(ctx, func(l labels.Labels) bool { listed = append(listed, l); return true }, m); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(listed, labels.Compare)
	if len(listed) != 9 || len(slices.CompactFunc(listed, labels.Equal)) != 9 {
		t.Fatalf("listed %d series, want 9 distinct", len(listed))
	}
	// The series limit: a peer's limit error fails the select (not a
	// missing node), and so does the merged count.
	for _, lim := range []int{2, 8} {
		_, err := selectAll(t, tsdb.WithSeriesLimit(ctx, lim), tf.q, m)
		if !errors.Is(err, tsdb.ErrTooManySeries) {
			t.Fatalf("limit %d: %v, want ErrTooManySeries", lim, err)
		}
	}
	if got, err := selectAll(t, tsdb.WithSeriesLimit(ctx, 9), tf.q, m); err != nil || len(got) != 9 {
		t.Fatalf("limit 9: %d series, %v", len(got), err)
	}
	// One byte budget for all the nodes' answers: past it the read fails
	// (it is no missing node, so no partial answer).
	tf.q.opts.MaxBytesPerRead = 200
	rctx, ws := WithWarnings(ctx)
	if _, err := selectAll(t, rctx, tf.q, m); !errors.Is(err, ErrReadTooLarge) || len(ws.Strings()) != 0 {
		t.Fatalf("answers past MaxBytesPerRead: %v, warnings %q", err, ws.Strings())
	}
}
