package ring

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// testAggregate is an AggregateFunc that "aggregates" by listing the
// series it was given (from the store restricted to their keys), one
// per line, with their timestamps: what each node evaluated is then
// visible to the test.
func testAggregate(store tsdb.Queryable) AggregateFunc {
	return func(ctx context.Context, req AggregateRequest, keys []uint64) ([]byte, error) {
		got, err := seriesOf(ctx, KeyedStore(store, keys), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, s := range got {
			b.WriteString(s + "\n")
		}
		return []byte(b.String()), nil
	}
}

// seriesOf lists every selected series as "labels timestamps".
func seriesOf(ctx context.Context, store tsdb.Queryable, ms ...*labels.Matcher) ([]string, error) {
	q, err := store.Querier(0, 1000)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	set := q.SelectUnsorted(ctx, ms...)
	var out []string
	for set.Next() {
		var ts []string
		it := set.At().Iterator(nil)
		for it.Next() {
			t, _ := it.At()
			ts = append(ts, strconv.FormatInt(t, 10))
		}
		out = append(out, set.At().Labels().String()+" "+strings.Join(ts, ","))
	}
	return out, set.Err()
}

// newPushdownRing is a three-node ring (node n0 asks) whose nodes serve
// selects and aggregations from heads; failAggregate[i] makes node i's
// aggregate endpoint answer 500.
type pushdownRing struct {
	*testFanout
	failAggregate [3]atomic.Bool
	aggregated    [3]atomic.Int64
}

func newPushdownRing(t *testing.T) *pushdownRing {
	pr := &pushdownRing{testFanout: &testFanout{reg: prometheus.NewRegistry()}}
	var nodes []Node
	for i := range pr.heads {
		h, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
		if err != nil {
			t.Fatal(err)
		}
		pr.heads[i] = h
		sel := selectHandler(t, h)
		agg := testAggregate(h)
		n := startPeer(t, "n"+strconv.Itoa(i), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != AggregatePath {
				sel.ServeHTTP(w, r)
				return
			}
			pr.aggregated[i].Add(1)
			if pr.failAggregate[i].Load() {
				http.Error(w, "broken", http.StatusInternalServerError)
				return
			}
			req, keys, err := ParseAggregateRequest(r, 1000)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			b, err := agg(r.Context(), req, keys)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			WriteAggregate(w, b)
		}))
		n.Tokens = GenerateTokens(16, nil)
		nodes = append(nodes, *n)
	}
	snap := NewSnapshot(nodes)
	peers, err := NewPeers(PeerOptions{Registerer: pr.reg})
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultFanoutOptions()
	opts.Self, opts.Local, opts.View, opts.Peers, opts.ReplicationFactor = "n0", pr.heads[0], func() *Snapshot { return snap }, peers, 3
	opts.Registerer = pr.reg
	opts.PushdownMinSeries = 0
	local := testAggregate(pr.heads[0])
	opts.Aggregate = func(ctx context.Context, req AggregateRequest, keys []uint64) ([]byte, error) {
		pr.aggregated[0].Add(1)
		return local(ctx, req, keys)
	}
	if pr.q, err = NewQueryable(opts); err != nil {
		t.Fatal(err)
	}
	return pr
}

