package tsdb

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// seriesHashmap is one stripe's series by label hash: an open-addressing
// table with linear probing over (hash, series) slots. Series whose label
// sets share a hash sit in further slots of the same probe run, and
// lookups tell them apart by labels.
//
// A Go map was here before. At a million series and more every lookup
// missed the cache four times in a row (map header, directory, table,
// group), and the lookups took a third of the CPU of steady ingest. Here
// a lookup reads the stripe (its lock shares the cache line), the table's
// header and one run of slots, four to a cache line.
//
// Writers hold the stripe's lock. Readers hold its read lock, except
// prefetch, which reads without a lock: hence the table is replaced whole
// on resize and slots are written and read atomically.
//
// Invariant: the table is nil or has a power of two of slots; count slots
// hold a series; every series sits in the probe run that starts at its
// home slot with no empty slot before it (deletions shift later slots
// back rather than leave tombstones).
type seriesHashmap struct {
	table atomic.Pointer[slotTable] // nil while empty
	count int
}

// slotTable is a table's slots. Their number never changes once the
// table is published, so a reader may index it without the lock.
type slotTable struct{ slots []hashSlot }

type hashSlot struct {
	hash atomic.Uint64
	s    atomic.Pointer[memSeries] // nil: empty
}

const (
	minHashmapSlots = 8
	// A table grows past 3/4 full and shrinks below 1/8 (not 3/8, so a
	// stripe whose count sways around one size does not rebuild on
	// every change).
	growAtQuarters = 3
	shrinkAtEighth = 1
)

// home is the slot a hash's probe run starts at. The stripe is chosen by
// the hash's low bits, so the slot is chosen by its high ones.
func (t *slotTable) home(hash uint64) int {
	return int(hash>>32) & (len(t.slots) - 1)
}

// size is the number of slots; 0 for an empty table.
func (m *seriesHashmap) size() int {
	if t := m.table.Load(); t != nil {
		return len(t.slots)
	}
	return 0
}

// find returns the slot holding a series with hash for which eq holds,
// or -1.
func (m *seriesHashmap) find(hash uint64, eq func(*memSeries) bool) int {
	t := m.table.Load()
	if t == nil {
		return -1
	}
	mask := len(t.slots) - 1
	for i := t.home(hash); ; i = (i + 1) & mask {
		sl := &t.slots[i]
		s := sl.s.Load()
		if s == nil {
			return -1
		}
		if sl.hash.Load() == hash && eq(s) {
			return i
		}
	}
}

func (m *seriesHashmap) get(hash uint64, lset labels.Labels, st *symbolTable) *memSeries {
	return getSpelled(m, hash, labelSetKey{lset}, st)
}

// getPairs is get for a label set given as sorted pairs.
func (m *seriesHashmap) getPairs(hash uint64, ls []labels.Label, st *symbolTable) *memSeries {
	return getSpelled(m, hash, labelPairsKey(ls), st)
}

// spelledKey is a label set looked up in the series maps, in one of the
// forms callers hold it.
type spelledKey interface {
	spelledBy(st *symbolTable, refs symRefs) bool
}

type labelSetKey struct{ lset labels.Labels }

func (k labelSetKey) spelledBy(st *symbolTable, refs symRefs) bool { return st.equal(refs, k.lset) }

type labelPairsKey []labels.Label

func (k labelPairsKey) spelledBy(st *symbolTable, refs symRefs) bool { return st.equalPairs(refs, k) }

