package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// PushdownStore is the ring's fan-out as a query engine's store, with
// the engine's pushdown (evaluator.Pushdown) of fused aggregations to
// the nodes holding the series (ring/pushdown.go). maxGroups bounds the
// groups of one node's partial aggregate (a group is at most a series:
// query.max_series).
func PushdownStore(reads *ring.Queryable, maxGroups int) tsdb.Queryable {
	return pushdownStore{Queryable: reads, maxGroups: max(maxGroups, 1)}
}

type pushdownStore struct {
	*ring.Queryable
	maxGroups int
}

var _ evaluator.Pushdown = pushdownStore{}

func (s pushdownStore) PushAggregate(ctx context.Context, spec evaluator.AggregateSpec) ([]*evaluator.PartialAggregate, tsdb.Queryable, error) {
	req := ring.AggregateRequest{Expr: spec.Expr, Start: spec.Start, End: spec.End, Interval: spec.Interval,
		LookbackDelta: spec.LookbackDelta, Matchers: spec.Matchers, Mint: spec.Mint, Maxt: spec.Maxt}
	parts, rest, err := s.Queryable.PushAggregate(ctx, req)
	if errors.Is(err, ring.ErrNotPushed) {
		return nil, nil, fmt.Errorf("%w: %w", evaluator.ErrNotPushed, err)
	}
	if err != nil {
		return nil, nil, err
	}
	steps := int((spec.End-spec.Start)/spec.Interval) + 1
	out := make([]*evaluator.PartialAggregate, 0, len(parts))
	for _, b := range parts {
		p, err := evaluator.DecodePartialAggregate(b, steps, s.maxGroups)
		if err != nil {
			// A node's answer this node cannot read: the fan-out reads
			// the series instead.
			return nil, nil, fmt.Errorf("%w: %w", evaluator.ErrNotPushed, err)
		}
		out = append(out, p)
	}
	return out, rest, nil
}

// AggregateLocally evaluates a pushed-down aggregation over the series
// of local with keys on eng (an engine over the local store, with slots
// of its own): a node's ring.AggregateFunc.
func AggregateLocally(ctx context.Context, eng *evaluator.Engine, local tsdb.Queryable, req ring.AggregateRequest, keys []uint64) ([]byte, error) {
	spec := evaluator.AggregateSpec{Expr: req.Expr, Start: req.Start, End: req.End, Interval: req.Interval,
		LookbackDelta: req.LookbackDelta}
	p, err := eng.EvalPartial(ctx, ring.KeyedStore(local, keys), spec)
	if err != nil {
		return nil, err
	}
	return p.AppendBinary(nil), nil
}
