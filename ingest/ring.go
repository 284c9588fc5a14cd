package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/relabel"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// In a ring (RingOptions set), a write request is validated, deduplicated
// (HA pairs) and relabeled once, on the node that receives it. Each
// series is then hashed to its replication_factor owners on the current
// ring snapshot: this node appends the series it owns, and every other
// owner gets its share in one snappy remote-write body, sent to its
// internal push endpoint concurrently. The request succeeds when every
// series reached a quorum of its owners (ring.Replication); it does not
// wait for the slowest owner past that, and a failed owner costs the
// request only when its series can no longer reach their quorum.
//
// What an owner stored stays stored when the request fails: the sender
// retries, and a retried sample with the same timestamp and value is a
// no-op.

// RingOptions put an Ingester in a ring.
type RingOptions struct {
	// Self is this node's name in the ring.
	Self string
	// ReplicationFactor is how many owners each series has (≥ 1).
	ReplicationFactor int
	// View returns the current ring snapshot; it must not return nil.
	View func() *ring.Snapshot
	// Forwarder sends a share of a request to one owner (ring.Peers).
	Forwarder Forwarder
	// HA deduplicates HA scraper pairs; nil turns it off.
	HA HADedup
	// HAClusterLabel and HAReplicaLabel name the labels HA dedup reads;
	// the replica label is removed from every series HA dedup accepts.
	HAClusterLabel, HAReplicaLabel string
}

// Forwarder sends a snappy remote-write body of already relabeled series
// to one owner (ring.Peers.Forward).
type Forwarder interface {
	Forward(ctx context.Context, to *ring.Node, body []byte, samples int) error
}

// HADedup decides which replica of an HA scraper pair is stored
// (ring.HATracker.Accept).
type HADedup interface {
	Accept(ctx context.Context, cluster, replica string, ts int64) (bool, error)
}

// haTimeout bounds the etcd round trip of an HA election on the write path.
const haTimeout = 2 * time.Second

func (o *RingOptions) validate() error {
	switch {
	case o.Self == "":
		return errors.New("ring: empty node name")
	case o.ReplicationFactor < 1:
		return fmt.Errorf("ring.replication_factor: %d, want at least 1", o.ReplicationFactor)
	case o.View == nil || o.Forwarder == nil:
		return errors.New("ring: View and Forwarder are required")
	case o.HA != nil && (o.HAClusterLabel == "" || o.HAReplicaLabel == ""):
		return errors.New("ring.ha_dedup: cluster and replica labels are required")
	}
	return nil
}

// cachedPlacement is a series cache entry of a node in a ring: the
// relabeling outcome, the stored label set and its hash on the ring. The
// owners are looked up on every request, since the ring may have changed.
type cachedPlacement struct {
	check   uint64
	ref     tsdb.SeriesRef // this node's stored series, 0 until it appends one
	outcome relabel.Outcome
	final   labels.Labels // empty: dropped by relabeling
	hash    uint32        // ring.HashSeries(final)
}

func (c cachedPlacement) checkHash() uint64 { return c.check }

// ringScratch is the per-request memory of the ring path, in writeScratch.
type ringScratch struct {
	owners  []*ring.Node
	counts  []uint8 // owners of each placed series, by placement index
	local   []int32 // placement indexes this node appended
	batches map[*ring.Node]*peerBatch
	samples []Sample // a series' samples within the future-drift bound
}

func (rs *ringScratch) reset() {
	rs.counts, rs.local = rs.counts[:0], rs.local[:0]
	clear(rs.batches)
}

// peerBatch is one owner's share of a request. Once dispatched it belongs
// to the goroutine that forwards it, which returns it to batchPool.
type peerBatch struct {
	node    *ring.Node
	pb      []byte  // WriteRequest protobuf
	idx     []int32 // placement indexes of the series in pb
	samples int
}

var batchPool = sync.Pool{New: func() any { return new(peerBatch) }}

// snappyPool holds compressed bodies; a body is dropped rather than
// pooled past maxPooledRawBytes.
var snappyPool sync.Pool // *[]byte

func (rs *ringScratch) batch(n *ring.Node) *peerBatch {
	if rs.batches == nil {
		rs.batches = map[*ring.Node]*peerBatch{}
	}
	b := rs.batches[n]
	if b == nil {
		b = batchPool.Get().(*peerBatch)
		b.node, b.pb, b.idx, b.samples = n, b.pb[:0], b.idx[:0], 0
		rs.batches[n] = b
	}
	return b
}

