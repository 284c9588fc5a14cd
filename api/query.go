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

// QueryEngine evaluates PromQL for /api/v1/query and /api/v1/query_range.
type QueryEngine interface {
	Instant(ctx context.Context, qs string, ts time.Time) (*evaluator.Result, error)
	Range(ctx context.Context, qs string, start, end time.Time, step time.Duration) (*evaluator.Result, error)
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
	a.runQuery(w, r, func(ctx context.Context, eng QueryEngine) (*evaluator.Result, error) {
		return eng.Instant(ctx, r.FormValue("query"), ts)
	})
}

// queryRange serves GET|POST /api/v1/query_range.
func (a *API) queryRange(w http.ResponseWriter, r *http.Request) {
	start, end, step, err := parseRangeParams(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	a.runQuery(w, r, func(ctx context.Context, eng QueryEngine) (*evaluator.Result, error) {
		return eng.Range(ctx, r.FormValue("query"), start, end, step)
	})
}

// runQuery evaluates with the request's timeout and writes the result or
// the error in Prometheus's shape.
func (a *API) runQuery(w http.ResponseWriter, r *http.Request, eval func(context.Context, QueryEngine) (*evaluator.Result, error)) {
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
	res, err := eval(ctx, eng)
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
	writeQueryResult(w, res)
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
