package evaluator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/internal/etcdfleet"
	"github.com/etcdgate/etcdgate/tsdb"
)

// pushFleet is a fleet's series in one head (all) and split by label
// hash over three disjoint heads (parts), as a ring would spread them.
type pushFleet struct {
	all   *tsdb.Head
	parts [3]*tsdb.Head
	end   time.Time
}

var (
	pushFleetOnce sync.Once
	pushFleetData *pushFleet
	pushFleetErr  error
)

// getPushFleet builds (once) 4 clusters of 3 members, about 3,900
// series with 20 minutes of 15 s samples, plus nan_gauge: 12 series
// whose values are NaN at some samples, all of them at the last ones of
// two series.
func getPushFleet(t testing.TB) *pushFleet {
	pushFleetOnce.Do(func() { pushFleetData, pushFleetErr = newPushFleet() })
	if pushFleetErr != nil {
		t.Fatal(pushFleetErr)
	}
	return pushFleetData
}

func newPushFleet() (*pushFleet, error) {
	f := &pushFleet{end: time.Unix(1_800_000_000, 0).UTC()}
	heads := []**tsdb.Head{&f.all, &f.parts[0], &f.parts[1], &f.parts[2]}
	for _, h := range heads {
		head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
		if err != nil {
			return nil, err
		}
		*h = head
	}
	fleet := etcdfleet.New(etcdfleet.Options{Clusters: 4, Members: 3, Seed: 7})
	apps := []tsdb.Appender{f.all.Appender(), f.parts[0].Appender(), f.parts[1].Appender(), f.parts[2].Appender()}
	add := func(lset labels.Labels, ts int64, v float64) error {
		if err := apps[0].Append(lset, ts, v); err != nil {
			return err
		}
		return apps[1+lset.Hash()%3].Append(lset, ts, v)
	}
	start := f.end.Add(-20 * time.Minute).UnixMilli()
	var buf []etcdfleet.Sample
	for ts := start; ts <= f.end.UnixMilli(); ts += 15000 {
		buf = buf[:0]
		for m := range fleet.NumMembers() {
			buf = fleet.AppendMember(buf, m, ts)
		}
		for _, s := range buf {
			if err := add(s.Labels, ts, s.V); err != nil {
				return nil, err
			}
		}
		for i := range 12 {
			v := float64((ts/15000)%17) + float64(i)
			if (ts/15000+int64(i))%5 == 0 || (i < 2 && ts > f.end.UnixMilli()-6*60*1000) {
				v = math.NaN()
			}
			lset := labels.FromStrings("__name__", "nan_gauge", "cluster", fmt.Sprint("c", i%3), "instance", fmt.Sprint(i))
			if err := add(lset, ts, v); err != nil {
				return nil, err
			}
		}
	}
	for _, app := range apps {
		if err := app.Commit(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// pushStore is a Pushdown over a pushFleet: the nodes holding parts[0]
// and parts[1] evaluate partials, which cross the wire form, and parts[2]
// is left to fold at the asking node. Querier reads the whole fleet, as
// the ring's fan-out does.
type pushStore struct {
	f    *pushFleet
	node *Engine
	err  error // returned by PushAggregate when set
	// tamper, when set, changes the decoded partials before they are
	// returned.
	tamper func(ps []*PartialAggregate)

	mu    sync.Mutex
	specs []AggregateSpec
}

func (s *pushStore) Querier(mint, maxt int64) (tsdb.Querier, error) {
	return s.f.all.Querier(mint, maxt)
}

func (s *pushStore) PushAggregate(ctx context.Context, spec AggregateSpec) ([]*PartialAggregate, tsdb.Queryable, error) {
	s.mu.Lock()
	s.specs = append(s.specs, spec)
	s.mu.Unlock()
	if s.err != nil {
		return nil, nil, s.err
	}
	var out []*PartialAggregate
	for _, h := range s.f.parts[:2] {
		p, err := s.node.EvalPartial(ctx, h, spec)
		if err != nil {
			return nil, nil, err
		}
		d, err := DecodePartialAggregate(p.AppendBinary(nil), spec.Steps(), 1<<20)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, d)
	}
	if s.tamper != nil {
		s.tamper(out)
	}
	return out, s.f.parts[2], nil
}

func (s *pushStore) pushed() []AggregateSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.specs
	s.specs = nil
	return out
}

// pushQueries are fused aggregations of every op, grouping and
// modifier; %d is replaced by the query's end in seconds.
var pushQueries = []string{
	`sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))`,
	`sum without (instance, pod) (rate(grpc_server_handled_total[5m]))`,
	`sum(increase(etcd_network_peer_sent_bytes_total[10m] offset 3m))`,
	`count by (cluster, grpc_code) (rate(grpc_server_handled_total[5m]))`,
	`count without (grpc_method) (rate(grpc_server_handled_total[5m] @ %d))`,
	`avg by (region) (max_over_time(go_gc_duration_seconds[5m]))`,
	`avg without (instance) (deriv(etcd_network_peer_sent_bytes_total[10m]))`,
	`min by (cluster) (last_over_time(nan_gauge[5m]))`,
	`max by (cluster) (last_over_time(nan_gauge[5m]))`,
	`max(min_over_time(nan_gauge[2m] offset 1m))`,
	`min without (quantile) (max_over_time(go_gc_duration_seconds[5m] @ %d offset 2m))`,
	`group by (cluster, region) (rate(grpc_server_started_total[5m]))`,
	`group without (__name__, instance) (last_over_time(nan_gauge[1m]))`,
	`sum by (cluster) (predict_linear(etcd_network_peer_sent_bytes_total[10m], 600))`,
	`max by (__name__) (last_over_time(nan_gauge[5m]))`,
	`sum by (cluster) (rate(grpc_server_handled_total[5m] @ start()))`,
	`avg(rate(grpc_server_handled_total[5m] @ end() offset 1m))`,
}

// TestPushdownExact checks that every fused aggregation, pushed down to
// two nodes with the third node's series folded here, answers exactly
// what the engine answers over the whole fleet, with the same stats, as
// an instant query and as a range query.
func TestPushdownExact(t *testing.T) {
	f := getPushFleet(t)
	plain := NewEngine(f.all, Options{})
	store := &pushStore{f: f, node: NewEngine(nil, Options{})}
	pushed := NewEngine(store, Options{})
	ctx := context.Background()
	end := f.end
	for _, tmpl := range pushQueries {
		q := tmpl
		if strings.Contains(q, "%d") {
			q = fmt.Sprintf(tmpl, end.Add(-4*time.Minute).Unix())
		}
		for _, kind := range []string{"instant", "range"} {
			t.Run(kind+"/"+q, func(t *testing.T) {
				var want, got *Result
				var wantErr, gotErr error
				if kind == "instant" {
					want, wantErr = plain.Instant(ctx, q, end)
					got, gotErr = pushed.Instant(ctx, q, end)
				} else {
					want, wantErr = plain.Range(ctx, q, end.Add(-10*time.Minute), end, 30*time.Second)
					got, gotErr = pushed.Range(ctx, q, end.Add(-10*time.Minute), end, 30*time.Second)
				}
				if wantErr != nil || gotErr != nil {
					t.Fatalf("plain: %v, pushed: %v", wantErr, gotErr)
				}
				if specs := store.pushed(); len(specs) != 1 {
					t.Fatalf("pushed %d times, want once", len(specs))
				}
				if d := diffValues(want.Value, got.Value); d != "" {
					t.Fatal(d)
				}
				if n := valueLen(want.Value); n == 0 {
					t.Fatal("the plain evaluation answers nothing: the test proves nothing")
				}
				w, g := want.Stats, got.Stats
				if w.SamplesLoaded != g.SamplesLoaded || w.SeriesLoaded != g.SeriesLoaded ||
					w.QueryableSamples != g.QueryableSamples || w.SamplesRead != g.SamplesRead {
					t.Fatalf("stats: plain %+v, pushed %+v", w, g)
				}
			})
		}
	}
}

func valueLen(v Value) int {
	switch v := v.(type) {
	case Vector:
		return len(v)
	case Matrix:
		return len(v)
	}
	return -1
}

// diffValues compares two results: the same series and timestamps, and
// values equal up to the order of floating-point additions.
func diffValues(want, got Value) string {
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return fmt.Sprintf("want a %T, got a %T", want, got)
	}
	var wm, gm Matrix
	switch w := want.(type) {
	case Vector:
		wm, gm = vectorMatrix(w), vectorMatrix(got.(Vector))
	case Matrix:
		wm, gm = w, got.(Matrix)
	default:
		return fmt.Sprintf("unexpected %T", want)
	}
	if len(wm) != len(gm) {
		return fmt.Sprintf("want %d series, got %d", len(wm), len(gm))
	}
	for i := range wm {
		if !labels.Equal(wm[i].Metric, gm[i].Metric) {
			return fmt.Sprintf("series %d: want %s, got %s", i, wm[i].Metric, gm[i].Metric)
		}
		if len(wm[i].Floats) != len(gm[i].Floats) {
			return fmt.Sprintf("%s: want %d points, got %d", wm[i].Metric, len(wm[i].Floats), len(gm[i].Floats))
		}
		for k, w := range wm[i].Floats {
			g := gm[i].Floats[k]
			if w.T != g.T || !closeFloat(w.F, g.F) {
				return fmt.Sprintf("%s: want %v at %d, got %v at %d", wm[i].Metric, w.F, w.T, g.F, g.T)
			}
		}
	}
	return ""
}

