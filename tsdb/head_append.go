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
	// taken holds the series this batch took a sample of, each pinned,
	// with its newest accepted sample, so that a batch holding several
	// samples of a series is checked as if the earlier ones were already
	// applied.
	taken batchSeries
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
	return &headAppender{}
}

// pooledAppenderSeries bounds what a pooled appender keeps of its largest
// batch: clearing its buffers costs their capacity, and one batch of a
// million series (a restart's backlog, a large request) would otherwise
// make every later commit of the appender clear a million slots.
const pooledAppenderSeries = 8192

// put clears every reference so pooled appenders keep no series alive.
func (p *appenderPool) put(a *headAppender) {
	a.taken.reset(pooledAppenderSeries)
	if cap(a.samples) > pooledAppenderSeries {
		a.samples = nil
	} else {
		clear(a.samples)
		a.samples = a.samples[:0]
	}
	a.looked = nil
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
	a.samples = append(a.samples, pendingSample{series: s, t: t, v: v})
	return nil
}

// check decides a sample's fate against the series' committed state and
// the samples this batch already holds for it.
func (a *headAppender) check(s *memSeries, t int64, v float64) (appendOutcome, error) {
	window := a.head.opts.OutOfOrderWindow.Milliseconds()
	i := a.taken.find(s)
	if i >= 0 && a.taken.newest[i].t >= t {
		n := a.taken.newest[i]
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
	switch {
	case err != nil || outcome == ignoredDuplicate:
	case i < 0:
		s.pinLocked() // unpinned on Commit or Rollback
		a.taken.add(s, sample{t: t, v: v})
	case t > a.taken.newest[i].t:
		a.taken.newest[i] = sample{t: t, v: v}
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
	for _, s := range a.taken.series {
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
	a.prefetchOpenChunks()
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

// prefetchOpenChunks reads the open chunks of the batch's series, the
// ends an append touches (the first timestamp, which the append checks
// its range against, and the last bytes), a run of series at a time, so
// that their cache misses overlap rather than come one append after
// another: at ten million series they were 5% of the node's CPU. It
// reads bytes that no append changes again (an append rewrites only a
// chunk's count and its last byte, and a grown chunk leaves its old
// array as it was), so it takes each series' lock only to read where
// its chunk is.
func (a *headAppender) prefetchOpenChunks() {
	series := a.taken.series
	for len(series) > 0 {
		n := min(len(series), prefetchRun)
		a.prefetched += prefetchChunkRun(series[:n])
		series = series[n:]
	}
}

// prefetchChunkRun is prefetchOpenChunks for up to prefetchRun series.
// The chunks' locations go to the stack, not the heap: no write barrier.
func prefetchChunkRun(series []*memSeries) uint64 {
	var chunks [prefetchRun]openChunk
	for i, s := range series {
		s.mu.Lock()
		chunks[i] = s.head
		s.mu.Unlock()
	}
	var sink uint64
	for _, c := range chunks[:len(series)] {
		if b := c.bytes(); len(b) > xorChunkHeader+1 {
			sink += uint64(b[xorChunkHeader]) + uint64(b[len(b)-2])
		}
	}
	return sink
}

func (a *headAppender) Rollback() {
	a.unpinAll()
	a.head.appenders.put(a)
}
