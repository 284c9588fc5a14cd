package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
)

// maxSelectConcurrency bounds the internal selects (ring.SelectPath) a
// node serves at once, in slots of their own: peers' fan-out reads
// neither wait for the listing slots nor starve them. More wait for a
// slot until their timeout, then get 503 (the asking node counts this
// node as failed for that read).
const maxSelectConcurrency = 16

// selectContentType is the media type of the select stream.
const selectContentType = "application/x-etcdgate-select"

// internalSelect serves ring.SelectPath: what this node's LOCAL store
// holds for one selector, streamed (ring/select_codec.go). It never fans
// out again. Bad parameters are answered 400 before any work; the
// select runs under the node's query timeout and series limit.
func (a *API) internalSelect(w http.ResponseWriter, r *http.Request) {
	b := a.readyBackend(w, true)
	if b == nil {
		return
	}
	lim := a.listingState().limits
	req, err := parseSelectRequest(r, lim)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	ctx, release, ok := a.internalSlot(w, r, lim)
	if !ok {
		return
	}
	defer release()
	q, err := b.storage.Querier(req.Mint, req.Maxt)
	if err != nil {
		respondError(w, &apiError{typ: errorExecution, err: err})
		return
	}
	defer q.Close()
	w.Header().Set("Content-Type", selectContentType)
	w.WriteHeader(http.StatusOK)
	_ = ring.WriteSelect(ctx, q, req, w) // a write error: the peer went away
}

// internalSlot takes one of the slots of internal selects and
// aggregations, waiting until the node's select timeout, which the
// returned context also carries; past it the request is answered 503
// and ok is false.
func (a *API) internalSlot(w http.ResponseWriter, r *http.Request, lim ReadLimits) (ctx context.Context, release func(), ok bool) {
	ctx, cancel := context.WithTimeout(r.Context(), lim.SelectTimeout)
	select {
	case a.selects <- struct{}{}:
		return ctx, func() { <-a.selects; cancel() }, true
	case <-ctx.Done():
		cancel()
		respondError(w, &apiError{typ: errorUnavailable, err: errors.New("too many internal selects under way")})
		return nil, nil, false
	}
}

// parseSelectRequest reads and bounds the parameters of ring.SelectPath.
func parseSelectRequest(r *http.Request, lim ReadLimits) (ring.SelectRequest, error) {
	var req ring.SelectRequest
	if err := r.ParseForm(); err != nil {
		return req, fmt.Errorf("error parsing form values: %w", err)
	}
	req.Mode = r.Form.Get("mode")
	if req.Mode == "" {
		req.Mode = ring.SelectSeries
	}
	needsMatch := false
	switch req.Mode {
	case ring.SelectSeries, ring.SelectLabels, ring.SelectDigests:
		needsMatch = true
	case ring.SelectNames:
	case ring.SelectValues:
		req.Name = r.Form.Get("name")
		if !ingest.IsValidLabelName(req.Name) {
			return req, fmt.Errorf("invalid parameter \"name\": %q is not a label name", req.Name)
		}
	default:
		return req, fmt.Errorf("invalid parameter \"mode\": %q: want series, labels, names, values or digests", req.Mode)
	}
	var err error
	if req.Mint, err = parseMillis(r, "start"); err != nil {
		return req, err
	}
	if req.Maxt, err = parseMillis(r, "end"); err != nil {
		return req, err
	}
	if req.Maxt < req.Mint {
		return req, errors.New("invalid parameter \"end\": before start")
	}
	if s := r.Form.Get("limit"); s != "" || needsMatch {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > lim.SelectMaxSeries {
			return req, fmt.Errorf("invalid parameter \"limit\": %q: want 1 to %d (query.max_series)", s, lim.SelectMaxSeries)
		}
		req.Limit = n
	}
	sel := r.Form["match[]"]
	if len(sel) > 1 {
		return req, fmt.Errorf("%d match[] selectors: at most one", len(sel))
	}
	if needsMatch && len(sel) == 0 {
		return req, errors.New("no match[] parameter provided")
	}
	sets, err := parseMatchers(sel, lim.Parse)
	if err != nil {
		return req, err
	}
	if len(sets) > 1 {
		return req, errors.New("invalid parameter \"match[]\": one selector without \"or\"")
	}
	if len(sets) == 1 {
		req.Matchers = sets[0]
	}
	if k, ok := r.Form["keys"]; ok {
		if req.Mode != ring.SelectSeries && req.Mode != ring.SelectDigests || len(k) != 1 {
			return req, errors.New("invalid parameter \"keys\": one, with mode series or digests")
		}
		keys, err := ring.DecodeKeys(k[0], lim.SelectMaxSeries)
		if err != nil {
			return req, fmt.Errorf("invalid parameter \"keys\": %w", err)
		}
		req.SetKeys(keys)
	}
	switch c := r.Form.Get("chunks"); c {
	case "", "0":
	case "1":
		req.Chunks = req.Mode == ring.SelectSeries
	default:
		return req, fmt.Errorf("invalid parameter \"chunks\": %q: want 0 or 1", c)
	}
	return req, nil
}

func parseMillis(r *http.Request, name string) (int64, error) {
	s := r.Form.Get(name)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid parameter %q: %q is not a timestamp in milliseconds", name, s)
	}
	return v, nil
}

// readContext prepares a read's context for the ring's fan-out: the
// request's partial_response parameter, if given, and a collector of
// the fan-out's warnings, which the caller adds to its answer.
func readContext(ctx context.Context, r *http.Request) (context.Context, *ring.Warnings, error) {
	if s := r.FormValue("partial_response"); s != "" {
		allow, err := strconv.ParseBool(s)
		if err != nil {
			return ctx, nil, fmt.Errorf("invalid parameter \"partial_response\": %q: want true or false", s)
		}
		ctx = ring.WithPartialResponse(ctx, allow)
	}
	ctx, ws := ring.WithWarnings(ctx)
	return ctx, ws, nil
}
