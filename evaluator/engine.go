package evaluator

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/etcdgate/etcdgate/tsdb"
)

// Options configures an Engine. Zero values take the defaults below.
type Options struct {
	// LookbackDelta is how far back an instant selector looks for a
	// sample (Prometheus's --query.lookback-delta). Default 5m.
	LookbackDelta time.Duration
	// Timeout bounds one query. Default 2m.
	Timeout time.Duration
	// MaxSamples bounds the points a query holds in memory: the raw
	// samples of the series a worker is reading plus every point of the
	// intermediate results (counted as they are made, never released, so
	// the bound is conservative). Like Prometheus's --query.max-samples.
	// Default 50,000,000.
	MaxSamples int64
	// MaxSeries bounds the series one selector may match (VictoriaMetrics's
	// -search.maxUniqueTimeseries): the store stops collecting past it and
	// the query fails with tsdb.ErrTooManySeries (422), before any sample
	// is read. Default 2,000,000.
	MaxSeries int
	// MaxConcurrent bounds the queries evaluated at once; more wait for a
	// slot until their timeout. Default 20.
	MaxConcurrent int
	// MaxQueued bounds the queries waiting for a slot; past it a query
	// fails at once with ErrQueueFull (503). Zero: no bound (the queue of
	// an engine serving rule groups, whose number the operator sets).
	MaxQueued int
	// MaxPointsPerSeries bounds the steps of a range query, checked
	// before evaluation starts (Prometheus's 11,000). Default 11,000.
	MaxPointsPerSeries int64
	// MaxSubquerySteps bounds the steps of every subquery, which are the
	// points of each of its series, checked before the subquery is
	// evaluated: x[3650d:1ms] fails at once instead of allocating 3e11
	// points. Default 1,000,000.
	MaxSubquerySteps int64
	// DefaultSubqueryStep is the step of a subquery that gives none, as
	// in x[5m:] (Prometheus's global evaluation interval). Default 1m.
	DefaultSubqueryStep time.Duration
	// ParseLimits bound the query text before it is parsed; zero fields
	// take DefaultParseLimits.
	ParseLimits ParseLimits
}

const (
	DefaultLookbackDelta = 5 * time.Minute
	DefaultTimeout       = 2 * time.Minute
	DefaultMaxSamples    = 50_000_000
	DefaultMaxConcurrent = 20
	DefaultMaxSeries     = 2_000_000
	// DefaultMaxQueued is the queue the query API's engine is given.
	DefaultMaxQueued = 100
	// DefaultMaxPointsPerSeries is Prometheus's bound on a range query's
	// resolution.
	DefaultMaxPointsPerSeries = 11_000
	DefaultMaxSubquerySteps   = 1_000_000
)

// Engine evaluates queries over a store. It is safe for concurrent use.
type Engine struct {
	store   tsdb.Queryable
	opts    Options
	slots   chan struct{}
	waiting atomic.Int64 // queries waiting for a slot
	parsed  parseCache
}

// NewEngine returns an engine reading from store.
func NewEngine(store tsdb.Queryable, opts Options) *Engine {
	if opts.LookbackDelta <= 0 {
		opts.LookbackDelta = DefaultLookbackDelta
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = DefaultMaxSamples
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	if opts.MaxPointsPerSeries <= 0 {
		opts.MaxPointsPerSeries = DefaultMaxPointsPerSeries
	}
	if opts.MaxSubquerySteps <= 0 {
		opts.MaxSubquerySteps = DefaultMaxSubquerySteps
	}
	opts.ParseLimits = opts.ParseLimits.withDefaults()
	if opts.DefaultSubqueryStep <= 0 {
		opts.DefaultSubqueryStep = time.Minute
	}
	return &Engine{store: store, opts: opts, slots: make(chan struct{}, opts.MaxConcurrent)}
}

// Instant evaluates qs at ts. The result is a Vector, Scalar or String
// (or a Matrix when qs is a range-vector expression).
func (e *Engine) Instant(ctx context.Context, qs string, ts time.Time) (*Result, error) {
	return e.InstantWith(ctx, qs, ts, QueryOpts{})
}

// InstantWith is Instant with the options of this query.
func (e *Engine) InstantWith(ctx context.Context, qs string, ts time.Time, qo QueryOpts) (*Result, error) {
	t := ts.UnixMilli()
	return e.exec(ctx, qs, t, t, 0, true, qo)
}

// Range evaluates qs at every step from start to end and returns a Matrix.
func (e *Engine) Range(ctx context.Context, qs string, start, end time.Time, step time.Duration) (*Result, error) {
	return e.RangeWith(ctx, qs, start, end, step, QueryOpts{})
}

// RangeWith is Range with the options of this query.
func (e *Engine) RangeWith(ctx context.Context, qs string, start, end time.Time, step time.Duration, qo QueryOpts) (*Result, error) {
	if qo.LookbackDelta < 0 {
		return nil, badQuery("negative lookback delta %s", qo.LookbackDelta)
	}
	if step <= 0 {
		return nil, badQuery("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if end.Before(start) {
		return nil, badQuery("end timestamp must not be before start time")
	}
	if steps := end.Sub(start) / step; int64(steps) > e.opts.MaxPointsPerSeries {
		return nil, badQuery("exceeded maximum resolution of %s points per timeseries. Try decreasing the query resolution (?step=XX)", thousands(e.opts.MaxPointsPerSeries))
	}
	return e.exec(ctx, qs, start.UnixMilli(), end.UnixMilli(), step.Milliseconds(), false, qo)
}

// thousands formats n with comma separators, as Prometheus writes its
// 11,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
