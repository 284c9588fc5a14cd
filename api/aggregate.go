package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/etcdgate/etcdgate/ring"
)

// internalAggregate serves ring.AggregatePath: one pushed-down
// aggregation over the series of this node's LOCAL store that the asking
// node gave it (ring/pushdown.go). Bad parameters are answered 400
// before any work; it takes an internal select's slot and runs under
// the node's query timeout, series and sample limits.
func (a *API) internalAggregate(w http.ResponseWriter, r *http.Request) {
	if a.readyBackend(w, true) == nil {
		return
	}
	lim := a.listingState().limits
	req, keys, err := ring.ParseAggregateRequest(r, lim.SelectMaxSeries)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), lim.SelectTimeout)
	defer cancel()
	select {
	case a.selects <- struct{}{}:
		defer func() { <-a.selects }()
	case <-ctx.Done():
		respondError(w, &apiError{typ: errorUnavailable, err: errors.New("too many internal selects under way")})
		return
	}
	b, err := a.opts.RingAggregate(ctx, req, keys)
	if err != nil {
		respondError(w, queryError(err))
		return
	}
	ring.WriteAggregate(w, b)
}
