package ring

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/etcdgate/etcdgate/tsdb"
)

// A fleet-wide aggregation such as
//
//	sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))
//
// read through the fan-out brings every matching series, RF times, to
// the asking node. Pushed down, it is evaluated where the series are, in
// two phases, and the answer is exactly the fan-out's:
//
//  1. Digests: every ACTIVE node answers, for each matching series, its
//     SeriesKey and a digest of what it holds in the range read.
//  2. Each series whose copies all have the same digest (the copies hold
//     the same samples: the common case) is given to one of the nodes
//     holding it, spread by key; each node evaluates the aggregation over
//     the series it was given and answers a partial aggregate. Series
//     whose copies differ (a replica that missed samples while it was
//     down, or cut its chunks differently) are read raw through the
//     fan-out, merged and folded in by the asking node, as every series
//     is without pushdown.
//
// A node that fails in phase 1 is a missing node as in any fan-out read
// (judged against the replication factor); one that fails in phase 2
// makes the ring decline (ErrNotPushed), and the caller reads through
// the fan-out, so no series is lost between the phases.

// ErrNotPushed is PushAggregate declining: the caller evaluates the
// aggregation through the fan-out instead.
var ErrNotPushed = errors.New("ring: aggregation not pushed down")

// maxRawKeys bounds the series read raw (their keys go in the select's
// parameters); past it PushAggregate declines, as reading that many raw
// is what the fan-out does anyway.
const maxRawKeys = 100_000

// maxPushNodes is the most ACTIVE nodes pushdown spreads over (a holder
// set is a 64-bit mask).
const maxPushNodes = 64

// PushAggregate evaluates req on the nodes (the two phases above) and
// returns their partial aggregates (wire form) and a Queryable holding
// the series to read raw and fold in here (nil: none). It declines with
// ErrNotPushed on a ring of one ACTIVE node, without an AggregateFunc,
// or when a node fails in phase 2.
func (f *Queryable) PushAggregate(ctx context.Context, req AggregateRequest) ([][]byte, tsdb.Queryable, error) {
	nodes := f.activeNodes()
	if f.opts.Aggregate == nil || len(nodes) < 2 || len(nodes) > maxPushNodes {
		return nil, nil, ErrNotPushed
	}
	sel := SelectRequest{Mode: SelectDigests, Matchers: req.Matchers, Mint: req.Mint, Maxt: req.Maxt, Limit: f.opts.MaxSeries}
	own, err := f.ownDigests(ctx, nodes, sel)
	if err != nil {
		return nil, nil, err
	}
	digests, err := f.fanoutTo(ctx, nodes, sel, own)
	if err != nil {
		return nil, nil, err
	}
	given, raw := designate(digests)
	if len(raw) > maxRawKeys {
		f.pushdowns.WithLabelValues("declined").Inc()
		return nil, nil, fmt.Errorf("%w: %d series differ between replicas", ErrNotPushed, len(raw))
	}
	partials, err := f.pushPartials(ctx, nodes, req, given)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		f.pushdowns.WithLabelValues("declined").Inc()
		return nil, nil, fmt.Errorf("%w: %w", ErrNotPushed, err)
	}
	f.pushdowns.WithLabelValues("pushed").Inc()
	f.rawSeries.Add(float64(len(raw)))
	if len(raw) == 0 {
		return partials, nil, nil
	}
	return partials, &keyedQueryable{f: f, keys: newKeySet(raw)}, nil
}

// ownDigests reads this node's digests first, when it is one of nodes
// and a minimum is set, and declines (ErrNotPushed) when the series the
// aggregation reads, estimated from this node's share of them, are
// fewer than the minimum: small aggregations cost less in the fan-out's
// one round than in pushdown's two, and this node's share is read at
// no cost to the peers.
func (f *Queryable) ownDigests(ctx context.Context, nodes []*Node, sel SelectRequest) (*SelectResult, error) {
	if f.opts.PushdownMinSeries == 0 || !slices.ContainsFunc(nodes, func(n *Node) bool { return n.Name == f.opts.Self }) {
		return nil, nil
	}
	own, err := f.local(ctx, sel, &atomic.Int64{})
	if err != nil {
		return nil, err
	}
	// This node holds about min(rf, n)/n of the series.
	held := min(f.opts.ReplicationFactor, len(nodes))
	if estimate := len(own.Digests) * len(nodes) / held; estimate < f.opts.PushdownMinSeries {
		f.pushdowns.WithLabelValues("small").Inc()
		return nil, fmt.Errorf("%w: about %d series, fewer than %d", ErrNotPushed, estimate, f.opts.PushdownMinSeries)
	}
	return own, nil
}

