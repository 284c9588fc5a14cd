package ring

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Quorum is the write quorum of replication factor rf: a majority,
// rf/2+1 (1 for rf < 1).
func Quorum(rf int) int {
	if rf < 1 {
		return 1
	}
	return rf/2 + 1
}

// maxOwnerErrors bounds the failed owners a quorum error names.
const maxOwnerErrors = 4

// Replication tracks one write request: each series must be reached by
// the quorum of its owners. The caller calls Expect for every series it
// places, before the first Done, then Done once per owner's answer for
// the series that owner was sent, and Wait for the outcome.
//
// It is safe for concurrent use. Done costs one lock acquisition and
// O(len(series)) with no allocation; Wait wakes once.
type Replication struct {
	quorum int32 // immutable

	mu sync.Mutex
	// series holds, per series index, what it still needs; guarded by mu.
	series []seriesQuorum
	// pending is the number of expected series not yet at quorum; guarded by mu.
	pending int
	// expected counts the Expect calls (for the error text); guarded by mu.
	expected int
	// settled is set once the outcome is known (every series at quorum,
	// or one lost); guarded by mu. Done returns at once after it.
	settled bool
	// failure is the series that lost its quorum first, and why
	// (-1: none); guarded by mu.
	failedSeries int
	tooFew       int // owners of failedSeries when it had too few, else -1
	// ownerErrs are the first failed owners with their errors; overflow
	// counts the others; overloaded is set when any failed owner was
	// overloaded. All guarded by mu.
	ownerErrs  []ownerError
	overflow   int
	overloaded bool
	refusal    *PeerRefusal // guarded by mu: the first refusal recorded
	done       chan struct{}
}

// seriesQuorum is one series' count: need is the successes it still
// needs (0: not expected, or at quorum already), slack the failures it
// can still take.
type seriesQuorum struct {
	need, slack int32
}

type ownerError struct {
	owner string
	err   error
}

// NewReplication tracks a request of series series, each needing quorum
// successful owners.
func NewReplication(series, quorum int) *Replication {
	return &Replication{
		quorum:       int32(max(quorum, 1)),
		series:       make([]seriesQuorum, series),
		failedSeries: -1,
		tooFew:       -1,
		done:         make(chan struct{}),
	}
}

// Expect declares that series i (0 <= i < series) has owners owners. With
// fewer owners than the quorum (too few ACTIVE nodes) the series, and so
// the request, fails at once. A series declared twice keeps the last
// count.
func (r *Replication) Expect(i, owners int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.settled {
		return
	}
	s := &r.series[i]
	if s.need == 0 {
		r.pending++
		r.expected++
	}
	s.need, s.slack = r.quorum, int32(owners)-r.quorum
	if s.slack < 0 {
		r.failedSeries, r.tooFew = i, owners
		r.settleLocked()
	}
}

// Done records one owner's answer for the listed series: err == nil or a
// *PeerRefusal (the owner processed them) counts as reached, any other
// error as failed. Series not expected, or at quorum already, are
// skipped. It may be called after Wait returned: late answers are
// ignored.
func (r *Replication) Done(series []int32, owner string, err error) {
	ref, refused := errors.AsType[*PeerRefusal](err)
	reached := err == nil || refused
	r.mu.Lock()
	defer r.mu.Unlock()
	if ref != nil && r.refusal == nil {
		r.refusal = ref
	}
	if r.settled {
		return
	}
	if !reached {
		r.recordLocked(owner, err)
	}
	for _, i := range series {
		s := &r.series[i]
		if s.need == 0 {
			continue
		}
		if reached {
			s.need--
			if s.need == 0 {
				r.pending--
			}
			continue
		}
		if s.slack == 0 {
			r.failedSeries = int(i)
			r.settleLocked()
			return
		}
		s.slack--
	}
	if r.pending == 0 {
		r.settleLocked()
	}
}

// recordLocked keeps owner's error among the first few; r.mu is held.
func (r *Replication) recordLocked(owner string, err error) {
	if errors.Is(err, ErrPeerOverloaded) {
		r.overloaded = true
	}
	for _, oe := range r.ownerErrs {
		if oe.owner == owner {
			return
		}
	}
	if len(r.ownerErrs) == maxOwnerErrors {
		r.overflow++
		return
	}
	r.ownerErrs = append(r.ownerErrs, ownerError{owner, err})
}

// settleLocked fixes the outcome and wakes Wait; r.mu is held.
func (r *Replication) settleLocked() {
	if !r.settled {
		r.settled = true
		close(r.done)
	}
}

// Wait returns nil once every expected series is reached by its quorum;
// it does not wait for the slowest owners once the quorum is there. It
// returns an error as soon as some series can no longer reach it (more
// failed owners than owners - quorum, or too few owners), or when ctx
// ends first. The error wraps ErrQuorumFailed, names the failed owners
// with their errors (the first few), and wraps ErrPeerOverloaded when a
// failed owner was overloaded (the caller answers 503 and Retry-After),
// ErrTooFewOwners when a series had too few owners, and ctx's error when
// ctx ended.
func (r *Replication) Wait(ctx context.Context) error {
	r.mu.Lock()
	if r.pending == 0 {
		r.settleLocked() // nothing expected, or all reached
	}
	r.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.settled && r.failedSeries < 0 {
		return nil
	}
	e := &quorumError{errs: []error{ErrQuorumFailed}}
	var b strings.Builder
	b.WriteString(ErrQuorumFailed.Error())
	switch {
	case r.tooFew >= 0:
		fmt.Fprintf(&b, ": series %d has %d owners, fewer than the quorum of %d (too few ACTIVE nodes)",
			r.failedSeries, r.tooFew, r.quorum)
		e.errs = append(e.errs, ErrTooFewOwners)
	case r.failedSeries >= 0:
		fmt.Fprintf(&b, ": series %d lost its quorum of %d", r.failedSeries, r.quorum)
	default:
		fmt.Fprintf(&b, ": %d of %d series without quorum when the wait ended: %v", r.pending, r.expected, ctx.Err())
		e.errs = append(e.errs, ctx.Err())
	}
	for i, oe := range r.ownerErrs {
		if i == 0 {
			b.WriteString("; failed owners: ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %v", oe.owner, oe.err)
		e.errs = append(e.errs, oe.err)
	}
	if r.overflow > 0 {
		fmt.Fprintf(&b, " and %d more", r.overflow)
	}
	if r.overloaded {
		e.errs = append(e.errs, ErrPeerOverloaded)
	}
	e.msg = b.String()
	return e
}

// quorumError is Wait's error: its text, and the errors it wraps.
type quorumError struct {
	msg  string
	errs []error
}

func (e *quorumError) Error() string   { return e.msg }
func (e *quorumError) Unwrap() []error { return e.errs }

// Refusal returns the first *PeerRefusal recorded by Done, nil if none,
// so that the caller can answer 400 as for a local refusal.
func (r *Replication) Refusal() *PeerRefusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refusal
}
