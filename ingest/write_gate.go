package ingest

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Decoding and appending a write request is CPU work from end to end. Past
// a couple of requests a core, more of them at once do not write faster:
// they only add runnable goroutines, each holding its decoded request, and
// the store's own work (checkpoints, compactions) gets one scheduling slot
// among all of them. At 10M series on two cores, 64 senders left a
// checkpoint one slot in sixty-five and it fell minutes behind.
//
// The write gate lets Limits.MaxConcurrentWrites admitted requests decode
// and append at once. The others wait their turn in arrival order, holding
// only their compressed body (charged to the in-flight budget), until the
// request's deadline; then they are refused with 429. A request leaves
// the gate before it waits on anything but this node's store: in a ring,
// before it waits for its peers, whose internal pushes need their own
// gates' slots.

// writeGate is a FIFO semaphore whose size is read at each call, so that a
// reload of the limits takes effect at once.
type writeGate struct {
	mu      sync.Mutex
	active  int             // requests inside
	waiting []chan struct{} // closed to let the first one in; FIFO
}

// enter waits until fewer than limit requests are inside and none waits
// ahead, or until deadline. It returns false at the deadline; the caller
// then holds no slot.
func (g *writeGate) enter(limit int, deadline time.Time) bool {
	g.mu.Lock()
	if g.active < limit && len(g.waiting) == 0 {
		g.active++
		g.mu.Unlock()
		return true
	}
	turn := make(chan struct{})
	g.waiting = append(g.waiting, turn)
	g.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-turn:
		return true
	case <-timer.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(g.waiting, turn); i >= 0 {
		g.waiting = slices.Delete(g.waiting, i, i+1)
		return false
	}
	return true // let in as the deadline passed: the slot is ours
}

// leave gives up a slot, letting in as many waiting requests as limit now
// allows (more than one when the limit was raised).
func (g *writeGate) leave(limit int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	for g.active < limit && len(g.waiting) > 0 {
		close(g.waiting[0])
		g.waiting = slices.Delete(g.waiting, 0, 1)
		g.active++
	}
}

// queued returns how many requests wait at the gate.
func (g *writeGate) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting)
}

// enterGate takes the admitted request's turn to decode and append. It
// returns an *OverloadError when the request's deadline passes first.
func (a *Admission) enterGate() error {
	in := a.in
	start := time.Now()
	ok := in.gate.enter(a.lim.MaxConcurrentWrites, a.deadline)
	in.metrics.gateWaitSeconds.Add(time.Since(start).Seconds())
	if !ok {
		return &OverloadError{Reason: "queue", RetryAfter: inflightRetryAfter, msg: fmt.Sprintf(
			"%v: waited past the write request timeout for one of the %d writes ingested at once (limits.max_concurrent_writes)",
			ErrOverloaded, a.lim.MaxConcurrentWrites)}
	}
	a.inGate = true
	return nil
}

// leaveGate gives up the request's turn. It is idempotent.
func (a *Admission) leaveGate() {
	if a.inGate {
		a.inGate = false
		a.in.gate.leave(a.in.limits.Load().MaxConcurrentWrites)
	}
}