var testAggregateRequest = AggregateRequest{Expr: "sum(m)", Start: 100, End: 100, Interval: 1, LookbackDelta: 300_000,
	Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")}, Mint: 0, Maxt: 1000}

// TestPushAggregate: every series is evaluated exactly once, by a node
// that holds it, when its copies agree; a series whose copies differ is
// read raw, whole (its replicas' samples merged), by the asking node.
func TestPushAggregate(t *testing.T) {
	pr := newPushdownRing(t)
	var want []string
	for i := range 60 {
		lset := labels.FromStrings("__name__", "m", "i", strconv.Itoa(i))
		on := []int{0, 1, 2}
		switch i % 4 {
		case 1:
			on = []int{1, 2} // n0 never had it
		case 2:
			on = []int{2}
		}
		for _, n := range on {
			appendTo(t, pr.heads[n], lset, 10, 20)
		}
		want = append(want, lset.String()+" 10,20")
	}
	// A series whose replicas each missed a sample: read raw, merged.
	gappy := labels.FromStrings("__name__", "m", "i", "gappy")
	appendTo(t, pr.heads[0], gappy, 10, 30)
	appendTo(t, pr.heads[1], gappy, 10, 20, 30)
	appendTo(t, pr.heads[2], gappy, 20, 30)
	want = append(want, gappy.String()+" 10,20,30")
	appendTo(t, pr.heads[1], labels.FromStrings("__name__", "other"), 10) // not selected

	partials, rest, err := pr.q.PushAggregate(context.Background(), testAggregateRequest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range partials {
		got = append(got, strings.Split(strings.TrimSuffix(string(p), "\n"), "\n")...)
	}
	if rest == nil {
		t.Fatal("no series to read raw, want the gappy one")
	}
	raw, err := seriesOf(context.Background(), rest, testAggregateRequest.Matchers...)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{gappy.String() + " 10,20,30"}; !slices.Equal(raw, want) {
		t.Fatalf("read raw %q, want %q", raw, want)
	}
	got = append(got, raw...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("evaluated\n%q\nwant each series once\n%q", got, want)
	}
	for i := range pr.aggregated {
		if pr.aggregated[i].Load() != 1 {
			t.Fatalf("node n%d aggregated %d times, want once (series are spread over every holder)", i, pr.aggregated[i].Load())
		}
	}
	if v := testutil.ToFloat64(pr.q.pushdowns.WithLabelValues("pushed")); v != 1 {
		t.Fatalf("pushed %v, want 1", v)
	}
	if v := testutil.ToFloat64(pr.q.rawSeries); v != 1 {
		t.Fatalf("raw series %v, want 1", v)
	}
}

// TestPushAggregateDeclines: a node failing in the second phase, a ring
// of one node and a node without an AggregateFunc decline, so that the
// engine reads through the fan-out and loses nothing.
func TestPushAggregateDeclines(t *testing.T) {
	pr := newPushdownRing(t)
	for i := range 30 {
		lset := labels.FromStrings("__name__", "m", "i", strconv.Itoa(i))
		for _, h := range pr.heads {
			appendTo(t, h, lset, 10)
		}
	}
	pr.failAggregate[2].Store(true)
	if _, _, err := pr.q.PushAggregate(context.Background(), testAggregateRequest); !errors.Is(err, ErrNotPushed) {
		t.Fatalf("node failing in phase 2: %v, want ErrNotPushed", err)
	}
	if v := testutil.ToFloat64(pr.q.pushdowns.WithLabelValues("declined")); v != 1 {
		t.Fatalf("declined %v, want 1", v)
	}
	pr.failAggregate[2].Store(false)

	// A node down in phase 1 is a missing node, as in any read: its
	// series are evaluated on the others, with no warning at RF 3.
	pr.down[2].Store(true)
	ctx, ws := WithWarnings(context.Background())
	partials, rest, err := pr.q.PushAggregate(ctx, testAggregateRequest)
	if err != nil || rest != nil || len(ws.Strings()) != 0 {
		t.Fatalf("one node down: %v, rest %v, warnings %q", err, rest, ws.Strings())
	}
	if n := bytes.Count(bytes.Join(partials, nil), []byte("\n")); n != 30 {
		t.Fatalf("one node down: %d series evaluated, want 30", n)
	}
	pr.down[2].Store(false)

	opts := pr.q.opts
	opts.Registerer = nil
	opts.Aggregate = nil
	q, err := NewQueryable(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.PushAggregate(context.Background(), testAggregateRequest); !errors.Is(err, ErrNotPushed) {
		t.Fatalf("without an AggregateFunc: %v", err)
	}
	// Too few series, estimated from n0's share (it holds all 30: at RF 3
	// over 3 nodes, about 30 in the ring): the fan-out reads them.
	opts.Aggregate = pr.q.opts.Aggregate
	opts.PushdownMinSeries = 31
	if q, err = NewQueryable(opts); err != nil {
		t.Fatal(err)
	}
	before := pr.aggregated[1].Load()
	if _, _, err := q.PushAggregate(context.Background(), testAggregateRequest); !errors.Is(err, ErrNotPushed) || pr.aggregated[1].Load() != before {
		t.Fatalf("an aggregation of fewer series than the minimum: %v (peer asked: %v)", err, pr.aggregated[1].Load() != before)
	}
	if v := testutil.ToFloat64(q.pushdowns.WithLabelValues("small")); v != 1 {
		t.Fatalf("small %v, want 1", v)
	}
	opts.PushdownMinSeries = 30
	if q, err = NewQueryable(opts); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.PushAggregate(context.Background(), testAggregateRequest); err != nil {
		t.Fatalf("an aggregation of the minimum: %v", err)
	}
	opts.PushdownMinSeries = 0
	one := NewSnapshot([]Node{{Name: "n0", URL: "http://127.0.0.1:1", State: StateActive, Tokens: GenerateTokens(4, nil)}})
	opts.Aggregate = pr.q.opts.Aggregate
	opts.View = func() *Snapshot { return one }
	if q, err = NewQueryable(opts); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.PushAggregate(context.Background(), testAggregateRequest); !errors.Is(err, ErrNotPushed) {
		t.Fatalf("a ring of one node: %v", err)
	}
}

func TestDesignate(t *testing.T) {
	results := []*SelectResult{
		{Digests: []SeriesDigest{{1, 10}, {2, 20}, {3, 30}, {4, 40}, {4, 41}}},
		nil, // a failed node
		{Digests: []SeriesDigest{{1, 10}, {2, 21}, {5, 50}}},
	}
	given, raw := designate(results)
	slices.Sort(raw)
	if !slices.Equal(raw, []uint64{2, 4}) {
		t.Fatalf("raw %v, want [2 4]: differing digests and a key twice on one node", raw)
	}
	if len(given[1]) != 0 {
		t.Fatalf("a failed node was given %v", given[1])
	}
	all := append(slices.Clone(given[0]), given[2]...)
	slices.Sort(all)
	if !slices.Equal(all, []uint64{1, 3, 5}) {
		t.Fatalf("given %v, want 1, 3 and 5 once each", given)
	}
	if !slices.Contains(given[0], 3) || !slices.Contains(given[2], 5) {
		t.Fatalf("a series given to a node without it: %v", given)
	}
}

func TestSeriesKeyFromSymbolsMatchesLabels(t *testing.T) {
	h, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("v", 600) // past SeriesKey's buffer: streamed
	for _, lset := range []labels.Labels{
		labels.FromStrings("__name__", "m", "a", "b"),
		labels.FromStrings("__name__", "m", "long", long, "z", "1"),
	} {
		appendTo(t, h, lset, 1)
	}
	q, _ := h.Querier(0, 10)
	defer q.Close()
	set := q.SelectUnsorted(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	var k keyHasher
	n := 0
	for set.Next() {
		n++
		if got, want := k.key(set.At()), SeriesKey(set.At().Labels()); got != want {
			t.Fatalf("%s: key %x from symbols, %x from labels", set.At().Labels(), got, want)
		}
	}
	if n != 2 {
		t.Fatalf("%d series", n)
	}
}

func TestDecodeKeysRefusesMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"not base64":          "!!!!",
		"not a multiple of 8": EncodeKeys([]uint64{1})[:5],
		"more than the bound": EncodeKeys(make([]uint64, 11)),
	} {
		if _, err := DecodeKeys(in, 10); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	keys := []uint64{0, 1, math.MaxUint64}
	got, err := DecodeKeys(EncodeKeys(keys), 3)
	if err != nil || !slices.Equal(got, keys) {
		t.Fatalf("round trip %v, %v", got, err)
	}
}

func TestParseAggregateRequestRefusesMalformed(t *testing.T) {
	keys := func(n int) []byte {
		var b []byte
		for i := range n {
			b = append(b, byte(i), 0, 0, 0, 0, 0, 0, 0)
		}
		return snappy.Encode(nil, b)
	}
	good := url.Values{"expr": {"sum(rate(m[5m]))"}, "start": {"1"}, "end": {"2"}, "step": {"1"}, "lookback": {"300000"}}
	with := func(k, v string) string {
		q := url.Values{}
		for kk, vv := range good {
			q[kk] = vv
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q.Encode()
	}
	for _, tc := range []struct {
		name, query string
		body        []byte
	}{
		{"no expr", with("expr", ""), keys(1)},
		{"bad start", with("start", "x"), keys(1)},
		{"end before start", with("end", "0"), keys(1)},
		{"zero step", with("step", "0"), keys(1)},
		{"negative lookback", with("lookback", "-1"), keys(1)},
		{"body not snappy", good.Encode(), []byte{0xff, 0xff, 0xff, 0xff, 0xff}},
		{"keys not a multiple of 8", good.Encode(), snappy.Encode(nil, []byte{1, 2, 3})},
		{"more keys than the bound", good.Encode(), keys(11)},
		{"body declares more than the bound", good.Encode(), []byte{0xff, 0xff, 0xff, 0x7f}},
	} {
		r := httptest.NewRequest(http.MethodPost, AggregatePath+"?"+tc.query, bytes.NewReader(tc.body))
		if _, _, err := ParseAggregateRequest(r, 10); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	r := httptest.NewRequest(http.MethodPost, AggregatePath+"?"+good.Encode(), bytes.NewReader(keys(3)))
	req, got, err := ParseAggregateRequest(r, 10)
	if err != nil || len(got) != 3 || got[2] != 2 || req.Expr != "sum(rate(m[5m]))" || req.LookbackDelta != 300000 {
		t.Fatalf("good request: %+v %v %v", req, got, err)
	}
}
