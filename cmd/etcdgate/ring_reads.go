package main

import (
	"fmt"
	"time"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// startReads builds the ring's fan-out Queryable over the local store:
// queries, listings, rules and their restore read the whole ring through
// it. Called once the store has recovered; memLimit is GOMEMLIMIT (0:
// none), which scales the bytes one read may gather.
func (r *ringNode) startReads(local tsdb.Queryable, q QueryConfig, memLimit int64) error {
	o := ring.DefaultFanoutOptions()
	o.MaxBytesPerNode, o.MaxBytesPerRead = fanoutBudget(o.MaxBytesPerNode, o.MaxBytesPerRead, memLimit)
	o.Self, o.Local, o.View, o.Peers = r.self, local, r.view.Load, r.peers
	o.ReplicationFactor = r.cfg.ReplicationFactor
	o.PartialResponse = q.PartialResponse
	o.MaxSeries = q.MaxSeries
	o.Timeout = time.Duration(q.Timeout)
	o.Registerer = r.reg
	o.Aggregate = r.aggregateLocal
	o.PushdownMinSeries = r.cfg.PushdownMinSeries
	r.local = local
	r.setQueryConfig(q)
	reads, err := ring.NewQueryable(o)
	if err != nil {
		return fmt.Errorf("ring reads: %w", err)
	}
	r.reads.Store(reads)
	return nil
}

// fanoutBudget scales the bytes of the nodes' answers one read may hold
// (perNode of one node, perRead of all) to the memory limit: decoded and
// merged, an answer takes about three times its frames, so one read is
// held to an eighth of the limit (never more than the defaults): a
// reader's query cannot take a small node's memory, as it cannot on a
// node alone, where selects read chunks lazily.
func fanoutBudget(perNode, perRead, memLimit int64) (int64, int64) {
	if memLimit <= 0 {
		return perNode, perRead
	}
	perRead = max(min(perRead, memLimit/8), 64<<20)
	return min(perNode, perRead), perRead
}

// queryable is what reads the whole ring (nil before startReads): the
// engine of the API and of the rules, the rules' restore, the listings.
func (r *ringNode) queryable() *ring.Queryable { return r.reads.Load() }

// reads is what queries, listings and rules read: the ring's fan-out on
// a node of a ring, else the local store.
func (g *gateway) reads(db *tsdb.DB) tsdb.Queryable {
	if g.ring != nil {
		if q := g.ring.queryable(); q != nil {
			return api.PushdownStore(q, int(g.ring.maxGroups.Load()))
		}
	}
	return db
}