// appendAllRing is appendAll for a node of a ring.
func (in *Ingester) appendAllRing(series []TimeSeries, lim *Limits, sc *writeScratch, res Result) (Result, error) {
	r := in.ring
	snap := r.View()
	rs := &sc.ring
	rs.reset()
	// The owners' shares re-encode the request up to once per owner:
	// charged before they are built, like the decoded request. Series
	// pushed from inside the process (no admission) are few and small.
	if sc.adm != nil {
		if err := sc.adm.reserve(int64(r.ReplicationFactor) * int64(sc.rawLen)); err != nil {
			in.metrics.requestsRejected.WithLabelValues(requestRejectReason(err)).Inc()
			return Result{}, err
		}
	}
	app := in.store.Appender()
	maxT := in.now().Add(lim.MaxFutureDrift).UnixMilli()
	for i := range series {
		in.placeSeries(app, &series[i], lim, maxT, sc, snap, &res)
	}
	commitErr := app.Commit()
	repl := ring.NewReplication(len(rs.counts), ring.Quorum(r.ReplicationFactor))
	for i, n := range rs.counts {
		repl.Expect(i, int(n))
	}
	if commitErr != nil {
		commitErr = fmt.Errorf("commit: %w", commitErr)
	}
	repl.Done(rs.local, r.Self, commitErr)
	ctx, cancel := context.WithTimeout(context.Background(), lim.WriteRequestTimeout)
	defer cancel()
	for _, b := range rs.batches {
		go in.forward(b, repl)
	}
	clear(rs.batches) // the batches belong to their goroutines now
	if sc.adm != nil {
		sc.adm.leaveGate() // peers' pushes may wait for their own gates
	}
	err := repl.Wait(ctx)
	res.Accepted = res.Samples - res.RefusedSamples - res.DroppedSamples - res.DedupedSamples
	in.metrics.samplesAccepted.Add(float64(res.Accepted))
	if res.DroppedSamples > 0 {
		in.metrics.samplesDropped.Add(float64(res.DroppedSamples))
	}
	if err != nil {
		in.metrics.quorumFailures.Inc()
		return res, err
	}
	if pr := repl.Refusal(); pr != nil && res.FirstRefusal == nil {
		res.FirstRefusal = fmt.Errorf("%w: %v", ErrRejectedSamples, pr)
	}
	if err := res.Err(); err != nil {
		in.logRefusal(err)
	}
	return res, nil
}

// forward compresses and sends one owner's share and records the answer.
// It runs on its own goroutine, which may outlive the request (Wait
// returns at quorum): past compression it holds only the compressed body,
// which the forwarder's per-peer bounds and timeout limit.
func (in *Ingester) forward(b *peerBatch, repl *ring.Replication) {
	bufp, _ := snappyPool.Get().(*[]byte)
	if bufp == nil {
		bufp = new([]byte)
	}
	body := snappy.Encode((*bufp)[:cap(*bufp)], b.pb)
	if cap(b.pb) > maxPooledRawBytes {
		b.pb = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.limits.Load().WriteRequestTimeout)
	err := in.ring.Forwarder.Forward(ctx, b.node, body, b.samples)
	cancel()
	repl.Done(b.idx, b.node.Name, err)
	if cap(body) <= maxPooledRawBytes {
		*bufp = body[:0]
		snappyPool.Put(bufp)
	}
	b.node = nil
	batchPool.Put(b)
}

// placeSeries validates, deduplicates and relabels one series, then
// appends it here if this node owns it and adds it to the share of every
// other owner.
func (in *Ingester) placeSeries(app tsdb.Appender, ts *TimeSeries, lim *Limits, maxT int64, sc *writeScratch, snap *ring.Snapshot, res *Result) {
	if in.refuseUnsupported(ts, sc, res) || len(ts.Samples) == 0 || (!sc.push && !in.haAccept(ts, res)) {
		return
	}
	p, ok := in.placement(ts, lim, sc, res)
	if !ok {
		return
	}
	samples := in.inDriftBound(ts, p.final, lim, maxT, sc, res)
	if len(samples) == 0 {
		return
	}
	rs := &sc.ring
	k := int32(len(rs.counts))
	rs.owners = snap.Owners(p.hash, in.ring.ReplicationFactor, rs.owners[:0])
	rs.counts = append(rs.counts, uint8(len(rs.owners)))
	for _, o := range rs.owners {
		if o.Name != in.ring.Self {
			b := rs.batch(o)
			b.pb = appendTimeSeries(b.pb, p.final, samples)
			b.idx = append(b.idx, k)
			b.samples += len(samples)
			continue
		}
		rs.local = append(rs.local, k)
		if ref := in.appendLocal(app, p, samples, res); ref != 0 && ref != p.ref && p.check != 0 && in.placements != nil {
			p.ref = ref
			in.placements.put(p.sentHash, p.cachedPlacement)
		}
	}
}

// placed is a series' placement and the key of its cache entry.
type placed struct {
	cachedPlacement
	sentHash uint64 // 0 with check 0: not cached
}

