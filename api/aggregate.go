package api

import (
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
	ctx, release, ok := a.internalSlot(w, r, lim)
	if !ok {
		return
	}
	defer release()
	b, err := a.opts.RingAggregate(ctx, req, keys)
	if err != nil {
		respondError(w, queryError(err))
		return
	}
	ring.WriteAggregate(w, b)
}
