package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

const truncatedWarning = "results truncated due to limit"

// readRequest holds the parameters shared by the series and label
// endpoints.
type readRequest struct {
	matcherSets [][]*labels.Matcher
	mint, maxt  int64
	limit       int
}

func parseReadRequest(r *http.Request, requireMatch bool, pl evaluator.ParseLimits) (readRequest, *apiError) {
	var req readRequest
	if err := r.ParseForm(); err != nil {
		return req, badData(fmt.Errorf("error parsing form values: %w", err))
	}
	if requireMatch && len(r.Form["match[]"]) == 0 {
		return req, badData(errors.New("no match[] parameter provided"))
	}
	var err error
	if req.mint, req.maxt, err = parseRange(r); err != nil {
		return req, badData(err)
	}
	if req.limit, err = parseLimit(r); err != nil {
		return req, badData(err)
	}
	if req.matcherSets, err = parseMatchers(r.Form["match[]"], pl); err != nil {
		return req, badData(err)
	}
	return req, nil
}

// openedRead is a listing under way: its parameters, its context (with
// the listing's timeout), its limits, and a querier over its range.
type openedRead struct {
	req     readRequest
	ctx     context.Context
	limits  ReadLimits
	q       tsdb.Querier
	release func()
	// warnings gathers the ring fan-out's warnings (partial answers).
	warnings *ring.Warnings
}

func (o *openedRead) close() {
	o.q.Close()
	o.release()
}

// openRead parses a read request, takes a listing slot (waiting at most
// the listing's timeout), and only then opens a querier over its range:
// a bad request is answered at once, and no querier is held while it
// waits. On failure it has answered the client and returns nil; the
// caller closes what it returns.
func (a *API) openRead(w http.ResponseWriter, r *http.Request, requireMatch bool) *openedRead {
	b := a.readyBackend(w, true)
	if b == nil {
		return nil
	}
	req, apiErr := parseReadRequest(r, requireMatch, a.listingState().limits.Parse)
	if apiErr != nil {
		respondError(w, apiErr)
		return nil
	}
	ctx, ws, err := readContext(r.Context(), r)
	if err != nil {
		respondError(w, badData(err))
		return nil
	}
	ctx, st, release := a.startListing(w, r.WithContext(ctx))
	if release == nil {
		return nil
	}
	q, err := a.readStore(b).Querier(req.mint, req.maxt)
	if err != nil {
		release()
		respondError(w, &apiError{typ: errorExecution, err: err})
		return nil
	}
	return &openedRead{req: req, ctx: ctx, limits: st.limits, q: q, release: release, warnings: ws}
}

// readError classifies an error from a querier.
func readError(err error) *apiError {
	switch {
	case errors.Is(err, context.Canceled):
		return &apiError{typ: errorCanceled, err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{typ: errorTimeout, err: fmt.Errorf("listing timed out (query.listing_timeout or the timeout parameter): %w", err)}
	case errors.Is(err, ring.ErrPartialResponse):
		return &apiError{typ: errorUnavailable, err: err}
	}
	return &apiError{typ: errorExecution, err: err}
}

// series serves /api/v1/series: the label sets of the series matching any
// match[] selector, sorted and without duplicates. Each selector's series
// are collected up to the limit and one more, never all of them.
func (a *API) series(w http.ResponseWriter, r *http.Request) {
	o := a.openRead(w, r, true)
	if o == nil {
		return
	}
	defer o.close()
	req, q, ctx := o.req, o.q, o.ctx
	limit := o.limits.effectiveLimit(req.limit)
	ctx = ring.WithListLimit(ctx, limit+1)
	var all []labels.Labels
	for _, ms := range req.matcherSets {
		n := 0
		err := listSeries(ctx, q, ms, func(l labels.Labels) bool {
			all = append(all, l)
			n++
			return n <= limit
		})
		if err != nil {
			respondError(w, readError(err))
			return
		}
	}
	slices.SortFunc(all, labels.Compare)
	all = slices.CompactFunc(all, labels.Equal)
	var warnings []string
	if len(all) > limit {
		all, warnings = all[:limit], truncation(limit, req.limit)
	}
	if all == nil {
		all = []labels.Labels{}
	}
	respond(w, all, append(warnings, o.warnings.Strings()...))
}

// listSeries calls fn with the label sets of the series matching ms
// until it returns false: one at a time where the querier can list them
// so, otherwise through Select.
func listSeries(ctx context.Context, q tsdb.Querier, ms []*labels.Matcher, fn func(labels.Labels) bool) error {
	if l, ok := q.(tsdb.SeriesLister); ok {
		return l.ListSeries(ctx, fn, ms...)
	}
	set := q.SelectUnsorted(ctx, ms...)
	for set.Next() {
		if !fn(set.At().Labels()) {
			break
		}
	}
	return set.Err()
}

// labelNames serves /api/v1/labels.
func (a *API) labelNames(w http.ResponseWriter, r *http.Request) {
	a.labelStrings(w, r, func(ctx context.Context, q tsdb.Querier, ms []*labels.Matcher) ([]string, error) {
		return q.LabelNames(ctx, ms...)
	}, func(l labels.Labels, add func(string) bool) bool {
		ok := true
		l.Range(func(lb labels.Label) {
			if ok {
				ok = add(lb.Name)
			}
		})
		return ok
	})
}

// labelValues serves /api/v1/label/<name>/values.
func (a *API) labelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !ingest.IsValidLabelName(name) {
		respondError(w, badData(fmt.Errorf("invalid label name: %q", name)))
		return
	}
	a.labelStrings(w, r, func(ctx context.Context, q tsdb.Querier, ms []*labels.Matcher) ([]string, error) {
		return q.LabelValues(ctx, name, ms...)
	}, func(l labels.Labels, add func(string) bool) bool {
		if v := l.Get(name); v != "" {
			return add(v)
		}
		return true
	})
}

// labelStrings answers with the sorted union of label names or values
// over every match[] set (or over all series without one). Without
// matchers, get reads them from the index (no series is visited);
// with matchers, the matching series are listed one at a time and
// of(series, add) adds each one's strings, until the limit and one more
// are found.
func (a *API) labelStrings(w http.ResponseWriter, r *http.Request,
	get func(context.Context, tsdb.Querier, []*labels.Matcher) ([]string, error),
	of func(l labels.Labels, add func(string) bool) bool,
) {
	o := a.openRead(w, r, false)
	if o == nil {
		return
	}
	defer o.close()
	req, q, ctx := o.req, o.q, o.ctx
	limit := o.limits.effectiveLimit(req.limit)
	ctx = ring.WithListLimit(ctx, limit+1)
	var out []string
	if len(req.matcherSets) == 0 {
		vals, err := get(ctx, q, nil)
		if err != nil {
			respondError(w, readError(err))
			return
		}
		out = vals
	} else {
		seen := map[string]struct{}{}
		add := func(s string) bool {
			if _, dup := seen[s]; !dup {
				seen[s] = struct{}{}
				out = append(out, s)
			}
			return len(out) <= limit
		}
		for _, ms := range req.matcherSets {
			if err := listSeries(ctx, q, ms, func(l labels.Labels) bool { return of(l, add) }); err != nil {
				respondError(w, readError(err))
				return
			}
			if len(out) > limit {
				break
			}
		}
		slices.Sort(out)
	}
	var warnings []string
	if len(out) > limit {
		out, warnings = out[:limit], truncation(limit, req.limit)
	}
	if out == nil {
		out = []string{}
	}
	respond(w, out, append(warnings, o.warnings.Strings()...))
}
