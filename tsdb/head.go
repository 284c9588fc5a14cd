package tsdb

import (
	"fmt"
	"sync/atomic"

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

	lastRef    atomic.Uint64
	numSeries  atomic.Int64
	minTime    atomic.Int64 // oldest sample timestamp; math.MaxInt64 when empty
	maxTime    atomic.Int64 // newest sample timestamp; math.MinInt64 when empty
	appenders  appenderPool
	numSamples atomic.Int64 // samples appended since start
	numChunks  atomic.Int64 // chunks created since start
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
	}
	h.minTime.Store(maxInt64)
	h.maxTime.Store(minInt64)
	h.metrics = newHeadMetrics(h, reg)
	return h, nil
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

// getOrCreate returns the series of lset, creating it if new.
func (h *Head) getOrCreate(lset labels.Labels) (s *memSeries, created bool) {
	hash := lset.Hash()
	if s := h.series.getByHash(hash, lset, h.symbols); s != nil {
		return s, false
	}
	// Intern before taking the stripe lock: interning may allocate, and a
	// losing racer only leaves symbols that the winner also interned.
	syms := h.symbols.internLabels(make([]uint32, 0, 2*lset.Len()), lset)
	s, created = h.series.getOrSet(hash, lset, h.symbols, func() *memSeries {
		return newMemSeries(SeriesRef(h.lastRef.Add(1)), hash, syms)
	})
	if created {
		h.index.add(s.ref, h.symbols.load(), s.syms)
		h.numSeries.Add(1)
		h.metrics.seriesCreated.Inc()
	}
	return s, created
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
