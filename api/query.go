package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ring"
)

// QueryEngine evaluates PromQL for /api/v1/query and /api/v1/query_range,
// with the options of each query (lookback_delta, stats=all).
type QueryEngine interface {
	InstantWith(ctx context.Context, qs string, ts time.Time, qo evaluator.QueryOpts) (*evaluator.Result, error)
	RangeWith(ctx context.Context, qs string, start, end time.Time, step time.Duration, qo evaluator.QueryOpts) (*evaluator.Result, error)
}

// SetQueryEngine makes the API answer queries.
func (a *API) SetQueryEngine(e QueryEngine) { a.engine.Store(&e) }

func (a *API) queryEngine(w http.ResponseWriter) QueryEngine {
	if e := a.engine.Load(); e != nil && a.isReady() {
		return *e
	}
	respondError(w, &apiError{typ: errorUnavailable, err: errNotReady})
	return nil
}

// query serves GET|POST /api/v1/query.
func (a *API) query(w http.ResponseWriter, r *http.Request) {
	ts, err := parseTimeParam(r, "time", time.Now())
	if err != nil {
		respondError(w, badData(err))
		return
	}
	a.runQuery(w, r, func(ctx context.Context, eng QueryEngine, qo evaluator.QueryOpts) (*evaluator.Result, error) {
		return eng.InstantWith(ctx, r.FormValue("query"), ts, qo)
	})
}

// queryRange serves GET|POST /api/v1/query_range.
func (a *API) queryRange(w http.ResponseWriter, r *http.Request) {
	start, end, step, err := parseRangeParams(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	a.runQuery(w, r, func(ctx context.Context, eng QueryEngine, qo evaluator.QueryOpts) (*evaluator.Result, error) {
		return eng.RangeWith(ctx, r.FormValue("query"), start, end, step, qo)
	})
}

// runQuery evaluates with the request's timeout and writes the result or
// the error in Prometheus's shape.
func (a *API) runQuery(w http.ResponseWriter, r *http.Request, eval func(context.Context, QueryEngine, evaluator.QueryOpts) (*evaluator.Result, error)) {
	qp, err := parseQueryParams(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	eng := a.queryEngine(w)
	if eng == nil {
		return
	}
	ctx, cancel, err := queryContext(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	defer cancel()
	ctx, ringWarnings, err := readContext(ctx, r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	res, err := eval(ctx, eng, qp.opts)
	if err != nil {
		var pe *evaluator.PanicError
		if errors.As(err, &pe) {
			// The stack goes to the log, never to the client.
			a.panics.log(a.opts.Logger, r.FormValue("query"), pe)
		}
		respondError(w, queryError(err))
		return
	}
	for _, m := range ringWarnings.Strings() {
		res.Warnings = append(res.Warnings, evaluator.Annotation{Msg: m})
	}
	if truncateResult(res, qp.limit) {
		res.Warnings = append(res.Warnings, evaluator.Annotation{Msg: "results truncated due to limit"})
	}
	writeQueryResult(w, res, qp.stats)
}

// queryParams are the parameters of query and query_range besides the
// query, its times and timeout.
type queryParams struct {
	limit int  // at most this many series in the result; 0: all
	stats bool // answer the stats object (stats=true or stats=all)
	opts  evaluator.QueryOpts
}

// parseQueryParams reads limit, lookback_delta and stats. Prometheus
// takes any non-empty stats value for true with a deprecation warning;
// etcdgate refuses values other than true and all, as Prometheus will.
func parseQueryParams(r *http.Request) (queryParams, error) {
	var qp queryParams
	var err error
	// Prometheus 3's query-cost parameters (behind a feature flag there):
	// etcdgate's limits are its configuration's, so it refuses them
	// rather than answer as if they held.
	for _, p := range []string{"cost", "max_series", "max_samples_read", "max_query_duration"} {
		if r.FormValue(p) != "" {
			return qp, fmt.Errorf("invalid parameter %q: not supported by etcdgate (query limits are set in its configuration)", p)
		}
	}
	if qp.limit, err = parseLimit(r); err != nil {
		return qp, err
	}
	if s := r.FormValue("lookback_delta"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return qp, fmt.Errorf("invalid parameter \"lookback_delta\": %w", err)
		}
		if d < 0 {
			return qp, fmt.Errorf("invalid parameter \"lookback_delta\": %q is negative", s)
		}
		qp.opts.LookbackDelta = d
	}
	switch s := r.FormValue("stats"); s {
	case "":
	case "true":
		qp.stats = true
	case "all":
		qp.stats, qp.opts.PerStepStats = true, true
	default:
		return qp, fmt.Errorf("invalid parameter \"stats\": %q, must be \"true\" or \"all\"", s)
	}
	return qp, nil
}

// truncateResult keeps the first limit series of a vector or matrix
// result, as Prometheus does, and reports whether it dropped any.
func truncateResult(res *evaluator.Result, limit int) bool {
	if limit <= 0 {
		return false
	}
	switch v := res.Value.(type) {
	case evaluator.Vector:
		if len(v) > limit {
			res.Value = v[:limit]
			return true
		}
	case evaluator.Matrix:
		if len(v) > limit {
			res.Value = v[:limit]
			return true
		}
	}
	return false
}

func parseRangeParams(r *http.Request) (start, end time.Time, step time.Duration, err error) {
	for _, p := range []string{"start", "end", "step"} {
		if r.FormValue(p) == "" {
			return start, end, 0, fmt.Errorf("invalid parameter %q: missing", p)
		}
	}
	if start, err = parseTimeParam(r, "start", time.Time{}); err != nil {
		return start, end, 0, err
	}
	if end, err = parseTimeParam(r, "end", time.Time{}); err != nil {
		return start, end, 0, err
	}
	if end.Before(start) {
		return start, end, 0, errors.New("invalid parameter \"end\": end timestamp must not be before start time")
	}
	if step, err = parseDuration(r.FormValue("step")); err != nil {
		return start, end, 0, fmt.Errorf("invalid parameter \"step\": %w", err)
	}
	if step <= 0 {
		return start, end, 0, errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	return start, end, step, nil
}

// queryContext applies the timeout parameter; the engine's own timeout
// still bounds the query.
func queryContext(r *http.Request) (context.Context, context.CancelFunc, error) {
	s := r.FormValue("timeout")
	if s == "" {
		ctx, cancel := context.WithCancel(r.Context())
		return ctx, cancel, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid parameter \"timeout\": %w", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

// parseDuration accepts seconds with optional decimals or a Prometheus
// duration such as 1m30s.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		d := f * float64(time.Second)
		if d >= float64(math.MaxInt64) || d <= float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(d), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// queryError maps an evaluation error to its Prometheus error type.
func queryError(err error) *apiError {
	switch {
	case errors.Is(err, evaluator.ErrBadQuery):
		return &apiError{typ: errorBadData, err: err}
	case errors.Is(err, evaluator.ErrTimeout):
		return &apiError{typ: errorTimeout, err: err}
	case errors.Is(err, evaluator.ErrCanceled):
		return &apiError{typ: errorCanceled, err: err}
	case errors.Is(err, evaluator.ErrQueueFull), errors.Is(err, ring.ErrPartialResponse):
		return &apiError{typ: errorUnavailable, err: err}
	case errors.Is(err, evaluator.ErrInternal):
		return &apiError{typ: errorInternal, err: evaluator.ErrInternal}
	}
	return &apiError{typ: errorExecution, err: err}
}