// placement returns the stored label set of a series and its hash on the
// ring, from the cache or by validating and relabeling it. ok is false
// when the series was refused or dropped (res records which).
func (in *Ingester) placement(ts *TimeSeries, lim *Limits, sc *writeScratch, res *Result) (p placed, ok bool) {
	if in.placements != nil {
		p.sentHash, p.check, sc.hashBuf = sentHashes(ts.Labels, sc.hashBuf)
		if c, hit := in.placements.get(p.sentHash, p.check); hit && in.relabel.Current(c.outcome) {
			if c.final.IsEmpty() {
				res.DroppedSamples += len(ts.Samples)
				return p, false
			}
			p.cachedPlacement = c
			return p, true
		}
	}
	if r := buildLabels(ts.Labels, lim, &sc.builder, &sc.lset); r != nil {
		in.refuseSeries(ts, r, res)
		return p, false
	}
	if in.relabel == nil {
		p.final, p.hash, p.check = sc.lset, ring.HashSeries(sc.lset), 0
		return p, true
	}
	out, keep, measured, outcome := in.relabel.RelabelOutcome(sc.lset)
	p.outcome = outcome
	if !keep {
		res.DroppedSamples += len(ts.Samples)
		in.placements.put(p.sentHash, p.cachedPlacement)
		return p, false
	}
	p.final, p.hash = out, ring.HashSeries(out)
	if measured {
		// Measured series need their labels on every request: not cached.
		in.relabel.Measure(out, ts.Samples[len(ts.Samples)-1].Value)
		p.check = 0
		return p, true
	}
	in.placements.put(p.sentHash, p.cachedPlacement)
	return p, true
}

// inDriftBound returns the samples of ts not too far in the future,
// refusing the others once, before they are sent anywhere.
func (in *Ingester) inDriftBound(ts *TimeSeries, lset labels.Labels, lim *Limits, maxT int64, sc *writeScratch, res *Result) []Sample {
	n := 0
	for _, s := range ts.Samples {
		if s.Timestamp <= maxT {
			n++
		}
	}
	if n == len(ts.Samples) {
		return ts.Samples
	}
	out := sc.ring.samples[:0]
	for _, s := range ts.Samples {
		if s.Timestamp <= maxT {
			out = append(out, s)
			continue
		}
		in.refuseSample(res, reasonTooFarInFuture, ErrInvalidSeries, func() string {
			return fmt.Sprintf("series %s: sample at %s is more than %s in the future",
				lset.String(), formatMillis(s.Timestamp), lim.MaxFutureDrift)
		})
	}
	sc.ring.samples = out
	return out
}

// appendLocal appends samples of a series this node owns, by ref when it
// has one, and returns the stored series' ref (0 if none was stored).
func (in *Ingester) appendLocal(app tsdb.Appender, p placed, samples []Sample, res *Result) tsdb.SeriesRef {
	ref := p.ref
	for i, s := range samples {
		var err error
		if ref != 0 {
			var ok bool
			ok, err = app.AppendRef(ref, s.Timestamp, s.Value)
			if !ok { // the stored series is gone (retention): by labels
				ref = 0
			}
		}
		if ref == 0 {
			ref, err = app.AppendSeries(p.final, s.Timestamp, s.Value)
		}
		if err != nil {
			in.refuseSample(res, tsdb.RejectReason(err), ErrRejectedSamples, func() string {
				return fmt.Sprintf("series %s: sample at %s: %v", p.final.String(), formatMillis(samples[i].Timestamp), err)
			})
		}
	}
	return ref
}

// haAccept applies HA dedup to a series carrying both the cluster and the
// replica label: the replica label is removed in place when the series is
// accepted, and its samples are counted as deduplicated when refused.
func (in *Ingester) haAccept(ts *TimeSeries, res *Result) bool {
	r := in.ring
	if r == nil || r.HA == nil {
		return true
	}
	cluster, replica, at := "", "", -1
	for i, l := range ts.Labels {
		switch l.Name {
		case r.HAClusterLabel:
			cluster = l.Value
		case r.HAReplicaLabel:
			replica, at = l.Value, i
		}
	}
	if at < 0 || cluster == "" || replica == "" {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), haTimeout)
	ok, err := r.HA.Accept(ctx, cluster, replica, ts.Samples[len(ts.Samples)-1].Timestamp)
	cancel()
	if err != nil {
		in.refuseSeries(ts, invalid(reasonHADedup, "series %s: HA dedup: %v", metricNameOf(ts.Labels), err), res)
		return false
	}
	if !ok {
		res.DedupedSamples += len(ts.Samples)
		in.metrics.samplesDeduped.Add(float64(len(ts.Samples)))
		return false
	}
	ts.Labels = append(ts.Labels[:at], ts.Labels[at+1:]...)
	return true
}
