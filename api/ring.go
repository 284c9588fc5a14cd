package api

import (
	"context"
	"net/http"
	"time"

	"github.com/etcdgate/etcdgate/ring"
)

// RingStatus is what /api/v1/status/ring serves: the ring as this node
// sees it, each node with its head series asked of the node itself.
// cmd/etcdgate implements it over ring.Membership and ring.Peers.
type RingStatus interface {
	// RingStatus returns a JSON-marshalable snapshot; ctx bounds the
	// questions to the peers.
	RingStatus(ctx context.Context) any
}

// headSeries is implemented by a store that counts its head's series.
type headSeries interface{ NumHeadSeries() int64 }

// ringStatusTimeout bounds the peers' answers to /api/v1/status/ring.
const ringStatusTimeout = 3 * time.Second

func (a *API) ringStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), ringStatusTimeout)
	defer cancel()
	respond(w, a.opts.Ring.RingStatus(ctx), nil)
}

// internalStats serves GET /internal/v1/stats (ring.StatsPath).
func (a *API) internalStats(w http.ResponseWriter, r *http.Request) {
	b := a.readyBackend(w, true)
	if b == nil {
		return
	}
	var st ring.NodeStats
	if h, ok := b.storage.(headSeries); ok {
		st.HeadSeries = h.NumHeadSeries()
	}
	respond(w, st, nil)
}
