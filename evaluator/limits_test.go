package evaluator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

func limitsHead(t *testing.T, series, samples int) *tsdb.Head {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := head.Appender()
	for s := range series {
		lset := labels.FromStrings("__name__", "up", "instance", string(rune('a'+s%26))+string(rune('a'+s/26)))
		for i := range samples {
			if err := app.Append(lset, int64(i)*15000, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return head
}

func TestMaxSamplesFailsTheQueryOnly(t *testing.T) {
	head := limitsHead(t, 10, 100)
	e := NewEngine(head, Options{MaxSamples: 50})
	ctx := context.Background()
	end := time.UnixMilli(99 * 15000)
	if _, err := e.Range(ctx, "up", time.UnixMilli(0), end, 15*time.Second); !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("range over 1000 points with max 50: %v", err)
	}
	if _, err := e.Instant(ctx, "sum_over_time(up[1h])", end); !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("240 raw samples per series with max 50: %v", err)
	}
	res, err := e.Instant(ctx, "sum(up)", end)
	if err != nil || res.Value.(Vector)[0].F != 10 {
		t.Fatalf("a query under the limit: %v %v", res, err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	head := limitsHead(t, 10, 10)
	e := NewEngine(head, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Instant(ctx, "up", time.UnixMilli(0)); !errors.Is(err, ErrCanceled) {
		t.Fatalf("canceled: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := e.Instant(ctx, "up", time.UnixMilli(0)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("timed out: %v", err)
	}
}

// TestConcurrencyLimit checks that a query waits for a slot while the
// engine runs its maximum, and times out if none frees.
func TestConcurrencyLimit(t *testing.T) {
	head := limitsHead(t, 1, 1)
	e := NewEngine(head, Options{MaxConcurrent: 2, Timeout: 50 * time.Millisecond})
	e.slots <- struct{}{} // two queries are running
	e.slots <- struct{}{}
	_, err := e.Instant(context.Background(), "up", time.UnixMilli(0))
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "waiting for a query slot") {
		t.Fatalf("with every slot taken: %v", err)
	}
	<-e.slots // one finishes
	if _, err := e.Instant(context.Background(), "up", time.UnixMilli(0)); err != nil {
		t.Fatalf("with a free slot: %v", err)
	}
}

// handledTotalHead holds 1,000 grpc_server_handled_total counters, one
// per instance in 10 clusters, with 20 samples 15 s apart.
func handledTotalHead(t *testing.T) *tsdb.Head {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := head.Appender()
	for s := range 1000 {
		lset := labels.FromStrings("__name__", "grpc_server_handled_total", "cluster", fmt.Sprintf("c%d", s%10), "instance", fmt.Sprint(s))
		for i := range 20 {
			if err := app.Append(lset, int64(i)*15000, float64(i*s)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return head
}

// TestFleetAggregationHoldsGroupsOnly checks that an aggregation of a
// range function over many series holds its groups, not one result per
// series: under a sample limit far below the series count, the fused
// form answers while the same query written to force per-series results
// does not.
func TestFleetAggregationHoldsGroupsOnly(t *testing.T) {
	head := handledTotalHead(t)
	e := NewEngine(head, Options{MaxSamples: 200})
	at := time.UnixMilli(19 * 15000)
	res, err := e.Instant(context.Background(), `sum by (cluster) (rate(grpc_server_handled_total[5m]))`, at)
	if err != nil {
		t.Fatalf("fused aggregation: %v", err)
	}
	if got := len(res.Value.(Vector)); got != 10 {
		t.Fatalf("%d groups, want 10", got)
	}
	if _, err := e.Instant(context.Background(), `sum by (cluster) (rate(grpc_server_handled_total[5m]) * 1)`, at); !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("per-series results under a limit of 200: %v", err)
	}
}

// TestStepLimits: range queries and subqueries whose steps exceed their
// bounds fail before evaluation allocates anything of their size.
func TestStepLimits(t *testing.T) {
	head := limitsHead(t, 3, 100)
	at := time.UnixMilli(99 * 15000)
	for _, tc := range []struct {
		name  string
		opts  Options
		query string
		rng   time.Duration // a range query over [at-rng, at] with step 1s; 0: instant at at
		want  error         // nil: answers
	}{
		{"ten years at 1ms", Options{}, "count_over_time(vector(1)[3650d:1ms])", 0, ErrTooManySteps},
		{"ten years at 1ms of a selector", Options{}, "max_over_time(up[3650d:1ms])", 0, ErrTooManySteps},
		{"nested", Options{}, "max_over_time(max_over_time(up[1h:1s])[3650d:1s])", 0, ErrTooManySteps},
		{"offset does not hide steps", Options{}, "count_over_time(vector(1)[3650d:1ms] offset 1000d)", 0, ErrTooManySteps},
		{"past the step limit", Options{MaxSubquerySteps: 1000}, "max_over_time(up[1h:1s])", 0, ErrTooManySteps},
		{"under the step limit", Options{MaxSubquerySteps: 1000}, "max_over_time(up[1h:10s])", 0, nil},
		{"past the samples left", Options{MaxSamples: 3000}, "max_over_time(up[1h:1s])", 0, ErrTooManySteps},
		{"range query over its points", Options{}, "up", 24 * time.Hour, ErrBadQuery},
		{"range query at its points", Options{MaxPointsPerSeries: 3600}, "up", time.Hour, nil},
		{"range query of subqueries", Options{MaxSubquerySteps: 5000}, "max_over_time(up[1h:1s])", time.Hour, ErrTooManySteps},
		{"window past representable time", Options{}, "count_over_time(up[1000000000y])", 0, ErrBadQuery},
		{"subquery window past representable time", Options{}, "count_over_time(up[1000000000y:1d])", 0, ErrBadQuery},
		{"at far in the future", Options{}, "count_over_time(vector(1)[1h:1m] @ 1e300)", 0, ErrBadQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(head, tc.opts)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var err error
			if tc.rng == 0 {
				_, err = e.Instant(context.Background(), tc.query, at)
			} else {
				_, err = e.Range(context.Background(), tc.query, at.Add(-tc.rng), at, time.Second)
			}
			runtime.ReadMemStats(&after)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; tc.want != nil && alloc > 16<<20 {
				t.Fatalf("refused after allocating %d MiB", alloc>>20)
			}
		})
	}
}

// TestMaxSamplesCountsWhatIsHeld: operands consumed by an operator or an
// aggregation and raw samples already rolled up no longer count, so a
// chain of operators needs the limit of its widest step, not the sum of
// every intermediate result; the bound still holds at that step.
func TestMaxSamplesCountsWhatIsHeld(t *testing.T) {
	head := limitsHead(t, 10, 100) // 10 series, 100 samples at 15s
	end := time.UnixMilli(99 * 15000)
	ctx := context.Background()
	// Each selector is 10 x 100 points; the chain makes 7,000 in all,
	// 3,000 at once (two operands and the result).
	const chain = "((up + up) + up) + up"
	for _, tc := range []struct {
		max   int64
		query string
		ok    bool
	}{
		{3500, chain, true},
		{2500, chain, false},
		{2100, "sum(up) + sum(up) + sum(up) + sum(up)", true},         // each sum releases its 1,000 input points
		{3200, "sum_over_time(up[1h]) + sum_over_time(up[1h])", true}, // 2 x 1,000 points and the result
		{1150, "sum_over_time(up[1h])", true},                         // 1,000 points and one series' 100 raw samples at a time
		{1050, "sum_over_time(up[1h])", false},
	} {
		e := NewEngine(head, Options{MaxSamples: tc.max})
		_, err := e.Range(ctx, tc.query, time.UnixMilli(0), end, 15*time.Second)
		if tc.ok && err != nil {
			t.Errorf("%s with max %d: %v", tc.query, tc.max, err)
		}
		if !tc.ok && !errors.Is(err, ErrTooManySamples) {
			t.Errorf("%s with max %d: %v, want ErrTooManySamples", tc.query, tc.max, err)
		}
	}
}

// panicStore is a store whose querier, or whose series' iterators,
// panic: a bug injected through the engine's only dependency.
type panicStore struct {
	tsdb.Queryable
	inIterator bool
}

func (s panicStore) Querier(mint, maxt int64) (tsdb.Querier, error) {
	if !s.inIterator {
		panic("injected querier bug")
	}
	q, err := s.Queryable.Querier(mint, maxt)
	return panicQuerier{q}, err
}

type panicQuerier struct{ tsdb.Querier }

func (q panicQuerier) SelectUnsorted(ctx context.Context, ms ...*labels.Matcher) tsdb.SeriesSet {
	return panicSet{q.Querier.SelectUnsorted(ctx, ms...)}
}

type panicSet struct{ tsdb.SeriesSet }

func (s panicSet) At() tsdb.Series { return panicSeries{s.SeriesSet.At()} }

type panicSeries struct{ tsdb.Series }

func (panicSeries) Iterator(tsdb.Iterator) tsdb.Iterator {
	panic("injected iterator bug")
}

// TestPanicIsRecovered: a panic while evaluating, in the query's own
// goroutine or in a series worker, ends that query with a short
// ErrInternal, and the stack is kept for the log, not the message.
func TestPanicIsRecovered(t *testing.T) {
	head := limitsHead(t, 600, 2)
	defer func(n int) { minParallelSeries = n }(minParallelSeries)
	minParallelSeries = 16 // 600 series: the parallel path
	for _, inIterator := range []bool{false, true} {
		e := NewEngine(panicStore{Queryable: head, inIterator: inIterator}, Options{})
		_, err := e.Instant(context.Background(), "sum(up)", time.UnixMilli(15000))
		var pe *PanicError
		if !errors.Is(err, ErrInternal) || !errors.As(err, &pe) {
			t.Fatalf("in iterator %v: %v", inIterator, err)
		}
		if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), ".go:") || len(err.Error()) > 200 {
			t.Fatalf("the message carries a stack: %q", err)
		}
		if !strings.Contains(string(pe.Stack), "goroutine") {
			t.Fatalf("no stack kept for the log: %q", pe.Stack)
		}
		// The engine is not left holding a slot.
		if len(e.slots) != 0 {
			t.Fatalf("%d slots held after the panic", len(e.slots))
		}
	}
}

// TestQueueFull: with every slot taken and the queue full, a query fails
// at once with ErrQueueFull instead of waiting.
func TestQueueFull(t *testing.T) {
	head := limitsHead(t, 1, 1)
	e := NewEngine(head, Options{MaxConcurrent: 1, MaxQueued: 2, Timeout: time.Hour})
	e.slots <- struct{}{} // one query runs
	e.waiting.Store(2)    // two wait
	_, err := e.Instant(context.Background(), "up", time.UnixMilli(0))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("with a full queue: %v", err)
	}
	e.waiting.Store(0)
	<-e.slots
	if _, err := e.Instant(context.Background(), "up", time.UnixMilli(0)); err != nil {
		t.Fatalf("with a free slot: %v", err)
	}
}

// TestQueueUnbounded: an engine without MaxQueued (the rule groups')
// lets every query wait for a slot until its timeout.
func TestQueueUnbounded(t *testing.T) {
	e := NewEngine(limitsHead(t, 1, 1), Options{MaxConcurrent: 1, Timeout: 20 * time.Millisecond})
	e.slots <- struct{}{}
	e.waiting.Store(1_000_000)
	if _, err := e.Instant(context.Background(), "up", time.UnixMilli(0)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("with a million waiting and no queue bound: %v", err)
	}
}

// TestHeldAccounting checks the bookkeeping of max_samples on the
// differential suite's queries: when a query ends, what it still holds
// (its result) is counted, and nothing was released twice.
func TestHeldAccounting(t *testing.T) {
	f := newEtcdFleet(t, 3, 2*time.Hour)
	e := NewEngine(f.head, Options{})
	queries := append(append([]string(nil), diffQueries...), randomQueries(rand.New(rand.NewPCG(7, 9)), 300)...)
	queries = append(queries, "max_over_time(vector(1)[10m:1m])", "sum(count_over_time(vector(time())[30m:1m]))")
	start, end := f.start.Add(30*time.Minute).UnixMilli(), f.end.UnixMilli()
	for _, q := range queries {
		for _, steps := range [][3]int64{{end, end, 1}, {start, end, 90_000}} {
			expr, err := Parse(q)
			if err != nil {
				continue
			}
			ev := &evaluator{queryState: &queryState{ctx: context.Background(), store: e.store, lookback: e.opts.LookbackDelta.Milliseconds(),
				queryStart: steps[0], queryEnd: steps[1], defaultSubqueryStep: 60_000, maxSamples: e.opts.MaxSamples,
				maxSubquerySteps: e.opts.MaxSubquerySteps}, start: steps[0], end: steps[1], interval: steps[2]}
			val, err := ev.run(expr)
			if err != nil {
				continue
			}
			live := 0
			switch v := val.(type) {
			case Matrix:
				live = v.points()
			case rangeMatrix:
				live = Matrix(v).points()
			case scalarSteps:
				live = len(v)
			}
			if held := ev.held.Load(); held < int64(live) {
				t.Errorf("%q over %d steps: holds %d points, its result has %d", q, ev.numSteps(), held, live)
			}
		}
	}
}

// TestMaxSeriesFailsBeforeSamples: a selector matching more series than
// max_series fails the query with tsdb.ErrTooManySeries, whichever way
// the series are selected; one under the limit answers.
func TestMaxSeriesFailsBeforeSamples(t *testing.T) {
	head := limitsHead(t, 50, 2)
	e := NewEngine(head, Options{MaxSeries: 49})
	ctx := context.Background()
	at := time.UnixMilli(15000)
	for _, q := range []string{"up", `count({__name__=~".+"})`, "rate(up[5m])", `up or {instance="aa"}`} {
		if _, err := e.Instant(ctx, q, at); !errors.Is(err, tsdb.ErrTooManySeries) {
			t.Errorf("%s over 50 series with max 49: %v", q, err)
		}
	}
	res, err := e.Instant(ctx, `count(up{instance=~".a"})`, at)
	if err != nil || res.Value.(Vector)[0].F != 26 {
		t.Fatalf("26 series with max 49: %v %v", res, err)
	}
}

// TestFusedStateCountsItsBytes: a fused aggregation's group states count
// against max_samples by their size (a state per group and step is
// fusedCellSamples samples), so a query with many groups and steps is
// refused before its states outgrow what the limit allows in points.
func TestFusedStateCountsItsBytes(t *testing.T) {
	head := handledTotalHead(t)
	if fusedCellSamples < 2 {
		t.Fatalf("a group state counts as %d samples; it is larger than a point", fusedCellSamples)
	}
	const q = `sum by (instance) (rate(grpc_server_handled_total[1m]))`
	start, end, step := time.UnixMilli(0), time.UnixMilli(19*15000), 3*time.Second // 96 steps, 1000 groups
	cells := 1000 * 96
	// Room for the result and for the states counted as one sample each,
	// not for the states at their size.
	e := NewEngine(head, Options{MaxSamples: int64(cells) * 2})
	if _, err := e.Range(context.Background(), q, start, end, step); !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("%d group states under a limit of %d samples: %v", cells, 2*cells, err)
	}
	e = NewEngine(head, Options{MaxSamples: int64(cells) * int64(fusedCellSamples+1)})
	if _, err := e.Range(context.Background(), q, start, end, step); err != nil {
		t.Fatalf("room for the states at their size: %v", err)
	}
}
