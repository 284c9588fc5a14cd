package main

import (
	"context"
	"errors"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ring"
)

// aggregateLocal is this node's ring.AggregateFunc: a pushed-down
// aggregation over its local series, on an engine of its own (its own
// slots; the query settings' limits).
func (r *ringNode) aggregateLocal(ctx context.Context, req ring.AggregateRequest, keys []uint64) ([]byte, error) {
	eng := r.aggEngine.Load()
	if eng == nil {
		return nil, errors.New("the store is still recovering")
	}
	return api.AggregateLocally(ctx, eng, r.local, req, keys)
}

// setQueryConfig (re)builds the engine of pushed-down aggregations with
// q's settings; aggregations under way keep the engine they started on.
func (r *ringNode) setQueryConfig(q QueryConfig) {
	r.maxGroups.Store(int64(max(q.MaxSeries, 1)))
	r.aggEngine.Store(evaluator.NewEngine(r.local, q.EngineOptions()))
}
