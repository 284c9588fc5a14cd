package ingest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/ring"
)

// farDeadline is a deadline no test reaches.
var farDeadline = time.Now().Add(time.Hour)

// waitQueued waits until n requests wait at the gate.
func waitQueued(t *testing.T, g *writeGate, n int) {
	t.Helper()
	for g.queued() != n {
		time.Sleep(time.Millisecond)
	}
}

// TestWriteGateFIFO: waiting requests are let in in arrival order, one per
// slot given up.
func TestWriteGateFIFO(t *testing.T) {
	var g writeGate
	if !g.enter(1, farDeadline) {
		t.Fatal("an empty gate refused")
	}
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			if g.enter(1, farDeadline) {
				order <- i
			}
		}()
		waitQueued(t, &g, i+1)
	}
	for want := range 3 {
		g.leave(1)
		if got := <-order; got != want {
			t.Fatalf("let in request %d, want %d (arrival order)", got, want)
		}
		if q := g.queued(); q != 2-want {
			t.Fatalf("%d waiting after %d let in", q, want+1)
		}
	}
	g.leave(1)
	if g.active != 0 {
		t.Fatalf("%d inside an empty gate", g.active)
	}
}

// TestWriteGateDeadline: a request whose deadline passes leaves the queue
// and holds nothing.
func TestWriteGateDeadline(t *testing.T) {
	var g writeGate
	g.enter(1, farDeadline)
	if g.enter(1, time.Now().Add(10*time.Millisecond)) {
		t.Fatal("let in past a full gate")
	}
	if q := g.queued(); q != 0 {
		t.Fatalf("%d still waiting after the deadline", q)
	}
	g.leave(1)
	if g.active != 0 || !g.enter(1, time.Now()) {
		t.Fatalf("a timed-out request kept a slot: %d inside", g.active)
	}
}

// TestWriteGateLimitChanges: a raised limit lets in as many as it allows
// at the next leave; a lowered one lets in none until enough have left.
func TestWriteGateLimitChanges(t *testing.T) {
	var g writeGate
	var in atomic.Int32
	g.enter(1, farDeadline)
	for i := range 2 {
		go func() {
			if g.enter(1, farDeadline) {
				in.Add(1)
			}
		}()
		waitQueued(t, &g, i+1)
	}
	g.leave(3) // raised: both waiting fit
	waitQueued(t, &g, 0)
	if g.active != 2 {
		t.Fatalf("%d inside after the limit was raised to 3, want 2", g.active)
	}
	go func() {
		if g.enter(3, farDeadline) {
			in.Add(1)
		}
	}()
	for in.Load() != 3 {
		time.Sleep(time.Millisecond)
	}
	go func() {
		if g.enter(1, farDeadline) {
			in.Add(1)
		}
	}()
	waitQueued(t, &g, 1)
	g.leave(1) // lowered to 1: two still inside, nobody let in
	if q := g.queued(); q != 1 || g.active != 2 {
		t.Fatalf("after a leave under a lowered limit: %d waiting, %d inside", q, g.active)
	}
	g.leave(1)
	g.leave(1)
	for in.Load() != 4 {
		time.Sleep(time.Millisecond)
	}
	if g.active != 1 || g.queued() != 0 {
		t.Fatalf("%d inside, %d waiting after the last was let in", g.active, g.queued())
	}
}

// TestWriteGateBoundsConcurrency: under contention no more than the limit
// are ever inside, and everyone gets in.
func TestWriteGateBoundsConcurrency(t *testing.T) {
	const limit, writers = 3, 32
	var g writeGate
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range 50 {
				if !g.enter(limit, farDeadline) {
					t.Error("refused before the deadline")
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(10 * time.Microsecond)
				inside.Add(-1)
				g.leave(limit)
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > limit || m < 1 {
		t.Fatalf("%d inside at once, limit %d", m, limit)
	}
	if g.active != 0 || g.queued() != 0 {
		t.Fatalf("%d inside, %d waiting after every writer left", g.active, g.queued())
	}
}

// TestWriteWaitsForTheGate: an admitted write waits for its turn, and is
// refused as overloaded (queue) when its deadline passes first; the
// refusal releases everything it held.
func TestWriteWaitsForTheGate(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxConcurrentWrites = 1
	lim.WriteRequestTimeout = 50 * time.Millisecond
	in, head, _ := newTestIngester(t, lim)
	body := marshalSnappy(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: testNow.UnixMilli()}},
	}}})
	holder, err := in.Admit(int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.enterGate(); err != nil {
		t.Fatal(err)
	}
	_, err = in.Write(body)
	requireOverload(t, err, "queue")
	if got := testutil.ToFloat64(in.metrics.requestsRejected.WithLabelValues("overloaded_queue")); got != 1 {
		t.Fatalf("overloaded_queue refusals: %v", got)
	}
	if got := testutil.ToFloat64(in.metrics.gateWaitSeconds); got < 0.04 {
		t.Fatalf("wait seconds counted: %v, want the 50ms the write waited", got)
	}
	if head.NumSeries() != 0 {
		t.Fatal("a refused write stored its series")
	}

	// A write waiting when the holder leaves gets in.
	lim.WriteRequestTimeout = time.Hour
	if err := in.SetLimits(lim); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := in.Write(body)
		done <- err
	}()
	waitQueued(t, &in.gate, 1)
	holder.Release() // leaves the gate too
	if err := <-done; err != nil {
		t.Fatalf("a write let in after waiting: %v", err)
	}
	if head.NumSeries() != 1 {
		t.Fatal("the write let in did not store its series")
	}
	requireIdle(t, in)
	if in.gate.active != 0 {
		t.Fatalf("%d inside the gate after every write", in.gate.active)
	}
}

// barrierForwarder forwards once both nodes of a two-node ring have a
// forward under way, so that each node's request waits on the other's.
type barrierForwarder struct {
	testForwarder
	both *sync.WaitGroup
}

func (f barrierForwarder) Forward(ctx context.Context, to *ring.Node, body []byte, samples int) error {
	f.both.Done()
	f.both.Wait()
	return f.testForwarder.Forward(ctx, to, body, samples)
}

// TestRingWriteLeavesGateBeforePeers: two nodes, each letting one write in
// at a time, each receiving a write whose series the other also owns. A
// request that held its gate while it waited for its peer would keep the
// peer's internal push out until both timed out and failed their quorum.
func TestRingWriteLeavesGateBeforePeers(t *testing.T) {
	r := newTestRing(t, 2, 2, nil, nil)
	var both sync.WaitGroup
	both.Add(2)
	for _, n := range r.nodes {
		lim := n.in.Limits()
		lim.MaxConcurrentWrites = 1
		lim.WriteRequestTimeout = 2 * time.Second
		if err := n.in.SetLimits(lim); err != nil {
			t.Fatal(err)
		}
		n.in.ring.Forwarder = barrierForwarder{testForwarder{r}, &both}
	}
	body := marshalSnappy(etcdWriteRequests(1, 1, 50, testNow.Add(-time.Minute).UnixMilli())[0])
	errs := make(chan error, 2)
	for _, name := range []string{"n0", "n1"} {
		go func() {
			res, err := r.nodes[name].in.Write(body)
			errs <- errors.Join(err, res.Err())
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a write whose peer waits on it failed: %v", err)
		}
	}
	for k, h := range r.holders(t) {
		if len(h.nodes) != 2 {
			t.Fatalf("series %s on %v, want both nodes", k, h.nodes)
		}
	}
}
