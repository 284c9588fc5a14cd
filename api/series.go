package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/ingest"
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

func parseReadRequest(r *http.Request, requireMatch bool) (readRequest, *apiError) {
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
	if req.matcherSets, err = parseMatchers(r.Form["match[]"]); err != nil {
		return req, badData(err)
	}
	return req, nil
}

// openRead parses a read request and opens a querier over its range. On
// failure it has answered the client and returns ok false.
func (a *API) openRead(w http.ResponseWriter, r *http.Request, requireMatch bool) (readRequest, tsdb.Querier, bool) {
	b := a.readyBackend(w, true)
	if b == nil {
		return readRequest{}, nil, false
	}
	req, apiErr := parseReadRequest(r, requireMatch)
	if apiErr != nil {
		respondError(w, apiErr)
		return req, nil, false
	}
	q, err := b.storage.Querier(req.mint, req.maxt)
	if err != nil {
		respondError(w, &apiError{typ: errorExecution, err: err})
		return req, nil, false
	}
	return req, q, true
}

// readError classifies an error from a querier.
func readError(err error) *apiError {
	switch {
	case errors.Is(err, context.Canceled):
		return &apiError{typ: errorCanceled, err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{typ: errorTimeout, err: err}
	}
	return &apiError{typ: errorExecution, err: err}
}

// series serves /api/v1/series: the label sets of the series matching any
// match[] selector, sorted and without duplicates.
func (a *API) series(w http.ResponseWriter, r *http.Request) {
	req, q, ok := a.openRead(w, r, true)
	if !ok {
		return
	}
	defer q.Close()
	var all []labels.Labels
	for _, ms := range req.matcherSets {
		set := q.Select(r.Context(), ms...)
		for set.Next() {
			all = append(all, set.At().Labels())
		}
		if err := set.Err(); err != nil {
			respondError(w, readError(err))
			return
		}
	}
	if len(req.matcherSets) > 1 {
		slices.SortFunc(all, labels.Compare)
		all = slices.CompactFunc(all, labels.Equal)
	}
	var warnings []string
	if req.limit > 0 && len(all) > req.limit {
		all, warnings = all[:req.limit], []string{truncatedWarning}
	}
	if all == nil {
		all = []labels.Labels{}
	}
	respond(w, all, warnings)
}

// labelNames serves /api/v1/labels.
func (a *API) labelNames(w http.ResponseWriter, r *http.Request) {
	a.labelStrings(w, r, func(ctx context.Context, q tsdb.Querier, ms []*labels.Matcher) ([]string, error) {
		return q.LabelNames(ctx, ms...)
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
	})
}

// labelStrings runs get once per match[] set (or once without matchers)
// and answers with the sorted union.
func (a *API) labelStrings(w http.ResponseWriter, r *http.Request,
	get func(context.Context, tsdb.Querier, []*labels.Matcher) ([]string, error),
) {
	req, q, ok := a.openRead(w, r, false)
	if !ok {
		return
	}
	defer q.Close()
	sets := req.matcherSets
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	var out []string
	for _, ms := range sets {
		vals, err := get(r.Context(), q, ms)
		if err != nil {
			respondError(w, readError(err))
			return
		}
		out = append(out, vals...)
	}
	if len(sets) > 1 {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	var warnings []string
	if req.limit > 0 && len(out) > req.limit {
		out, warnings = out[:req.limit], []string{truncatedWarning}
	}
	if out == nil {
		out = []string{}
	}
	respond(w, out, warnings)
}
