package tsdb

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// Querier returns a querier over the head's samples in [mint, maxt].
func (h *Head) Querier(mint, maxt int64) (Querier, error) {
	return &headQuerier{head: h, mint: mint, maxt: maxt, epoch: h.readers.enter()}, nil
}

// Querier returns a querier over [mint, maxt] that reads the head and the
// store's chunks as one.
func (db *DB) Querier(mint, maxt int64) (Querier, error) {
	// The epoch is entered before the store's snapshot takes the newest
	// compacted bucket: a compaction that marks a bucket after it then
	// removes that bucket's journal segments only once this reader has
	// left, and one marked before it is skipped by this reader.
	epoch := db.head.readers.enter()
	released := db.store.released.Load() // before the snapshot: see storeFor
	return &headQuerier{head: db.head, mint: mint, maxt: maxt, store: db.store.reader(), st: db.store,
		released: released, epoch: epoch}, nil
}

type headQuerier struct {
	head       *Head
	mint, maxt int64
	store      *storeReader // nil for a head without a store
	epoch      uint64       // entered in head.readers until Close
	closed     atomic.Bool

	// A checkpoint may write a series' chunks and drop them from the
	// head between the querier's snapshot of the store and its read of
	// the series: released is the store's count of such batches when the
	// snapshot was taken, and newer a later snapshot that shows them.
	st       *store
	released uint64
	mu       sync.Mutex
	newer    *storeReader // guarded by mu
	newerAt  uint64       // guarded by mu: st.released when newer was taken
	older    []*storeReader
}

