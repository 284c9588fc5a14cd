package tsdb

import (
	"sync"

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
// a lookup reads the stripe (its lock shares the cache line) and then
// one run of slots, four to a cache line.
//
// Invariant: len(slots) is 0 or a power of two; count slots hold a
// series; every series sits in the probe run that starts at its home
// slot with no empty slot before it (deletions shift later slots back
// rather than leave tombstones).
type seriesHashmap struct {
	slots []hashSlot
	count int
}

type hashSlot struct {
	hash uint64
	s    *memSeries // nil: empty
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
func (m *seriesHashmap) home(hash uint64) int {
	return int(hash>>32) & (len(m.slots) - 1)
}

// find returns the slot holding a series with hash for which eq holds,
// or -1.
func (m *seriesHashmap) find(hash uint64, eq func(*memSeries) bool) int {
	if m.count == 0 {
		return -1
	}
	mask := len(m.slots) - 1
	for i := m.home(hash); ; i = (i + 1) & mask {
		sl := &m.slots[i]
		if sl.s == nil {
			return -1
		}
		if sl.hash == hash && eq(sl.s) {
			return i
		}
	}
}

func (m *seriesHashmap) get(hash uint64, lset labels.Labels, st *symbolTable) *memSeries {
	if m.count == 0 {
		return nil
	}
	// The loop of find, written out: a closure capturing lset and st
	// costs an allocation on the hottest path of ingest.
	mask := len(m.slots) - 1
	for i := m.home(hash); ; i = (i + 1) & mask {
		sl := &m.slots[i]
		if sl.s == nil {
			return nil
		}
		if sl.hash == hash && st.equal(sl.s.syms, lset) {
			return sl.s
		}
	}
}

// getBySyms is get for a series spelled by syms: two label sets are equal
// when their symbol refs are.
func (m *seriesHashmap) getBySyms(hash uint64, syms symRefs) *memSeries {
	if i := m.find(hash, func(s *memSeries) bool { return s.syms == syms }); i >= 0 {
		return m.slots[i].s
	}
	return nil
}

// set adds s under hash. The caller has checked that no series with s's
// labels is present.
func (m *seriesHashmap) set(hash uint64, s *memSeries) {
	if (m.count+1)*4 > len(m.slots)*growAtQuarters {
		m.resize(max(minHashmapSlots, len(m.slots)*2))
	}
	m.insert(hash, s)
	m.count++
}

// reserve sizes an empty table for n series, so that loading them at
// start does not rebuild it as it fills.
func (m *seriesHashmap) reserve(n int) {
	if m.count > 0 || n == 0 {
		return
	}
	size := minHashmapSlots
	for n*4 > size*growAtQuarters {
		size *= 2
	}
	m.slots = make([]hashSlot, size)
}

func (m *seriesHashmap) insert(hash uint64, s *memSeries) {
	mask := len(m.slots) - 1
	i := m.home(hash)
	for m.slots[i].s != nil {
		i = (i + 1) & mask
	}
	m.slots[i] = hashSlot{hash: hash, s: s}
}

func (m *seriesHashmap) resize(size int) {
	old := m.slots
	m.slots = make([]hashSlot, size)
	for _, sl := range old {
		if sl.s != nil {
			m.insert(sl.hash, sl.s)
		}
	}
}

// del removes s, stored under hash, if present.
func (m *seriesHashmap) del(hash uint64, s *memSeries) {
	i := m.find(hash, func(x *memSeries) bool { return x == s })
	if i < 0 {
		return
	}
	m.deleteSlot(i)
	m.count--
	if m.count == 0 {
		m.slots = nil
	} else if len(m.slots) > minHashmapSlots && m.count*8 < len(m.slots)*shrinkAtEighth {
		m.resize(len(m.slots) / 2)
	}
}

// deleteSlot empties slot i and moves back the later slots of its run
// that may no longer be reached past the gap (Knuth's algorithm R for
// linear probing), so that lookups never need tombstones.
func (m *seriesHashmap) deleteSlot(i int) {
	mask := len(m.slots) - 1
	for j := (i + 1) & mask; m.slots[j].s != nil; j = (j + 1) & mask {
		h := m.home(m.slots[j].hash)
		// The slot at j stays when its home lies cyclically in (i, j]:
		// its run does not cross the gap at i.
		if i <= j {
			if i < h && h <= j {
				continue
			}
		} else if i < h || h <= j {
			continue
		}
		m.slots[i] = m.slots[j]
		i = j
	}
	m.slots[i] = hashSlot{}
}

// each calls fn with every series of the table and its hash.
func (m *seriesHashmap) each(fn func(hash uint64, s *memSeries)) {
	for _, sl := range m.slots {
		if sl.s != nil {
			fn(sl.hash, sl.s)
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
	_ [64 - 24 - 32]byte
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
