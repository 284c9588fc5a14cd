package ingest

import (
	"fmt"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Write requests are admitted before their body is read, against a budget
// shared by all of them: a number of requests in flight
// (Limits.MaxInflightWriteRequests) and the bytes they hold
// (Limits.MaxInflightWriteBytes): compressed body, decompressed body and
// the structs it decodes into, each charged before it is allocated. Past
// either, or when the live heap passes the memory watermark, a request is
// refused at once with an *OverloadError (429 with Retry-After): a queue
// here would only move the memory from the decoder to the connections
// waiting in it. Admitted requests then take turns to decode and append
// (write_gate.go).

// OverloadError refuses a request because the node is at capacity. It
// wraps ErrOverloaded; RetryAfter is when the sender should try again.
type OverloadError struct {
	Reason     string // requests, bytes or memory
	RetryAfter time.Duration
	msg        string
}

func (e *OverloadError) Error() string { return e.msg }
func (e *OverloadError) Unwrap() error { return ErrOverloaded }

// How long a refused sender is asked to wait. In-flight slots free up
// within a request's time; memory pressure needs a GC cycle or a
// checkpoint, so it asks for longer.
const (
	inflightRetryAfter = 1 * time.Second
	memoryRetryAfter   = 5 * time.Second
)

// DefaultMemoryWatermark is the share of the memory limit the live heap
// may reach before writes are refused with 429.
const DefaultMemoryWatermark = 0.85

// inflight counts what the admitted requests hold. Its bounds are in the
// reloadable Limits.
type inflight struct {
	requests atomic.Int64
	bytes    atomic.Int64
}

// Admission is one write request's claim on the in-flight budget: a
// request slot and the bytes charged to it. The zero Admission holds
// nothing. Release returns the claim; an Admission is used by one
// goroutine.
type Admission struct {
	in       *Ingester
	lim      *Limits // the limits the request runs under
	bytes    int64   // charged to in.inflight.bytes
	reserved int64   // of bytes, reserved for the body before it was read
	// deadline ends the request's wait at the write gate: admission plus
	// Limits.WriteRequestTimeout, the body's own deadline in the API.
	deadline time.Time
	inGate   bool // holds a slot of the write gate (write_gate.go)
}

// Admit claims a request slot and bodyBytes of the byte budget for a
// write whose body has not been read yet. bodyBytes is its Content-Length,
// or negative when unknown, in which case the largest body allowed is
// reserved until Write knows the real size. It returns an error wrapping
// ErrOverloaded when the node is at capacity, and ErrBodyTooLarge when
// the body exceeds its limit; the caller must Release a nil-error
// Admission.
func (in *Ingester) Admit(bodyBytes int64) (Admission, error) {
	lim := in.limits.Load()
	if bodyBytes > int64(lim.MaxCompressedBodyBytes) {
		err := fmt.Errorf("%w: %d bytes compressed, limit %d", ErrBodyTooLarge, bodyBytes, lim.MaxCompressedBodyBytes)
		in.metrics.requestsRejected.WithLabelValues(requestRejectReason(err)).Inc()
		return Admission{}, err
	}
	if bodyBytes < 0 {
		bodyBytes = int64(lim.MaxCompressedBodyBytes)
	}
	// The wall clock, not in.now: it paces heap readings, while in.now
	// judges sample times (and is fixed in tests).
	if err := in.mem.check(time.Now()); err != nil {
		in.metrics.requestsRejected.WithLabelValues(requestRejectReason(err)).Inc()
		return Admission{}, err
	}
	if n := in.inflight.requests.Add(1); n > int64(lim.MaxInflightWriteRequests) {
		in.inflight.requests.Add(-1)
		err := &OverloadError{Reason: "requests", RetryAfter: inflightRetryAfter, msg: fmt.Sprintf(
			"%v: %d write requests in flight, the limit (limits.max_inflight_write_requests)", ErrOverloaded, lim.MaxInflightWriteRequests)}
		in.metrics.requestsRejected.WithLabelValues(requestRejectReason(err)).Inc()
		return Admission{}, err
	}
	a := Admission{in: in, lim: lim, deadline: time.Now().Add(lim.WriteRequestTimeout)}
	if err := a.reserve(bodyBytes); err != nil {
		a.Release()
		in.metrics.requestsRejected.WithLabelValues(requestRejectReason(err)).Inc()
		return Admission{}, err
	}
	a.reserved = bodyBytes
	return a, nil
}

// Limits returns the limits the admitted request runs under. Limits and
// Write must be called before Release.
func (a *Admission) Limits() Limits { return *a.lim }

// reserve charges n more bytes to the request. A request that needs more
// than the whole budget can never pass: it is refused as too large (413),
// not overloaded (429), so that the sender does not retry it forever.
func (a *Admission) reserve(n int64) error {
	limit := int64(a.lim.MaxInflightWriteBytes)
	if a.bytes+n > limit {
		return fmt.Errorf("%w: the request needs more than the %d bytes all writes in flight may hold (limits.max_inflight_write_bytes)",
			ErrRequestTooLarge, limit)
	}
	f := &a.in.inflight
	for {
		cur := f.bytes.Load()
		if cur+n > limit {
			return &OverloadError{Reason: "bytes", RetryAfter: inflightRetryAfter, msg: fmt.Sprintf(
				"%v: write requests in flight hold %d bytes; %d more would pass the limit of %d (limits.max_inflight_write_bytes)",
				ErrOverloaded, cur, n, limit)}
		}
		if f.bytes.CompareAndSwap(cur, cur+n) {
			a.bytes += n
			return nil
		}
	}
}

// settleBody replaces the reservation made for the body before it was read
// with its real size.
func (a *Admission) settleBody(n int64) error {
	if d := n - a.reserved; d > 0 {
		if err := a.reserve(d); err != nil {
			return err
		}
	} else if d < 0 {
		a.in.inflight.bytes.Add(d)
		a.bytes += d
	}
	a.reserved = n
	return nil
}

// Release returns the request's slot and bytes. It is idempotent.
func (a *Admission) Release() {
	if a.in == nil {
		return
	}
	a.leaveGate()
	a.in.inflight.bytes.Add(-a.bytes)
	a.in.inflight.requests.Add(-1)
	*a = Admission{}
}

// memWatch refuses writes while the live heap is past a share of the
// memory limit. The heap is read at most every memCheckInterval, by one
// request; the others use the last reading.
type memWatch struct {
	threshold uint64 // live heap bytes; 0: no watch. Immutable.
	mu        sync.Mutex
	next      atomic.Int64 // unix nanoseconds of the next reading
	over      atomic.Bool
	live      atomic.Uint64      // at the last reading
	sample    []rtmetrics.Sample // guarded by mu
}

const memCheckInterval = 100 * time.Millisecond

func newMemWatch(limit int64, watermark float64) *memWatch {
	m := &memWatch{sample: []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	if limit > 0 {
		m.threshold = max(1, uint64(float64(limit)*watermark))
	}
	return m
}

func (m *memWatch) check(now time.Time) error {
	if m.threshold == 0 {
		return nil
	}
	if t := now.UnixNano(); t >= m.next.Load() && m.mu.TryLock() {
		rtmetrics.Read(m.sample)
		var live uint64
		if m.sample[0].Value.Kind() == rtmetrics.KindUint64 {
			live = m.sample[0].Value.Uint64()
		}
		m.live.Store(live)
		m.over.Store(live >= m.threshold)
		m.next.Store(t + int64(memCheckInterval))
		m.mu.Unlock()
	}
	if !m.over.Load() {
		return nil
	}
	return &OverloadError{Reason: "memory", RetryAfter: memoryRetryAfter, msg: fmt.Sprintf(
		"%v: live heap %d bytes is past the watermark of %d bytes", ErrOverloaded, m.live.Load(), m.threshold)}
}