// activeNodes is the ACTIVE nodes of the current snapshot (this node
// alone when none is).
func (f *Queryable) activeNodes() []*Node {
	var nodes []*Node
	for _, n := range f.opts.View().Nodes() {
		if n.State == StateActive {
			nodes = append(nodes, &n)
		}
	}
	if len(nodes) == 0 {
		nodes = []*Node{{Name: f.opts.Self}}
	}
	return nodes
}

// designate gives each series whose copies agree to one node holding it
// (given[i]: the keys of results[i]'s node), spread by key, and returns
// the keys of the series whose copies differ. A node with two series of
// one key (a collision of 64-bit hashes) makes the key differ too: read
// raw, its series are told apart by their labels.
func designate(results []*SelectResult) (given [][]uint64, raw []uint64) {
	type holders struct {
		digest uint64
		mask   uint64
		differ bool
	}
	total := 0
	for _, r := range results {
		if r != nil {
			total = max(total, len(r.Digests))
		}
	}
	byKey := make(map[uint64]*holders, total)
	arena := make([]holders, 0, total)
	for i, r := range results {
		if r == nil {
			continue
		}
		for _, d := range r.Digests {
			h := byKey[d.Key]
			if h == nil {
				if len(arena) == cap(arena) {
					arena = make([]holders, 0, 4096)
				}
				arena = append(arena, holders{digest: d.Digest})
				h = &arena[len(arena)-1]
				byKey[d.Key] = h
			}
			if h.digest != d.Digest || h.mask&(1<<i) != 0 {
				h.differ = true
			}
			h.mask |= 1 << i
		}
	}
	given = make([][]uint64, len(results))
	for key, h := range byKey {
		if h.differ {
			raw = append(raw, key)
			continue
		}
		// The (key mod holders)-th holder: series spread evenly over the
		// nodes that hold them, the same way on every ask.
		nth := int(key % uint64(bits.OnesCount64(h.mask)))
		m := h.mask
		for range nth {
			m &= m - 1
		}
		i := bits.TrailingZeros64(m)
		given[i] = append(given[i], key)
	}
	return given, raw
}

// pushPartials asks every node given series to evaluate req over them
// (this node through the AggregateFunc) and returns their partials. Any
// failure fails it: the series given to a failed node are not read.
func (f *Queryable) pushPartials(ctx context.Context, nodes []*Node, req AggregateRequest, given [][]uint64) ([][]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	partials := make([][]byte, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if len(given[i]) == 0 {
			continue
		}
		wg.Go(func() {
			if n.Name == f.opts.Self {
				partials[i], errs[i] = f.opts.Aggregate(ctx, req, given[i])
			} else {
				pctx, pcancel := context.WithTimeout(ctx, f.opts.Timeout)
				var wire int64
				partials[i], wire, errs[i] = f.opts.Peers.Aggregate(pctx, n, req, given[i], f.opts.MaxBytesPerNode)
				pcancel()
				f.wireBytes.Add(wire)
			}
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	var out [][]byte
	for i, p := range partials {
		if errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
			return nil, fmt.Errorf("node %s: %w", nodes[i].Name, errs[i])
		}
		if p != nil {
			out = append(out, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// keyedQueryable reads through the fan-out only the series with keys.
type keyedQueryable struct {
	f    *Queryable
	keys keySet
}

func (k *keyedQueryable) Querier(mint, maxt int64) (tsdb.Querier, error) {
	return &fanoutQuerier{f: k.f, mint: mint, maxt: maxt, keys: k.keys}, nil
}