// getSpelled returns the series under hash whose labels key spells, or
// nil. It is find's loop written out over a type parameter: a closure
// capturing the key and st cost an allocation on the hottest path of
// ingest.
func getSpelled[K spelledKey](m *seriesHashmap, hash uint64, key K, st *symbolTable) *memSeries {
	t := m.table.Load()
	if t == nil {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(hash); ; i = (i + 1) & mask {
		sl := &t.slots[i]
		s := sl.s.Load()
		if s == nil {
			return nil
		}
		if sl.hash.Load() == hash && key.spelledBy(st, s.syms.refs()) {
			return s
		}
	}
}

// getBySyms is get for a series spelled by syms: two label sets are equal
// when their symbol refs are.
func (m *seriesHashmap) getBySyms(hash uint64, syms symRefs) *memSeries {
	if i := m.find(hash, func(s *memSeries) bool { return s.syms.refs() == syms }); i >= 0 {
		return m.table.Load().slots[i].s.Load()
	}
	return nil
}

// set adds s under hash. The caller holds the stripe's lock and has
// checked that no series with s's labels is present.
func (m *seriesHashmap) set(hash uint64, s *memSeries) {
	if n := m.size(); (m.count+1)*4 > n*growAtQuarters {
		m.resize(max(minHashmapSlots, n*2))
	}
	m.table.Load().insert(hash, s)
	m.count++
}

// reserve sizes an empty table for n series, so that loading them at
// start does not rebuild it as it fills. The caller holds the lock.
func (m *seriesHashmap) reserve(n int) {
	if m.count > 0 || n == 0 {
		return
	}
	size := minHashmapSlots
	for n*4 > size*growAtQuarters {
		size *= 2
	}
	m.table.Store(&slotTable{slots: make([]hashSlot, size)})
}

// insert puts s in the first empty slot of hash's run. The hash is
// written before the series, which marks the slot taken.
func (t *slotTable) insert(hash uint64, s *memSeries) {
	mask := len(t.slots) - 1
	i := t.home(hash)
	for t.slots[i].s.Load() != nil {
		i = (i + 1) & mask
	}
	t.slots[i].hash.Store(hash)
	t.slots[i].s.Store(s)
}

// resize publishes a table of size slots holding the current series.
func (m *seriesHashmap) resize(size int) {
	t := &slotTable{slots: make([]hashSlot, size)}
	if old := m.table.Load(); old != nil {
		for i := range old.slots {
			if s := old.slots[i].s.Load(); s != nil {
				t.insert(old.slots[i].hash.Load(), s)
			}
		}
	}
	m.table.Store(t)
}

// del removes s, stored under hash, if present. The caller holds the
// stripe's lock.
func (m *seriesHashmap) del(hash uint64, s *memSeries) {
	i := m.find(hash, func(x *memSeries) bool { return x == s })
	if i < 0 {
		return
	}
	m.table.Load().deleteSlot(i)
	m.count--
	if m.count == 0 {
		m.table.Store(nil)
	} else if n := m.size(); n > minHashmapSlots && m.count*8 < n*shrinkAtEighth {
		m.resize(n / 2)
	}
}

// deleteSlot empties slot i and moves back the later slots of its run
// that may no longer be reached past the gap (Knuth's algorithm R for
// linear probing), so that lookups never need tombstones.
func (t *slotTable) deleteSlot(i int) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].s.Load() != nil; j = (j + 1) & mask {
		h := t.home(t.slots[j].hash.Load())
		// The slot at j stays when its home lies cyclically in (i, j]:
		// its run does not cross the gap at i.
		if i <= j {
			if i < h && h <= j {
				continue
			}
		} else if i < h || h <= j {
			continue
		}
		t.slots[i].hash.Store(t.slots[j].hash.Load())
		t.slots[i].s.Store(t.slots[j].s.Load())
		i = j
	}
	t.slots[i].s.Store(nil)
	t.slots[i].hash.Store(0)
}

// each calls fn with every series of the table and its hash. The caller
// holds the stripe's lock.
func (m *seriesHashmap) each(fn func(hash uint64, s *memSeries)) {
	t := m.table.Load()
	if t == nil {
		return
	}
	for i := range t.slots {
		if s := t.slots[i].s.Load(); s != nil {
			fn(t.slots[i].hash.Load(), s)
		}
	}
}

// stripeSeries holds the head's series twice: by label hash for appends,
// in stripes that each have their own lock so that concurrent writers to
// different series rarely contend (stripe i holds the series whose
// hash&mask == i), and by ref for queries.
type stripeSeries struct {
	mask    uint64
	refs    seriesRefs
	stripes []seriesStripe
}