func vectorMatrix(v Vector) Matrix {
	m := make(Matrix, len(v))
	for i, s := range v {
		m[i] = Series{Metric: s.Metric, Floats: []FPoint{{T: s.T, F: s.F}}}
	}
	return m
}

func closeFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// TestPushdownSpec checks what the asking evaluator asks the nodes: the
// evaluator's steps, the selector's matchers and the time range it
// reads, after offset and @.
func TestPushdownSpec(t *testing.T) {
	f := getPushFleet(t)
	store := &pushStore{f: f, node: NewEngine(nil, Options{})}
	e := NewEngine(store, Options{LookbackDelta: 3 * time.Minute})
	end := f.end.UnixMilli()
	for _, tc := range []struct {
		query      string
		start      int64
		mint, maxt int64
	}{
		{`sum(rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))`, end - 600_000, end - 600_000 - 300_000 + 1, end},
		{`sum(rate(grpc_server_handled_total{grpc_code!="OK"}[5m] offset 1m))`, end - 600_000, end - 660_000 - 300_000 + 1, end - 60_000},
		{`sum(rate(grpc_server_handled_total{grpc_code!="OK"}[5m] @ 1799999000 offset 1m))`, end - 600_000,
			1_799_999_000_000 - 60_000 - 300_000 + 1, 1_799_999_000_000 - 60_000},
	} {
		if _, err := e.Range(context.Background(), tc.query, time.UnixMilli(tc.start), f.end, time.Minute); err != nil {
			t.Fatal(err)
		}
		specs := store.pushed()
		if len(specs) != 1 {
			t.Fatalf("%s: pushed %d times", tc.query, len(specs))
		}
		s := specs[0]
		if s.Start != tc.start || s.End != end || s.Interval != 60_000 || s.LookbackDelta != 180_000 ||
			s.Mint != tc.mint || s.Maxt != tc.maxt || s.Steps() != 11 {
			t.Errorf("%s: spec %+v", tc.query, s)
		}
		var ms []string
		for _, m := range s.Matchers {
			ms = append(ms, m.String())
		}
		if got := strings.Join(ms, ","); got != `__name__="grpc_server_handled_total",grpc_code!="OK"` {
			t.Errorf("%s: matchers %s", tc.query, got)
		}
	}
}

