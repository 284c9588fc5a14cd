package api

import (
	"net/http"

	"github.com/etcdgate/etcdgate/ring"
)

// internalAggregate serves ring.AggregatePath: one pushed-down
// aggregation over the series of this node's LOCAL store that the asking
// node gave it (ring/pushdown.go). It takes an internal select's slot
// before it reads the body (at most 8 bytes a key, keys up to the node's
// query.max_series), answers bad parameters 400 before any evaluation,
// and runs under the node's query timeout, series and sample limits.
func (a *API) internalAggregate(w http.ResponseWriter, r *http.Request) {
	if a.readyBackend(w, true) == nil {
		return
	}
	lim := a.listingState().limits
	// The slot first: a body of keys may be tens of MiB, and only as many
	// as there are slots are read at once.
	ctx, release, ok := a.internalSlot(w, r, lim)
	if !ok {
		return
	}
	defer release()
	req, keys, err := ring.ParseAggregateRequest(r, lim.SelectMaxSeries)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	b, err := a.opts.RingAggregate(ctx, req, keys)
	if err != nil {
		respondError(w, queryError(err))
		return
	}
	ring.WriteAggregate(w, b)
}
