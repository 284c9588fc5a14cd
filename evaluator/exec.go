package evaluator

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// exec parses qs and evaluates it at the steps start, start+interval, ...
// end. instant selects the instant-query result shapes.
func (e *Engine) exec(ctx context.Context, qs string, start, end, interval int64, instant bool, qo QueryOpts) (res *Result, err error) {
	began := time.Now()
	defer func() {
		// run recovers evaluation; this catches the rest (parsing,
		// shaping the result), so that no panic ends the process.
		if r := recover(); r != nil {
			res, err = nil, &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if qo.LookbackDelta < 0 {
		return nil, badQuery("negative lookback delta %s", qo.LookbackDelta)
	}
	lookback := e.opts.LookbackDelta
	if qo.LookbackDelta > 0 {
		lookback = qo.LookbackDelta
	}
	pq, err := e.parse(qs)
	if err != nil {
		return nil, err
	}
	expr := pq.expr
	parsed := time.Now()
	typ := typeOf(expr)
	if !instant && typ != typeVector && typ != typeScalar {
		return nil, badQuery("invalid expression type %q for range query, must be Scalar or instant Vector", typ)
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	ctx = tsdb.WithSeriesLimit(ctx, e.opts.MaxSeries)
	if err := e.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-e.slots }()
	acquired := time.Now()

	step := interval
	if interval <= 0 {
		interval = 1 // one step; step() is still 0
	}
	ev := &evaluator{
		queryState: &queryState{
			ctx:                 ctx,
			store:               e.store,
			lookback:            lookback.Milliseconds(),
			queryStart:          start,
			queryEnd:            end,
			queryStep:           step,
			defaultSubqueryStep: e.opts.DefaultSubqueryStep.Milliseconds(),
			maxSamples:          e.opts.MaxSamples,
			maxSeries:           e.opts.MaxSeries,
			maxSubquerySteps:    e.opts.MaxSubquerySteps,
			matchers:            pq.matchers,
			shared:              repeatedSelectors(expr),
			folds:               pq.folds,
		},
		start:    start,
		end:      end,
		interval: interval,
	}
	ev.counts = newStepCounts(ev.numSteps(), qo.PerStepStats)
	val, err := ev.run(expr)
	if err != nil {
		return nil, err
	}
	evaluated := time.Now()
	res = &Result{Warnings: ev.annos}
	res.Value = ev.resultValue(val, instant, ordersResult(expr))
	done := time.Now()
	queryable, read := ev.stepSamples()
	res.Stats = Stats{
		SamplesLoaded: ev.samplesLoaded.Load(), SeriesLoaded: ev.seriesLoaded.Load(),
		QueryableSamples: ev.counts.total.Load(), SamplesRead: ev.counts.read.Load(), PeakSamples: ev.peak.Load(),
		PrepareTime: parsed.Sub(began), QueueTime: acquired.Sub(parsed), EvalTime: evaluated.Sub(acquired),
		ResultTime: done.Sub(evaluated), TotalTime: done.Sub(began),
		PerStep: queryable, ReadPerStep: read,
	}
	return res, nil
}

// run evaluates expr, turning evaluation panics into errors.
func (ev *evaluator) run(expr metricsql.Expr) (val any, err error) {
	err = ev.protect(func() { val = ev.eval(expr) })
	return val, err
}

// protect runs fn, turning evaluation panics into errors: an evalError
// (how evaluation raises one) into its error, anything else into a
// PanicError with the stack.
func (ev *evaluator) protect(fn func()) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if ee, ok := r.(evalError); ok {
			err = ee.err
			return
		}
		err = &PanicError{Value: r, Stack: debug.Stack()}
	}()
	fn()
	return nil
}

// acquire takes a query slot, waiting while the queue has room and the
// context lasts.
func (e *Engine) acquire(ctx context.Context) error {
	select {
	case e.slots <- struct{}{}:
		return nil
	default:
	}
	if e.waiting.Add(1) > int64(e.opts.MaxQueued) && e.opts.MaxQueued > 0 {
		e.waiting.Add(-1)
		return fmt.Errorf("%w: %d queries run and %d wait (query.max_concurrency, query.max_queued)",
			ErrQueueFull, e.opts.MaxConcurrent, e.opts.MaxQueued)
	}
	defer e.waiting.Add(-1)
	select {
	case e.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return contextError(ctx.Err(), "waiting for a query slot")
	}
}

// contextError maps a context's end to ErrTimeout or ErrCanceled.
func contextError(err error, during string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w while %s", ErrTimeout, during)
	}
	return fmt.Errorf("%w while %s", ErrCanceled, during)
}

// resultValue shapes an evaluation result for the API.
func (ev *evaluator) resultValue(val any, instant, keepOrder bool) Value {
	switch v := val.(type) {
	case String:
		return String{T: ev.start, V: v.V}
	case scalarSteps:
		if instant {
			return Scalar{T: ev.start, V: v[0]}
		}
		pts := make([]FPoint, len(v))
		for i, f := range v {
			pts[i] = FPoint{T: ev.start + int64(i)*ev.interval, F: f}
		}
		return Matrix{{Metric: labels.EmptyLabels(), Floats: pts}}
	case rangeMatrix:
		m := Matrix(v)
		sortMatrix(m)
		return m
	case Matrix:
		if !instant {
			m := v[:0]
			for _, s := range v {
				if len(s.Floats) > 0 {
					m = append(m, s)
				}
			}
			sortMatrix(m)
			return m
		}
		if !keepOrder {
			sortMatrix(v) // series are selected in no particular order
		}
		vec := make(Vector, 0, len(v))
		for _, s := range v {
			for _, p := range s.Floats {
				vec = append(vec, Sample{Metric: s.Metric, T: p.T, F: p.F})
			}
		}
		return vec
	}
	panic(fmt.Sprintf("unexpected evaluation result %T", val))
}

// ordersResult reports whether expr's result order is its point, as for
// sort() and topk(): an instant query returns those in their order, and
// everything else by labels.
func ordersResult(expr metricsql.Expr) bool {
	switch e := expr.(type) {
	case *metricsql.FuncExpr:
		switch strings.ToLower(e.Name) {
		case "sort", "sort_desc", "sort_by_label", "sort_by_label_desc":
			return true
		}
	case *metricsql.AggrFuncExpr:
		switch strings.ToLower(e.Name) {
		case "topk", "bottomk":
			return true
		}
	}
	return false
}

func sortMatrix(m Matrix) {
	sort.Slice(m, func(i, j int) bool { return labels.Compare(m[i].Metric, m[j].Metric) < 0 })
}

// scalarSteps is a scalar's value at every step of the query.
type scalarSteps []float64

// rangeMatrix is the value of a range-vector expression (a matrix
// selector or a subquery) at an instant query's single step: every series
// with its raw samples in the window.
type rangeMatrix Matrix
