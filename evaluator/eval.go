package evaluator

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// queryState is what every evaluator of one query shares: the store,
// the limits and the accounting. Subqueries get evaluators of their own
// steps over the same queryState.
type queryState struct {
	ctx                  context.Context
	store                tsdb.Queryable
	lookback             int64
	queryStart, queryEnd int64 // what start() and end() mean
	queryStep            int64 // what step() means: 0 for an instant query
	defaultSubqueryStep  int64

	maxSamples       int64        // bound on points held at once
	maxSeries        int          // bound on the series one selector matches
	held             atomic.Int64 // points held: raw samples being read, results
	peak             atomic.Int64 // the most points held at once
	maxSubquerySteps int64        // bound on the steps of a subquery
	// matchers are the compiled matcher sets of the query's selectors,
	// shared with other queries of the same text: read only.
	matchers map[*metricsql.MetricExpr][][]*labels.Matcher
	// shared are the instant selectors the query names more than once
	// (select_shared.go); nil when there are none. sharedMu guards their
	// kept results, which the limit may drop from any worker;
	// sharedDropped is set once it has.
	shared        map[string]*sharedSelector
	sharedMu      sync.Mutex
	sharedDropped bool // guarded by sharedMu
	// folds are the fused aggregations folded together (fold_shared.go),
	// by member, shared with other queries of the same text: read only.
	// foldKept holds the results computed for members not evaluated yet.
	folds    map[*metricsql.AggrFuncExpr]*foldPlan
	foldMu   sync.Mutex
	foldKept map[foldKey]Matrix // guarded by foldMu

	// Series workers update these concurrently.
	samplesLoaded, seriesLoaded atomic.Int64
	annosMu                     sync.Mutex
	annos                       Annotations
}

// annotate records a warning (or an info note) for the query's result.
func (qs *queryState) annotate(info bool, msg string) {
	qs.annosMu.Lock()
	qs.annos.add(info, msg)
	qs.annosMu.Unlock()
}

// evaluator evaluates expressions at the steps start, start+interval, ...
// end. Every expression evaluates to its value at all steps at once: a
// Matrix whose series hold points at step timestamps (instant-vector
// expressions), scalarSteps, String, or rangeMatrix (a range-vector
// expression at the top of an instant query).
type evaluator struct {
	*queryState
	start, end, interval int64
	// counts counts the samples handed to this evaluator's steps; a
	// subquery's evaluator has counts of its own.
	counts *stepCounts
}

func (ev *evaluator) numSteps() int { return int((ev.end-ev.start)/ev.interval) + 1 }

func (ev *evaluator) stepTime(i int) int64 { return ev.start + int64(i)*ev.interval }

func (ev *evaluator) eval(e metricsql.Expr) any {
	ev.checkContext()
	switch e := e.(type) {
	case *metricsql.NumberExpr:
		return ev.constant(e.N)
	case *metricsql.StringExpr:
		return String{V: e.S}
	case *metricsql.DurationExpr:
		return ev.constant(float64(e.Duration(ev.interval)) / 1000)
	case *metricsql.MetricExpr:
		return ev.vectorSelector(e, selectorMods{})
	case *metricsql.RollupExpr:
		return ev.rollupExpr(e)
	case *metricsql.FuncExpr:
		return ev.call(e)
	case *metricsql.AggrFuncExpr:
		return ev.aggregate(e)
	case *metricsql.BinaryOpExpr:
		return ev.binary(e)
	}
	raise("unsupported expression %s", e.AppendString(nil))
	return nil
}

// rollupExpr evaluates a selector with modifiers, a range selector or a
// subquery. Range vectors are values only at the top of an instant query;
// functions taking them read them through rangeSource instead.
func (ev *evaluator) rollupExpr(e *metricsql.RollupExpr) any {
	mods := ev.modsOf(e)
	if e.Window == nil && !e.ForSubquery() {
		me, ok := e.Expr.(*metricsql.MetricExpr)
		if !ok {
			raise("offset and @ modifiers apply only to selectors and subqueries")
		}
		return ev.vectorSelector(me, mods)
	}
	src := ev.rangeSource(e)
	var out Matrix
	end := src.mods.refTime(ev.end)
	src.each(func(n int) { out = make(Matrix, n) }, func(_ *seriesWorker, i int, metric labels.Labels, pts []FPoint) {
		if w := windowPoints(pts, end-src.rangeMs, end); len(w) > 0 {
			if !src.subquery {
				ev.countAtStep(0, int64(len(w)))
				ev.countReadAtStep(0, int64(len(w)))
			}
			ev.hold(len(w))
			out[i] = Series{Metric: metric, Floats: w}
		}
	}, nil)
	return rangeMatrix(compact(out))
}

// constant is a number at every step.
func (ev *evaluator) constant(f float64) scalarSteps {
	s := ev.newScalarSteps()
	for i := range s {
		s[i] = f
	}
	return s
}

// checkContext aborts the query when its context has ended.
func (ev *evaluator) checkContext() {
	if err := ev.ctx.Err(); err != nil {
		raiseErr(contextError(err, "evaluating the query"))
	}
}

// hold accounts n more points held by the query and enforces the limit.
// Callers hold before they allocate where they know the size.
func (ev *evaluator) hold(n int) {
	h := ev.held.Add(int64(n))
	if h > ev.maxSamples {
		// Results kept for repeated selectors go first: they only
		// save reading the samples again.
		if !ev.dropShared() || ev.held.Load() > ev.maxSamples {
			raiseErr(ErrTooManySamples)
		}
	}
	ev.notePeak(h)
}

// notePeak records h points held, if it is the most yet.
func (ev *evaluator) notePeak(h int64) {
	for p := ev.peak.Load(); h > p && !ev.peak.CompareAndSwap(p, h); p = ev.peak.Load() {
	}
}

// release accounts n points no longer held.
func (ev *evaluator) release(n int) { ev.held.Add(-int64(n)) }

// releaseValue releases the points of an intermediate result that has
// been consumed: a Matrix whose points were held when made.
func (ev *evaluator) releaseValue(v any) {
	if m, ok := v.(Matrix); ok {
		ev.release(m.points())
	}
}

// newScalarSteps allocates a scalar's values at every step, held as
// points of the query while it lives (never released: scalars are few).
func (ev *evaluator) newScalarSteps() scalarSteps {
	n := ev.numSteps()
	ev.hold(n)
	return make(scalarSteps, n)
}

// vectorOf asserts that v is an instant vector.
func vectorOf(v any) Matrix {
	m, ok := v.(Matrix)
	if !ok {
		raise("expected instant vector, got %T", v)
	}
	return m
}

func scalarOf(v any) scalarSteps {
	s, ok := v.(scalarSteps)
	if !ok {
		raise("expected scalar, got %T", v)
	}
	return s
}

// dropName returns lset without its metric name.
func dropName(lset labels.Labels) labels.Labels { return lset.DropReserved(isMetricName) }

func isMetricName(name string) bool { return name == model.MetricNameLabel }
