package tsdb

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// Head is the in-memory part of the store: the series index and the
// recent chunks of every active series. It is safe for concurrent use by
// many appenders and queriers.
type Head struct {
	opts    HeadOptions // immutable
	symbols *symbolTable
	series  *stripeSeries
	index   *postings
	metrics *headMetrics

	limits     atomic.Pointer[HeadLimits]
	created    createdQueue // new series for the store's index; nil queue for a bare head
	lastRef    atomic.Uint64
	numSeries  atomic.Int64 // active series
	numIndexed atomic.Int64 // all series in the index, active or not
	chunkBytes atomic.Int64 // accounted memory of active series' samples
	indexBytes atomic.Int64 // accounted memory of indexed series besides samples and symbols
	minTime    atomic.Int64 // oldest sample timestamp; math.MaxInt64 when empty
	maxTime    atomic.Int64 // newest sample timestamp; math.MinInt64 when empty
	appenders  appenderPool
	numChunks  atomic.Int64 // chunks created since start
	metadata   *metadataStore

	// readers and removed make the memory of series removed from the
	// index reusable only once no appender or querier can hold them.
	readers *epochs
	removed limbo

	// evicted finds series that left memory; nil for a head without a
	// store. revived queues those that came back for the next checkpoint.
	evicted *evictedStore
	revived revivedQueue
	// evictMu is held exclusively while evicted series leave the maps and
	// postings, and shared by a revival, so that a revival cannot put a
	// ref back before the eviction has finished taking it out.
	evictMu sync.RWMutex
	// testHookEvicting, set by tests only, runs between taking evicted
	// series out of the maps and out of the postings.
	testHookEvicting func()
}

// NewHead returns an empty head. Its metrics are registered with reg,
// which may be nil.
func NewHead(opts HeadOptions, reg prometheus.Registerer) (*Head, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("head options: %w", err)
	}
	h := &Head{
		opts:    opts,
		symbols: newSymbolTable(),
		series:  newStripeSeries(opts.StripeSize),
		index:   newPostings(),
		readers: newEpochs(),
	}
	h.minTime.Store(maxInt64)
	h.maxTime.Store(minInt64)
	h.limits.Store(&opts.Limits)
	h.metrics = newHeadMetrics(h, reg)
	h.metadata = newMetadataStore(opts.Metadata, func() bool {
		l := h.limits.Load()
		return l.MaxBytes > 0 && h.Bytes() >= l.MaxBytes
	})
	h.metadata.register(reg)
	return h, nil
}

// SetLimits replaces the head's memory ceiling; it applies to the next
// series created or reactivated.
func (h *Head) SetLimits(l HeadLimits) { h.limits.Store(&l) }

// Bytes returns the memory the head accounts for: the samples of active
// series, every indexed series' struct, label references and postings,
// the symbol table's strings and the metric metadata. It is what
// limits.max_head_bytes bounds, so label churn (unique values) counts as
// much as samples do.
func (h *Head) Bytes() int64 {
	return h.chunkBytes.Load() + h.indexBytes.Load() + h.index.bytes() + h.symbols.size() + h.metadata.size()
}

// SetMetadataLimits replaces the bounds of the metric metadata; they
// apply to metadata that arrives from now on, what is kept stays.
func (h *Head) SetMetadataLimits(o MetadataOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	h.metadata.setLimits(o)
	return nil
}

// AddMetadata keeps the metric metadata of mds that is new, in memory
// only (DB.AddMetadata also persists it); it reports how many entries
// changed. mds may alias a request body: it is not kept.
func (h *Head) AddMetadata(mds []MetricMetadata) int {
	return h.metadata.add(mds, time.Now())
}

// Metadata returns the metric metadata of metric (of every name when
// metric is ""), sorted by name: at most limit names (no bound when limit
// is negative; none when it is 0, as in Prometheus) and at most
// limitPerMetric entries a name (no bound when it is not positive), the
// most recently seen first.
func (h *Head) Metadata(metric string, limit, limitPerMetric int) []MetricMetadataList {
	return h.metadata.list(metric, limit, limitPerMetric)
}

// NumIndexedSeries returns all series the index knows, including those
// whose samples are only in the store.
func (h *Head) NumIndexedSeries() int64 { return h.numIndexed.Load() }

// checkLimits refuses one more active series past the ceiling.
func (h *Head) checkLimits() error {
	l := h.limits.Load()
	if n := h.numSeries.Load(); l.MaxSeries > 0 && n >= l.MaxSeries {
		return fmt.Errorf("%w: %d active series, max_series is %d", ErrSeriesLimit, n, l.MaxSeries)
	}
	if b := h.Bytes(); l.MaxBytes > 0 && b >= l.MaxBytes {
		return fmt.Errorf("%w: head holds %d bytes, max_head_bytes is %d", ErrHeadBytesLimit, b, l.MaxBytes)
	}
	return nil
}

// seriesOverhead estimates what an indexed series costs besides its
// chunks, symbols and postings (which the index counts itself): the
// struct, its symbol refs and two map entries.
func seriesOverhead(symBytes int) int64 {
	return int64(unsafe.Sizeof(memSeries{})) + int64(symBytes) + 2*32
}

// activateLocked makes s hold samples again and counts it toward the
// head's active series. The caller holds s.mu.
func (h *Head) activateLocked(s *memSeries) {
	s.active = true
	h.chunkBytes.Add(s.chunkBytesLocked())
	h.numSeries.Add(1)
}