// storeFor returns the store reader to read a series' persisted chunks
// with, once its in-memory chunks have been copied under its lock: the
// querier's own snapshot, unless a checkpoint has since released chunks
// from the head, in which case a snapshot taken after that (one per such
// checkpoint batch a query lives through: each older one is retired, so
// that only its transaction stays open until the querier closes).
//
// Order: a checkpoint commits a batch, raises st.released, then drops the
// batch's chunks under each series' lock. A reader that saw a series
// without those chunks took the lock after they were dropped, so it sees
// the raised count, and a snapshot taken after reading it holds the
// commit.
func (q *headQuerier) storeFor() *storeReader {
	if q.store == nil {
		return nil
	}
	now := q.st.released.Load()
	if now == q.released {
		return q.store
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.newer == nil || q.newerAt != now {
		if q.newer != nil {
			q.newer.retire()
			q.older = append(q.older, q.newer)
		} else {
			q.store.retire()
		}
		q.newer, q.newerAt = q.st.reader(), now
	}
	return q.newer
}

// ctxCheckInterval is how many series a querier walks between checks of
// its context: often enough to stop a large query promptly, rarely enough
// to cost nothing.
const ctxCheckInterval = 1024

// matching returns the series that match ms and have samples in range.
func (q *headQuerier) matching(ctx context.Context, ms []*labels.Matcher) ([]*memSeries, error) {
	h := q.head
	if h.MinTime() > q.maxt || h.MaxTime() < q.mint {
		return nil, nil
	}
	refs := h.index.forMatchers(ms)
	out := make([]*memSeries, 0, len(refs))
	for i, ref := range refs {
		if i%ctxCheckInterval == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		s := h.series.getByRef(ref)
		if s == nil {
			continue
		}
		s.mu.Lock()
		ok := s.overlapsLocked(q.mint, q.maxt)
		s.mu.Unlock()
		if ok {
			out = append(out, s)
			if err := checkSeriesLimit(ctx, len(out)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// bulk reports whether reading the persisted chunks of n series over
// the querier's range should leave the chunk cache as it is
// (chunkCache.bulk).
func (q *headQuerier) bulk(n int) bool {
	if q.st == nil || n == 0 {
		return false
	}
	// Floor divisions, which cannot overflow, as bucketOf can at the
	// extremes; the count saturates (a querier over all time spans
	// ~10^12 buckets).
	r := q.st.bucketRange
	buckets, pairs := floorDiv(q.maxt, r)-floorDiv(q.mint, r)+1, int64(math.MaxInt32)
	if buckets < pairs/int64(n) {
		pairs = int64(n) * buckets
	}
	return q.st.cache.bulk(int(pairs))
}

// floorDiv is t/r rounded down, for r > 0.
func floorDiv(t, r int64) int64 {
	d := t / r
	if t%r != 0 && t < 0 {
		d--
	}
	return d
}

func (q *headQuerier) Select(ctx context.Context, ms ...*labels.Matcher) SeriesSet {
	set := q.selectUnsorted(ctx, ms)
	b := labels.NewScratchBuilder(16)
	for i := range set.series {
		if hs := &set.series[i]; hs.s != nil {
			hs.lset = q.head.symbols.labels(&b, hs.s.syms.refs())
		}
	}
	slices.SortFunc(set.series, func(a, b headSeries) int { return labels.Compare(a.lset, b.lset) })
	return set
}

func (q *headQuerier) SelectUnsorted(ctx context.Context, ms ...*labels.Matcher) SeriesSet {
	return q.selectUnsorted(ctx, ms)
}

// selectUnsorted returns the matching series in the order of their refs,
// without building their label sets: Labels builds one when asked, so a
// caller that reads a million series and keeps few of them never holds a
// million label sets.
func (q *headQuerier) selectUnsorted(ctx context.Context, ms []*labels.Matcher) *headSeriesSet {
	series, err := q.matching(ctx, ms)
	if err != nil {
		return &headSeriesSet{err: err}
	}
	evicted, err := q.evictedMatching(ctx, ms, len(series))
	if err != nil {
		return &headSeriesSet{err: err}
	}
	set := &headSeriesSet{series: make([]headSeries, len(series), len(series)+len(evicted))}
	bulk := q.bulk(len(series) + len(evicted))
	for i, s := range series {
		set.series[i] = headSeries{symbols: q.head.symbols, s: s, mint: q.mint, maxt: q.maxt, store: q.store, q: q, bulk: bulk}
	}
	for i := range evicted {
		set.series = append(set.series, headSeries{lset: evicted[i].lset, evicted: &evicted[i], q: q, bulk: bulk})
	}
	return set
}

func (q *headQuerier) LabelNames(ctx context.Context, ms ...*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		var names []string
		if q.head.MinTime() <= q.maxt && q.head.MaxTime() >= q.mint {
			names = q.head.index.labelNames()
		}
		if q.head.evicted == nil || q.store == nil {
			return names, nil
		}
		seen := make(map[string]struct{}, len(names))
		for _, n := range names {
			seen[n] = struct{}{}
		}
		if err := q.evictedLabelNames(seen); err != nil {
			return nil, err
		}
		return sortedKeys(seen), nil
	}
	series, err := q.matching(ctx, ms)
	if err != nil {
		return nil, err
	}
	strs := q.head.symbols.load()
	seen := map[string]struct{}{}
	for _, s := range series {
		s.syms.refs().each(func(n, _ uint32) { seen[strs[n]] = struct{}{} })
	}
	evicted, err := q.evictedMatching(ctx, ms, len(series))
	if err != nil {
		return nil, err
	}
	for _, e := range evicted {
		e.lset.Range(func(l labels.Label) { seen[l.Name] = struct{}{} })
	}
	return sortedKeys(seen), nil
}

func (q *headQuerier) LabelValues(ctx context.Context, name string, ms ...*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		var values []string
		if q.head.MinTime() <= q.maxt && q.head.MaxTime() >= q.mint {
			values = q.head.index.labelValues(name)
		}
		if q.head.evicted == nil || q.store == nil {
			return values, nil
		}
		seen := make(map[string]struct{}, len(values))
		for _, v := range values {
			seen[v] = struct{}{}
		}
		if err := q.evictedLabelValues(name, seen); err != nil {
			return nil, err
		}
		return sortedKeys(seen), nil
	}
	series, err := q.matching(ctx, ms)
	if err != nil {
		return nil, err
	}
	seen := map[string]struct{}{}
	for _, s := range series {
		if v := q.head.symbols.get(s.syms.refs(), name); v != "" {
			seen[v] = struct{}{}
		}
	}
	evicted, err := q.evictedMatching(ctx, ms, len(series))
	if err != nil {
		return nil, err
	}
	for _, e := range evicted {
		if v := e.lset.Get(name); v != "" {
			seen[v] = struct{}{}
		}
	}
	return sortedKeys(seen), nil
}

func (q *headQuerier) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	q.head.readers.exit(q.epoch)
	if q.store != nil {
		q.store.close()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range append(q.older, q.newer) {
		if r != nil {
			r.close()
		}
	}
	q.older, q.newer = nil, nil
	return nil
}

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

type headSeriesSet struct {
	series []headSeries
	i      int
	err    error
}

func (s *headSeriesSet) Next() bool {
	if s.i >= len(s.series) {
		return false
	}
	s.i++
	return true
}

func (s *headSeriesSet) At() Series { return &s.series[s.i-1] }
func (s *headSeriesSet) Err() error { return s.err }

// headSeries reads one series' samples lazily: Iterator snapshots the
// series when called, so samples appended after Select may be seen.
type headSeries struct {
	lset       labels.Labels // set by Select; empty: built by Labels on each call
	symbols    *symbolTable
	s          *memSeries
	mint, maxt int64
	store      *storeReader
	// An evicted series (s is nil) is read from the store only.
	evicted *evictedSeries
	q       *headQuerier
	// bulk: the selection is too large for the chunk cache
	// (headQuerier.bulk).
	bulk bool
}

func (hs *headSeries) Labels() labels.Labels {
	if !hs.lset.IsEmpty() {
		return hs.lset
	}
	b := scratchBuilders.Get().(*labels.ScratchBuilder)
	lset := hs.symbols.labels(b, hs.s.syms.refs())
	scratchBuilders.Put(b)
	return lset
}

// scratchBuilders serve Labels, which query workers call concurrently.
var scratchBuilders = sync.Pool{New: func() any {
	b := labels.NewScratchBuilder(16)
	return &b
}}

func (hs *headSeries) Iterator(it Iterator) Iterator {
	if hs.s == nil {
		return hs.q.evictedIterator(hs.evicted, it, hs.bulk)
	}
	hs.s.mu.Lock()
	snap := hs.s.snapshotInto(hs.mint, hs.maxt, buffersOf(it))
	// The chain under the lock: a checkpoint sets it there before it
	// drops the chunks the chain now reaches.
	persistedMaxT, minT := hs.s.persistedMaxT, hs.s.minT
	var chain journalPos
	if hs.store != nil {
		chain = hs.q.head.series.refs.chain(hs.s.ref)
	}
	hs.s.mu.Unlock()
	if hs.store != nil && hs.mint <= persistedMaxT {
		// Chunks persisted and still in memory (between a checkpoint's
		// write and its release) overlap; the merge drops duplicates.
		inMemory := len(snap.chunks)
		all, bytes, err := hs.q.storeFor().read(snap.chunks, snap.bytes, hs.s.ref, chain, max(hs.mint, minT), min(hs.maxt, persistedMaxT), hs.bulk)
		if err != nil {
			return errIterator{err}
		}
		snap.chunks, snap.bytes = persistedFirst(all, inMemory), bytes
	}
	return snap.iterator(it, hs.mint, hs.maxt)
}

// persistedFirst moves the chunks read from the store, appended after the
// first inMemory ones, to the front: they are the older.
func persistedFirst(chunks []memChunk, inMemory int) []memChunk {
	slices.Reverse(chunks[:inMemory])
	slices.Reverse(chunks[inMemory:])
	slices.Reverse(chunks)
	return chunks
}
