package tsdb

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// checkHashmap verifies the table's invariants: count matches the filled
// slots, and every series is reached from its home slot without crossing
// an empty one.
func checkHashmap(t *testing.T, m *seriesHashmap) {
	t.Helper()
	tab := m.table.Load()
	if tab == nil {
		if m.count != 0 {
			t.Fatalf("no table for %d series", m.count)
		}
		return
	}
	if n := len(tab.slots); n&(n-1) != 0 {
		t.Fatalf("%d slots: not a power of two", n)
	}
	filled := 0
	for i := range tab.slots {
		sl := &tab.slots[i]
		if sl.s.Load() == nil {
			continue
		}
		filled++
		home := tab.home(sl.hash.Load())
		for j := home; j != i; j = (j + 1) & (len(tab.slots) - 1) {
			if tab.slots[j].s.Load() == nil {
				t.Fatalf("slot %d (home %d) is cut off by the empty slot %d", i, home, j)
			}
		}
	}
	if filled != m.count {
		t.Fatalf("count %d, %d slots filled", m.count, filled)
	}
}

// TestSeriesHashmapAgainstMap runs random adds and removes against a Go
// map. One hash in eight comes from a few values whose high bits put
// their home slots at the end of the table, so that runs collide, hold
// label sets of equal hash, and wrap around to the start.
func TestSeriesHashmapAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	hashes := []uint64{0xffffffff_00000001, 0xfffffffe_00000002, 0xffffffff_00000003, 0x00000000_00000004, 0x12345678_00000005}
	st := newSymbolTable()
	var m seriesHashmap
	want := map[*memSeries]uint64{}
	var all []*memSeries
	for op := range 20_000 {
		if len(all) == 0 || r.IntN(5) < 3 {
			lset := labels.FromStrings("__name__", fmt.Sprint("m", op))
			hash := r.Uint64()
			if r.IntN(8) == 0 {
				hash = hashes[r.IntN(len(hashes))]
			}
			if m.get(hash, lset, st) != nil {
				t.Fatalf("op %d: a new label set was found", op)
			}
			s := newMemSeries(SeriesRef(op), st.internSyms(lset))
			m.set(hash, s)
			want[s] = hash
			all = append(all, s)
		} else {
			i := r.IntN(len(all))
			s := all[i]
			all[i] = all[len(all)-1]
			all = all[:len(all)-1]
			m.del(want[s], s)
			delete(want, s)
			m.del(want[s], s) // removing what is gone changes nothing
		}
		if op%97 == 0 || len(all) < 40 {
			checkHashmap(t, &m)
		}
		if op%1009 == 0 || len(all) < 40 {
			for s, hash := range want {
				lset := st.labels(new(labels.ScratchBuilder), s.syms.refs())
				if got := m.get(hash, lset, st); got != s {
					t.Fatalf("op %d: get(%x, %s) = %v, want series %d", op, hash, lset, got, s.ref)
				}
				if got := m.getBySyms(hash, s.syms.refs()); got != s {
					t.Fatalf("op %d: getBySyms(%x) = %v, want series %d", op, hash, got, s.ref)
				}
			}
		}
	}
}

func TestSeriesHashmapDeleteKeepsConflicts(t *testing.T) {
	st := newSymbolTable()
	var m seriesHashmap
	a, b := labels.FromStrings("__name__", "a"), labels.FromStrings("__name__", "b")
	sa, sb := newMemSeries(1, st.internSyms(a)), newMemSeries(2, st.internSyms(b))
	m.set(7, sa)
	m.set(7, sb)
	m.del(7, sa)
	if m.get(7, b, st) != sb || m.get(7, a, st) != nil {
		t.Fatal("deleting the first of two colliding series lost the second")
	}
	m.del(7, sb)
	if m.count != 0 || m.table.Load() != nil {
		t.Fatalf("table not empty: %d series, %d slots", m.count, m.size())
	}
}

// TestSeriesHashmapShrinks: a stripe that held many series and lost them
// to eviction gives its slots back.
func TestSeriesHashmapShrinks(t *testing.T) {
	st := newSymbolTable()
	var m seriesHashmap
	var all []*memSeries
	for i := range 4096 {
		s := newMemSeries(SeriesRef(i), st.internSyms(labels.FromStrings("__name__", fmt.Sprint(i))))
		m.set(uint64(i)*0x9e3779b97f4a7c15, s)
		all = append(all, s)
	}
	if m.size() < 4096*4/3 {
		t.Fatalf("%d slots hold 4096 series: fuller than 3/4", m.size())
	}
	for i, s := range all[:4090] {
		m.del(uint64(i)*0x9e3779b97f4a7c15, s)
	}
	checkHashmap(t, &m)
	if m.size() > 64 {
		t.Fatalf("%d slots for 6 series after deletes", m.size())
	}
}

func TestSeriesHashmapReserve(t *testing.T) {
	var m seriesHashmap
	m.reserve(1000)
	n := m.size()
	if n < 1000*4/3 {
		t.Fatalf("reserve(1000) made %d slots", n)
	}
	st := newSymbolTable()
	for i := range 1000 {
		m.set(uint64(i)<<32, newMemSeries(SeriesRef(i), st.internSyms(labels.FromStrings("__name__", fmt.Sprint(i)))))
	}
	if m.size() != n {
		t.Fatalf("the reserved table was rebuilt: %d slots, then %d", n, m.size())
	}
	checkHashmap(t, &m)
}

// TestSeriesStripeIsOneCacheLine: the lock and the table's header share
// a line, which is the point of the stripe's layout.
func TestSeriesStripeIsOneCacheLine(t *testing.T) {
	if n := unsafe.Sizeof(seriesStripe{}); n != 64 {
		t.Fatalf("seriesStripe is %d bytes, want 64", n)
	}
}

// TestPrefetchWhileWriting runs prefetch without locks against writers
// that add, remove and resize under the stripe locks: under the race
// detector it shows the lock-free reads are atomic, and prefetch must
// neither fail on tables that change under it nor change what lookups
// find.
func TestPrefetchWhileWriting(t *testing.T) {
	st := newSymbolTable()
	ss := newStripeSeries(4)
	const n = 2000
	all := make([]*memSeries, n)
	hashes := make([]uint64, n)
	for i := range all {
		all[i] = newMemSeries(SeriesRef(i+1), st.internSyms(labels.FromStrings("__name__", fmt.Sprint(i))))
		hashes[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range 20 {
			for i, s := range all {
				sp := ss.stripe(hashes[i])
				sp.Lock()
				if round%2 == 0 {
					sp.set(hashes[i], s)
				} else {
					sp.del(hashes[i], s)
				}
				sp.Unlock()
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		ss.prefetch(hashes)
	}
	for i := range ss.stripes {
		checkHashmap(t, &ss.stripes[i].seriesHashmap)
		if ss.stripes[i].count != 0 {
			t.Fatalf("stripe %d holds %d series after the last round removed all", i, ss.stripes[i].count)
		}
	}
}