// TestPushdownExprRoundTrip checks that the node re-derives, from the
// text the asking node sends, the aggregation it was asked: op,
// grouping, function, parameters, window, offset and @.
func TestPushdownExprRoundTrip(t *testing.T) {
	for _, q := range append(slices.Clone(pushQueries), []string{
		`SUM BY (a) (RATE(x[5m]))`,
		`sum(quantile_over_time(0.5, x[5m]))`, // not fused: must not be derived as fused either
		`avg without (a, b) (predict_linear(x[10m], -3600))`,
		`max(rate(x{a=~"b|c", d!~"e"}[1m30s] offset -1m @ 1700000000.5))`,
		`sum(rate(x[5m] @ start()))`,
		`count(rate(x[5m] @ end() offset 5m))`,
		`sum(rate({__name__="x", a="b"}[5m]))`,
		`sum by (a) (rate(x{a="q\"uo\\te\nü", b=~"^(a|b\\.c)+$", c!=""}[5m]))`,
		`sum by ("quoted") (rate({"x.y", "a.b"="c"}[5m]))`,
		`max without (a) (rate(x[1h5m10s] offset 1d))`,
	}...) {
		q = strings.ReplaceAll(q, "%d", "1799999760")
		e1, err := Parse(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		sh1, ok1 := shapeOfQuery(e1)
		e2, err := Parse(specOf(e1))
		if err != nil {
			t.Fatalf("%s sent as %s: %v", q, specOf(e1), err)
		}
		sh2, ok2 := shapeOfQuery(e2)
		if ok1 != ok2 || (ok1 && describeShape(sh1) != describeShape(sh2)) {
			t.Errorf("%s sent as %s: %v %s, node derives %v %s", q, specOf(e1), ok1, describeShape(sh1), ok2, describeShape(sh2))
		}
		if strings.Contains(q, "quantile_over_time") == ok1 {
			t.Errorf("%s: pushable %v", q, ok1)
		}
	}
}

func specOf(e metricsql.Expr) string { return string(e.AppendString(nil)) }

// shapeOfQuery is the fused, pushable shape of e, if it has one.
func shapeOfQuery(e metricsql.Expr) (fusedShape, bool) {
	a, ok := e.(*metricsql.AggrFuncExpr)
	if !ok {
		return fusedShape{}, false
	}
	sh, ok := fusedShapeOf(strings.ToLower(a.Name), a, newGrouping(a), 1)
	return sh, ok && pushable(sh)
}

// describeShape names everything of a fused shape the node evaluates.
func describeShape(sh fusedShape) string {
	if sh.call == nil {
		return "-"
	}
	var params []string
	for _, a := range sh.call.Args[1:] {
		params = append(params, string(a.AppendString(nil)))
	}
	var at string
	if sh.re.At != nil {
		at = string(sh.re.At.AppendString(nil))
	}
	var filters []string
	for _, lf := range sh.me.LabelFilterss[0] {
		filters = append(filters, string(lf.AppendString(nil)))
	}
	return fmt.Sprintf("op=%s without=%v names=%v fn=%s params=%v window=%d offset=%d at=%s filters=%v",
		sh.op, sh.g.without, sh.g.names, strings.ToLower(sh.call.Name), params,
		sh.re.Window.Duration(1), sh.re.Offset.Duration(1), at, filters)
}

// TestPushdownDeclined checks the asking side: a store that declines
// (ErrNotPushed, wrapped) gets the query evaluated through it as usual;
// another error fails the query; per-step stats, subqueries, scalar
// parameters and `or` selectors are not pushed down.
func TestPushdownDeclined(t *testing.T) {
	f := getPushFleet(t)
	plain := NewEngine(f.all, Options{})
	store := &pushStore{f: f, node: NewEngine(nil, Options{})}
	e := NewEngine(store, Options{})
	ctx := context.Background()
	q := `sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))`

	store.err = fmt.Errorf("ring: one node: %w", ErrNotPushed)
	want, err := plain.Instant(ctx, q, f.end)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Instant(ctx, q, f.end)
	if err != nil {
		t.Fatalf("declined: %v", err)
	}
	if d := diffValues(want.Value, got.Value); d != "" || len(store.pushed()) != 1 {
		t.Fatalf("declined: %s", d)
	}
	if got.Stats.SeriesLoaded != want.Stats.SeriesLoaded {
		t.Fatalf("declined: %d series loaded, want %d", got.Stats.SeriesLoaded, want.Stats.SeriesLoaded)
	}

	boom := errors.New("ring: node n2 answered 500")
	store.err = boom
	if _, err := e.Instant(ctx, q, f.end); !errors.Is(err, boom) {
		t.Fatalf("a failing pushdown: %v", err)
	}
	store.pushed()
	store.err = nil

	for _, tc := range []struct {
		query string
		opts  QueryOpts
	}{
		{q, QueryOpts{PerStepStats: true}},
		{`max_over_time(sum by (cluster) (rate(grpc_server_handled_total[5m]))[10m:1m])`, QueryOpts{}},
		{`sum(predict_linear(etcd_network_peer_sent_bytes_total[10m], scalar(sum(nan_gauge))))`, QueryOpts{}},
		{`sum(rate({__name__="grpc_server_handled_total", grpc_code="OK" or __name__="grpc_server_handled_total", grpc_code="Unknown"}[5m]))`, QueryOpts{}},
		{`topk(2, rate(grpc_server_handled_total[5m]))`, QueryOpts{}},
		{`sum(quantile_over_time(0.9, nan_gauge[5m]))`, QueryOpts{}},
	} {
		want, err := plain.InstantWith(ctx, tc.query, f.end, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		got, err := e.InstantWith(ctx, tc.query, f.end, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if n := len(store.pushed()); n != 0 {
			t.Errorf("%s %+v: pushed %d times", tc.query, tc.opts, n)
		}
		if d := diffValues(want.Value, got.Value); d != "" {
			t.Errorf("%s: %s", tc.query, d)
		}
	}
}

// TestEvalPartialRefuses checks that a node refuses, as a bad query,
// what the asking side never pushes down.
func TestEvalPartialRefuses(t *testing.T) {
	f := getPushFleet(t)
	e := NewEngine(nil, Options{})
	end := f.end.UnixMilli()
	ok := AggregateSpec{Expr: `sum(rate(grpc_server_handled_total[5m]))`, Start: end, End: end, Interval: 1}
	if p, err := e.EvalPartial(context.Background(), f.parts[0], ok); err != nil || p.Groups() != 1 ||
		p.Stats.SeriesLoaded == 0 || p.Stats.SamplesLoaded == 0 || p.Stats.QueryableSamples == 0 || p.Stats.SamplesRead == 0 {
		t.Fatalf("a good spec: %+v %v", p, err)
	}
	for _, tc := range []struct {
		name string
		mod  func(s *AggregateSpec)
	}{
		{"topk", func(s *AggregateSpec) { s.Expr = `topk(3, rate(grpc_server_handled_total[5m]))` }},
		{"plain selector", func(s *AggregateSpec) { s.Expr = `grpc_server_handled_total` }},
		{"aggregation of a selector", func(s *AggregateSpec) { s.Expr = `sum(grpc_server_handled_total)` }},
		{"or", func(s *AggregateSpec) { s.Expr = `sum(rate({__name__="a" or __name__="b"}[5m]))` }},
		{"scalar param", func(s *AggregateSpec) {
			s.Expr = `sum(predict_linear(etcd_network_peer_sent_bytes_total[10m], scalar(nan_gauge)))`
		}},
		{"quantile_over_time", func(s *AggregateSpec) { s.Expr = `sum(quantile_over_time(0.5, nan_gauge[5m]))` }},
		{"subquery", func(s *AggregateSpec) { s.Expr = `sum(max_over_time(nan_gauge[5m:1m]))` }},
		{"binary", func(s *AggregateSpec) { s.Expr = `sum(rate(a[5m])) / 2` }},
		{"more steps than a query may have", func(s *AggregateSpec) { s.Start, s.Interval = end-maxFusedSteps*15000, 15000 }},
		{"huge steps", func(s *AggregateSpec) { s.Start, s.End, s.Interval = math.MinInt64, math.MaxInt64, 1 }},
		{"zero interval", func(s *AggregateSpec) { s.Interval = 0 }},
		{"end before start", func(s *AggregateSpec) { s.Start = end + 1 }},
		{"negative lookback", func(s *AggregateSpec) { s.LookbackDelta = -1 }},
		{"unparsable", func(s *AggregateSpec) { s.Expr = `sum(rate(x[5m]` }},
		{"empty", func(s *AggregateSpec) { s.Expr = `` }},
		{"too long", func(s *AggregateSpec) { s.Expr = `sum(rate(x{a="` + strings.Repeat("b", 70<<10) + `"}[5m]))` }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.mod(&s)
			if _, err := e.EvalPartial(context.Background(), f.parts[0], s); !errors.Is(err, ErrBadQuery) {
				t.Fatalf("want a bad query, got %v", err)
			}
		})
	}
}

// TestEvalPartialDoesNotPush checks that a node evaluates what it was
// designated even over a store that could push down (it must not ask the
// ring again).
func TestEvalPartialDoesNotPush(t *testing.T) {
	f := getPushFleet(t)
	store := &pushStore{f: f, node: NewEngine(nil, Options{})}
	end := f.end.UnixMilli()
	spec := AggregateSpec{Expr: `sum by (cluster) (rate(grpc_server_handled_total[5m]))`, Start: end, End: end, Interval: 1}
	p, err := NewEngine(nil, Options{}).EvalPartial(context.Background(), store, spec)
	if err != nil || p.Groups() != 4 {
		t.Fatalf("%v groups, %v", p, err)
	}
	if n := len(store.pushed()); n != 0 {
		t.Fatalf("EvalPartial pushed down %d times", n)
	}
}

// TestEvalPartialLimits checks that a node's evaluation is bounded as a
// query is: series and samples limits, a canceled context.
func TestEvalPartialLimits(t *testing.T) {
	f := getPushFleet(t)
	end := f.end.UnixMilli()
	spec := AggregateSpec{Expr: `sum(rate(grpc_server_handled_total[5m]))`, Start: end, End: end, Interval: 1}
	if _, err := NewEngine(nil, Options{MaxSeries: 10}).EvalPartial(context.Background(), f.parts[0], spec); !errors.Is(err, tsdb.ErrTooManySeries) {
		t.Errorf("max series 10: %v", err)
	}
	if _, err := NewEngine(nil, Options{MaxSamples: 10}).EvalPartial(context.Background(), f.parts[0], spec); !errors.Is(err, ErrTooManySamples) {
		t.Errorf("max samples 10: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewEngine(nil, Options{}).EvalPartial(ctx, f.parts[0], spec); !errors.Is(err, ErrCanceled) {
		t.Errorf("canceled: %v", err)
	}
}

// TestPushdownBadPartials checks that partials that cannot be those of
// the aggregation asked (a peer of another version, a bug) fail the
// query with an error naming the problem, not a panic.
func TestPushdownBadPartials(t *testing.T) {
	f := getPushFleet(t)
	q := `sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))`
	for _, tc := range []struct {
		name   string
		tamper func(ps []*PartialAggregate)
		want   string
	}{
		{"a label the grouping drops", func(ps []*PartialAggregate) {
			ps[0].groups[0].metric = labels.FromStrings("cluster", "c", "instance", "i")
		}, `label "instance" its grouping drops`},
		{"wrong step count", func(ps []*PartialAggregate) {
			ps[0].groups[0].steps = append(ps[0].groups[0].steps, groupState{})
		}, "a group of 2 steps, want 1"},
		{"a group twice", func(ps []*PartialAggregate) {
			ps[0].groups = append(ps[0].groups, ps[0].groups[0])
		}, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &pushStore{f: f, node: NewEngine(nil, Options{}), tamper: tc.tamper}
			_, err := NewEngine(store, Options{}).Instant(context.Background(), q, f.end)
			var pe *PanicError
			if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error with %q, got %v", tc.want, err)
			}
		})
	}
}
