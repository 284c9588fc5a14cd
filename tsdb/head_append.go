package tsdb

import (
	"errors"
	"math"
	"runtime"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// Appender returns an appender for one batch of samples.
func (h *Head) Appender() Appender {
	a := h.appenders.get()
	a.head = h
	a.epoch = h.readers.enter()
	return a
}

// headAppender buffers samples until Commit, so that a later WAL write can
// sit between checking samples and making them visible.
type headAppender struct {
	head    *Head
	epoch   uint64 // entered in head.readers until Commit or Rollback
	samples []pendingSample
	// newest maps each series touched by this batch to its newest accepted
	// sample, so that a batch holding several samples of a series is
	// checked as if the earlier ones were already applied.
	newest map[*memSeries]sample
	// touched lists newest's series in the order the batch first took
	// them, each once: Commit walks it rather than the map, whose
	// iteration costs its capacity and visits series in random order.
	touched []*memSeries
	// looked is the series Lookup found last: AppendRef of its ref, which
	// is what follows a Lookup, takes it without a second random read of
	// the ref table. It may have been removed since; check tells.
	looked *memSeries
	// What Prefetch read, kept so that its loads are not optimised away.
	prefetched uint64
}

// errSeriesRemoved: the series was removed from the index between lookup
// and check; the caller looks it up again.
var errSeriesRemoved = errors.New("series removed by retention")

type pendingSample struct {
	series *memSeries
	t      int64
	v      float64
}

type appenderPool struct{ pool sync.Pool }

func (p *appenderPool) get() *headAppender {
	if a, ok := p.pool.Get().(*headAppender); ok {
		return a
	}
	return &headAppender{newest: map[*memSeries]sample{}}
}

// pooledAppenderSeries bounds what a pooled appender keeps of its largest
// batch. A Go map keeps its capacity when cleared, and iterating or
// clearing it costs its capacity, not its length: one batch of a million
// series (a restart's backlog, a large request) would otherwise make
// every later commit of the appender walk a million slots.
const pooledAppenderSeries = 8192

// put clears every reference so pooled appenders keep no series alive.
func (p *appenderPool) put(a *headAppender) {
	if len(a.newest) > pooledAppenderSeries {
		a.newest = map[*memSeries]sample{}
	} else {
		clear(a.newest)
	}
	if cap(a.samples) > pooledAppenderSeries {
		a.samples = nil
	} else {
		clear(a.samples)
		a.samples = a.samples[:0]
	}
	a.looked = nil
	if cap(a.touched) > pooledAppenderSeries {
		a.touched = nil
	} else {
		clear(a.touched)
		a.touched = a.touched[:0]
	}
	a.head.readers.exit(a.epoch)
	a.head = nil
	p.pool.Put(a)
}

func (a *headAppender) Append(lset labels.Labels, t int64, v float64) error {
	_, err := a.AppendSeries(lset, t, v)
	return err
}

func (a *headAppender) AppendSeries(lset labels.Labels, t int64, v float64) (SeriesRef, error) {
	s, _, err := a.head.getOrCreate(lset)
	if err != nil {
		a.head.metrics.rejected(err).Inc()
		return 0, err
	}
	outcome, err := a.check(s, t, v)
	for errors.Is(err, errSeriesRemoved) {
		// Retention removed the series after the lookup, or is taking it
		// out of the maps right now: look up until it starts anew.
		runtime.Gosched()
		if s, _, err = a.head.getOrCreate(lset); err != nil {
			a.head.metrics.rejected(err).Inc()
			return 0, err
		}
		outcome, err = a.check(s, t, v)
	}
	return s.ref, a.buffer(s, outcome, err, t, v)
}

func (a *headAppender) AppendRef(ref SeriesRef, t int64, v float64) (bool, error) {
	s := a.looked
	if s == nil || s.ref != ref {
		s = a.head.series.getByRef(ref)
	}
	if s == nil {
		return false, nil
	}
	outcome, err := a.check(s, t, v)
	if errors.Is(err, errSeriesRemoved) {
		return false, nil
	}
	return true, a.buffer(s, outcome, err, t, v)
}

func (a *headAppender) Lookup(hash uint64, ls []labels.Label) SeriesRef {
	if s := a.head.series.getByPairs(hash, ls, a.head.symbols); s != nil {
		a.looked = s
		return s.ref
	}
	return 0
}

func (a *headAppender) Prefetch(hashes []uint64) {
	a.prefetched += a.head.series.prefetch(hashes)
}

// buffer keeps a checked sample for Commit, or counts why it was refused.
func (a *headAppender) buffer(s *memSeries, outcome appendOutcome, err error, t int64, v float64) error {
	if err != nil {
		a.head.metrics.rejected(err).Inc()
		return err
	}
	if outcome == ignoredDuplicate {
		a.head.metrics.duplicatesIgnored.Inc()
		return nil
	}
	if n, ok := a.newest[s]; !ok || t > n.t {
		a.newest[s] = sample{t: t, v: v}
	}
	a.samples = append(a.samples, pendingSample{series: s, t: t, v: v})
	return nil
}

// check decides a sample's fate against the series' committed state and
// the samples this batch already holds for it.
func (a *headAppender) check(s *memSeries, t int64, v float64) (appendOutcome, error) {
	window := a.head.opts.OutOfOrderWindow.Milliseconds()
	n, seen := a.newest[s]
	if seen && n.t >= t {
		if outcome, decided, err := checkAgainstNewest(n.t, math.Float64bits(n.v), t, v, window); decided {
			return outcome, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted {
		return 0, errSeriesRemoved
	}
	if !s.active {
		if err := a.head.checkLimits(); err != nil {
			return 0, err
		}
		a.head.activateLocked(s)
	}
	outcome, err := s.checkLocked(t, v, window)
	if err == nil && outcome != ignoredDuplicate && !seen {
		// buffer adds s to newest: unpinned on Commit or Rollback.
		s.pinLocked()
		a.touched = append(a.touched, s)
	}
	return outcome, err
}

// pinLocked keeps retention from removing s until the appender commits
// or rolls back. pins counts such appenders in memSeries' padding byte;
// at 255 it saturates and stays (the series is then never expired before
// a restart: safe, merely kept). The caller holds s.mu.
func (s *memSeries) pinLocked() {
	if s.pins < math.MaxUint8 {
		s.pins++
	}
}

// unpinAll releases the pins check took on the batch's series.
func (a *headAppender) unpinAll() {
	for _, s := range a.touched {
		s.mu.Lock()
		if s.pins < math.MaxUint8 {
			s.pins--
		}
		s.mu.Unlock()
	}
}

// Commit applies the buffered samples. A sample that a concurrent batch
// made unacceptable since Append is dropped and counted.
func (a *headAppender) Commit() error {
	defer a.head.appenders.put(a)
	h := a.head
	var locked *memSeries
	appended := 0
	// The head's time range is widened once per batch: a CAS per sample
	// on one shared word would serialise the writers.
	mint, maxt := int64(maxInt64), int64(minInt64)
	for _, p := range a.samples {
		if p.series != locked {
			if locked != nil {
				locked.mu.Unlock()
			}
			locked = p.series
			locked.mu.Lock()
		}
		outcome, err := p.series.appendLocked(p.t, p.v, h)
		switch {
		case err != nil:
			h.metrics.rejected(err).Inc()
			h.metrics.commitConflicts.Inc()
			continue
		case outcome == ignoredDuplicate:
			h.metrics.duplicatesIgnored.Inc()
			continue
		case outcome == appendedOutOfOrder:
			h.metrics.outOfOrderAppended.Inc()
		}
		appended++
		mint, maxt = min(mint, p.t), max(maxt, p.t)
	}
	if locked != nil {
		locked.mu.Unlock()
	}
	a.unpinAll()
	if appended > 0 {
		h.updateTimeRange(mint, maxt)
	}
	h.metrics.samplesAppended.Add(float64(appended))
	return nil
}

func (a *headAppender) Rollback() {
	a.unpinAll()
	a.head.appenders.put(a)
}
