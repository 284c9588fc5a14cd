package main

import (
	"fmt"
	"time"

	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// startReads builds the ring's fan-out Queryable over the local store:
// queries, listings, rules and their restore read the whole ring through
// it. Called once the store has recovered.
func (r *ringNode) startReads(local tsdb.Queryable, q QueryConfig) error {
	o := ring.DefaultFanoutOptions()
	o.Self, o.Local, o.View, o.Peers = r.self, local, r.view.Load, r.peers
	o.ReplicationFactor = r.cfg.ReplicationFactor
	o.PartialResponse = q.PartialResponse
	o.MaxSeries = q.MaxSeries
	o.Timeout = time.Duration(q.Timeout)
	o.Registerer = r.reg
	reads, err := ring.NewQueryable(o)
	if err != nil {
		return fmt.Errorf("ring reads: %w", err)
	}
	r.reads.Store(reads)
	return nil
}

// queryable is what reads the whole ring (nil before startReads): the
// engine of the API and of the rules, the rules' restore, the listings.
func (r *ringNode) queryable() *ring.Queryable { return r.reads.Load() }

// reads is what queries, listings and rules read: the ring's fan-out on
// a node of a ring, else the local store.
func (g *gateway) reads(db *tsdb.DB) tsdb.Queryable {
	if g.ring != nil {
		if q := g.ring.queryable(); q != nil {
			return q
		}
	}
	return db
}