// deactivateLocked drops s's sample state from memory; its samples must
// already be in the store. The caller holds s.mu.
func (h *Head) deactivateLocked(s *memSeries) {
	h.chunkBytes.Add(-s.chunkBytesLocked())
	s.head, s.headXOR, s.aside = openChunk{}, headXOR{}, nil
	s.active = false
	h.numSeries.Add(-1)
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

// NumSeries returns the number of series in the head.
func (h *Head) NumSeries() int64 { return h.numSeries.Load() }

// MinTime returns the oldest sample timestamp, or math.MaxInt64 if empty.
func (h *Head) MinTime() int64 { return h.minTime.Load() }

// MaxTime returns the newest sample timestamp, or math.MinInt64 if empty.
func (h *Head) MaxTime() int64 { return h.maxTime.Load() }

// getOrCreate returns the series of lset, creating it (active) if new,
// unless the head is at its limits. A series evicted to the store comes
// back under its old ref.
func (h *Head) getOrCreate(lset labels.Labels) (s *memSeries, created bool, err error) {
	hash := lset.Hash()
	if s := h.series.getByHash(hash, lset, h.symbols); s != nil {
		return s, false, nil
	}
	if err := h.checkLimits(); err != nil {
		return nil, false, err
	}
	ev, revived, err := h.evicted.lookup(hash, lset)
	if err != nil {
		// Creating it anew would give its labels a second ref.
		return nil, false, fmt.Errorf("look up evicted series: %w", err)
	}
	// Intern before taking the stripe lock: interning may allocate, and a
	// losing racer releases what it interned.
	syms := h.symbols.internSyms(lset)
	if revived {
		h.evictMu.RLock()
		defer h.evictMu.RUnlock()
	}
	s, created = h.series.getOrSet(hash, lset, h.symbols, func() *memSeries {
		if !revived {
			s := newMemSeries(SeriesRef(h.lastRef.Add(1)), syms)
			h.activateLocked(s) // not yet published: no lock needed
			return s
		}
		s := newMemSeries(ev.ref, syms)
		s.minT, s.maxT, s.lastV, s.persistedMaxT = ev.rec.minT, ev.rec.maxT, ev.rec.lastV, ev.rec.maxT
		h.activateLocked(s)
		return s
	})
	if !created {
		h.symbols.release(syms.refs()) // never published: no reader holds it
		return s, false, nil
	}
	h.index.add(s.ref, h.symbols.load(), s.syms.refs())
	h.numIndexed.Add(1)
	h.indexBytes.Add(seriesOverhead(len(s.syms.refs())))
	h.created.add(s)
	if revived {
		h.metrics.seriesRevived.Inc()
		h.revived.add(revivedSeries{ref: ev.ref, bucket: ev.bucket, lset: ev.lset})
	} else {
		h.metrics.seriesCreated.Inc()
	}
	return s, true, nil
}

// updateTimeRange widens the head's time range to include [mint, maxt].
func (h *Head) updateTimeRange(mint, maxt int64) {
	for {
		cur := h.minTime.Load()
		if mint >= cur || h.minTime.CompareAndSwap(cur, mint) {
			break
		}
	}
	for {
		cur := h.maxTime.Load()
		if maxt <= cur || h.maxTime.CompareAndSwap(cur, maxt) {
			break
		}
	}
}

// removeSeries takes deleted, inactive series out of the maps and
// postings. Their symbols are released once no reader can hold them any
// more: at the end of this call if none can, else at a later call of
// collectRemoved.
func (h *Head) removeSeries(gone []*memSeries) {
	if len(gone) == 0 {
		return
	}
	st := h.series
	b := labels.NewScratchBuilder(16)
	for _, s := range gone {
		hash := h.symbols.labels(&b, s.syms.refs()).Hash()
		sp := st.stripe(hash)
		sp.Lock()
		sp.del(hash, s)
		sp.Unlock()
		st.refs.del(s.ref)
	}
	h.forgetUnlinked(gone)
}

// unlinkIfInactive marks s deleted and takes it out of the series maps if
// it is inactive, under its stripe's lock and its own, so that an appender
// either activated it before or finds it deleted and looks up again. The
// caller holds h.evictMu.
func (h *Head) unlinkIfInactive(s *memSeries) bool {
	st := h.series
	b := scratchBuilders.Get().(*labels.ScratchBuilder)
	hash := h.symbols.labels(b, s.syms.refs()).Hash()
	scratchBuilders.Put(b)
	sp := st.stripe(hash)
	sp.Lock()
	s.mu.Lock()
	ok := !s.active && !s.deleted
	if ok {
		s.deleted = true
		sp.del(hash, s)
		st.refs.del(s.ref)
	}
	s.mu.Unlock()
	sp.Unlock()
	return ok
}

// forgetUnlinked takes series already out of the maps out of the postings
// and queues their memory for release.
func (h *Head) forgetUnlinked(gone []*memSeries) {
	if len(gone) == 0 {
		return
	}
	h.index.deleteSeries(h.symbols.load(), gone)
	h.numIndexed.Add(-int64(len(gone)))
	// Readers that start from here on cannot find the removed series.
	h.removed.add(h.readers.advance(), slices.Clone(gone))
	h.collectRemoved()
}

// collectRemoved releases the symbols of removed series that no reader
// can hold any more.
func (h *Head) collectRemoved() {
	for _, s := range h.removed.takeBefore(h.readers.oldest()) {
		h.symbols.release(s.syms.refs())
		h.indexBytes.Add(-seriesOverhead(len(s.syms.refs())))
	}
}
