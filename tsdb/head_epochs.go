package tsdb

import (
	"math"
	"sync"
)

// epochs tell when no reader can still hold a series that left the index.
// Appenders and queriers enter an epoch when they start and leave it when
// they end; removing series from the index ends the current epoch. Memory
// the removed series referred to (their symbols) is released once every
// reader that entered at or before the epoch of the removal has left: later
// readers cannot find those series.
//
// A mutex, not per-CPU counters: readers enter once per request, and a
// profile of a 2,000-sample write batch does not show it.
type epochs struct {
	mu   sync.Mutex
	cur  uint64         // guarded by mu
	open map[uint64]int // guarded by mu: readers open per epoch entered
}

func newEpochs() *epochs { return &epochs{open: map[uint64]int{}} }

// enter registers a reader and returns its epoch, for exit.
func (e *epochs) enter() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.open[e.cur]++
	return e.cur
}

// exit unregisters a reader that entered at epoch ep.
func (e *epochs) exit(ep uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch n := e.open[ep]; {
	case n <= 0:
		panic("BUG: reader left an epoch it did not enter")
	case n == 1:
		delete(e.open, ep)
	default:
		e.open[ep] = n - 1
	}
}

// advance ends the current epoch and returns it.
func (e *epochs) advance() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cur++
	return e.cur - 1
}

// oldest returns the oldest epoch a reader is still open in, or
// math.MaxUint64 when none is.
func (e *epochs) oldest() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	oldest := uint64(math.MaxUint64)
	for ep := range e.open {
		oldest = min(oldest, ep)
	}
	return oldest
}

// limbo holds series removed from the index until no reader can hold
// them; their symbols are then released.
type limbo struct {
	mu      sync.Mutex
	pending []limboBatch // guarded by mu; oldest first
}

type limboBatch struct {
	epoch  uint64 // the epoch in which the series were removed
	series []*memSeries
}

// add queues series removed in epoch ep.
func (l *limbo) add(ep uint64, series []*memSeries) {
	l.mu.Lock()
	l.pending = append(l.pending, limboBatch{epoch: ep, series: series})
	l.mu.Unlock()
}

// takeBefore removes and returns the series removed in epochs before
// oldest, the oldest epoch a reader is open in.
func (l *limbo) takeBefore(oldest uint64) []*memSeries {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*memSeries
	n := 0
	for _, b := range l.pending {
		if b.epoch >= oldest {
			break
		}
		out = append(out, b.series...)
		n++
	}
	clear(l.pending[:n])
	l.pending = l.pending[n:]
	return out
}

// len returns the number of series waiting.
func (l *limbo) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, b := range l.pending {
		n += len(b.series)
	}
	return n
}