// seriesStripe is a lock and the table it guards in one cache line: a
// lookup that takes the lock has the table's header at no further cost.
// (The stripes are one allocation of at least a page, so each starts a
// line.)
type seriesStripe struct {
	sync.RWMutex
	seriesHashmap
	_ [64 - 24 - 16]byte
}

func newStripeSeries(size int) *stripeSeries {
	return &stripeSeries{mask: uint64(size - 1), stripes: make([]seriesStripe, size)}
}

func (s *stripeSeries) stripe(hash uint64) *seriesStripe { return &s.stripes[hash&s.mask] }

func (s *stripeSeries) getByHash(hash uint64, lset labels.Labels, st *symbolTable) *memSeries {
	sp := s.stripe(hash)
	sp.RLock()
	series := sp.get(hash, lset, st)
	sp.RUnlock()
	return series
}

// getByPairs is getByHash for a label set given as sorted pairs.
func (s *stripeSeries) getByPairs(hash uint64, ls []labels.Label, st *symbolTable) *memSeries {
	sp := s.stripe(hash)
	sp.RLock()
	series := sp.getPairs(hash, ls, st)
	sp.RUnlock()
	return series
}

func (s *stripeSeries) getByRef(ref SeriesRef) *memSeries { return s.refs.get(ref) }

// getOrSet returns the series already stored for lset, or stores and
// returns the one create builds. create runs under the hash stripe's lock,
// so two writers racing to create one series agree on one.
func (s *stripeSeries) getOrSet(hash uint64, lset labels.Labels, st *symbolTable, create func() *memSeries) (series *memSeries, created bool) {
	sp := s.stripe(hash)
	sp.Lock()
	if series = sp.get(hash, lset, st); series != nil {
		sp.Unlock()
		return series, false
	}
	series = create()
	sp.set(hash, series)
	sp.Unlock()
	s.refs.set(series)
	return series, true
}

// prefetch reads ahead, without locks, what lookups of hashes read first:
// each hash's stripe, table, home slot, the series there and its symbol
// refs. A lookup alone chains these cache misses one after another; the
// lookups of a batch done after prefetch find them in the cache, because
// each pass here issues loads independent of one another, which the CPU
// overlaps. The reads are hints: a table being changed is read as it is
// found, and nothing read is kept. The result only keeps the loads from
// being optimised away.
func (s *stripeSeries) prefetch(hashes []uint64) uint64 {
	var sink uint64
	for len(hashes) > 0 {
		n := min(len(hashes), prefetchRun)
		sink += s.prefetchRun(hashes[:n])
		hashes = hashes[n:]
	}
	return sink
}

// prefetchRun is how many lookups prefetch overlaps at a time: more
// loads than a core keeps in flight, and few enough pointers for the
// scratch to live on the stack. Stored in a heap slice, each pointer
// cost a write barrier while the GC marked (1.4% of the node's CPU in
// steady ingest at ten million series).
const prefetchRun = 64

// prefetchRun prefetches up to prefetchRun hashes.
func (s *stripeSeries) prefetchRun(hashes []uint64) uint64 {
	var tabs [prefetchRun]*slotTable
	var series [prefetchRun]*memSeries
	var sink uint64
	for i, h := range hashes {
		tabs[i] = s.stripes[h&s.mask].table.Load()
	}
	for _, t := range tabs[:len(hashes)] {
		if t != nil {
			sink += uint64(len(t.slots))
		}
	}
	for i, t := range tabs[:len(hashes)] {
		if t != nil {
			series[i] = t.slots[t.home(hashes[i])].s.Load()
		}
	}
	for _, p := range series[:len(hashes)] {
		if p != nil && p.syms.p != nil {
			sink++
		}
	}
	for _, p := range series[:len(hashes)] {
		if p != nil && p.syms.p != nil {
			sink += uint64(*p.syms.p)
		}
	}
	return sink
}
