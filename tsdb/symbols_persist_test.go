package tsdb

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/prometheus/model/labels"
)

// testSymbolRecords writes symbol records for tests that build a store's
// series records by hand.
type testSymbolRecords struct {
	wb   *badger.WriteBatch
	ids  map[string]uint32
	next uint32
	err  error
}

func newTestSymbolRecords(wb *badger.WriteBatch) *testSymbolRecords {
	return &testSymbolRecords{wb: wb, ids: map[string]uint32{}, next: 1}
}

// pid returns the pid of s, a new one if s has none or fresh is set,
// whose record it writes.
func (r *testSymbolRecords) pid(s string, fresh bool) uint32 {
	if pid, ok := r.ids[s]; ok && !fresh {
		return pid
	}
	pid := r.next
	r.next++
	r.ids[s] = pid
	if err := r.wb.Set(symbolKey(pid), []byte(s)); err != nil && r.err == nil {
		r.err = err
	}
	return pid
}

// pids spells lset as pids.
func (r *testSymbolRecords) pids(lset labels.Labels, fresh bool) []uint32 {
	var out []uint32
	lset.Range(func(l labels.Label) { out = append(out, r.pid(l.Name, fresh), r.pid(l.Value, fresh)) })
	return out
}

// TestPersistedIDs follows pids through the symbol table: handed out once
// per string, known durable only once marked, forgotten with the string
// (which comes back under a new pid, never a reused one), and refused
// when the pid space is used up.
func TestPersistedIDs(t *testing.T) {
	st := newSymbolTable()
	refs := st.internLabels(labels.FromStrings("a", "1", "b", "2"))
	pids, need, ok := st.persistedIDs(refs, nil, nil)
	if !ok || !slices.Equal(pids, []uint32{1, 2, 3, 4}) || len(need) != 4 {
		t.Fatalf("first spelling: pids %v, need %v, ok %v", pids, need, ok)
	}
	again, need2, _ := st.persistedIDs(refs, nil, nil)
	if !slices.Equal(again, pids) || len(need2) != 4 {
		t.Fatalf("before the batch is flushed: pids %v, need %v; want the same pids, all needed", again, need2)
	}
	st.markDurable(need[:2])
	if _, need3, _ := st.persistedIDs(refs, nil, nil); len(need3) != 2 || need3[0].pid != 3 {
		t.Fatalf("after marking pids 1 and 2 durable, need %v", need3)
	}
	st.release(refs)
	refs = st.internLabels(labels.FromStrings("a", "1", "c", "3"))
	pids, need, _ = st.persistedIDs(refs, nil, nil)
	if !slices.Equal(pids, []uint32{5, 6, 7, 8}) || len(need) != 4 {
		t.Fatalf("strings that came back: pids %v, need %v; want new pids 5-8", pids, need)
	}
	st.markDurable([]pendingSymbol{{id: need[0].id, pid: 1}}) // the slot's old pid
	if _, need, _ = st.persistedIDs(refs, nil, nil); len(need) != 4 {
		t.Fatalf("marking a slot's old pid made %d of 4 durable", 4-len(need))
	}
	st.mu.Lock()
	st.nextPID = pidDurable - 1
	st.mu.Unlock()
	last := st.internLabels(labels.FromStrings("d", "4"))
	if _, _, ok := st.persistedIDs(last, nil, nil); ok {
		t.Fatal("two pids handed out past the last one")
	}
}

// TestRecordWriterWritesEachSymbolOnce writes two appends of series that
// share strings: the first holds each symbol record once, ahead of the
// series records naming it; the second writes only the strings new to
// it; an append that failed leaves its symbols to be written again.
func TestRecordWriterWritesEachSymbolOnce(t *testing.T) {
	st := newSymbolTable()
	series := func(from, to int) []*memSeries {
		var out []*memSeries
		for i := from; i < to; i++ {
			lset := labels.FromStrings("__name__", "up", "instance", fmt.Sprint(i))
			out = append(out, newMemSeries(SeriesRef(i+1), st.internSyms(lset)))
		}
		return out
	}
	x := newTestSeriesIndex(t)
	var w recordWriter
	batch := func(ss []*memSeries) (symbols []string) {
		t.Helper()
		for _, s := range ss {
			w.add(st, s, seriesRecord{})
		}
		seen := map[uint32]bool{}
		eachTestRecord(t, w.frames.bytes(), func(typ byte, id uint64, rest []byte) {
			switch typ {
			case indexRecordSymbol:
				seen[uint32(id)] = true
				symbols = append(symbols, string(rest))
			case indexRecordSeries:
				d := decbuf{b: rest}
				d.varint()
				d.varint()
				d.uint64()
				d.b = d.b[2:] // section type and count
				for range d.uvarint() * 2 {
					if pid := uint32(d.uvarint()); !seen[pid] && !durable(st, pid) {
						t.Fatalf("series record names pid %d before its symbol record", pid)
					}
				}
			}
		})
		return symbols
	}
	if got := batch(series(0, 3)); !slices.Equal(got, []string{"__name__", "up", "instance", "0", "1", "2"}) {
		t.Fatalf("first append wrote symbols %q", got)
	}
	if err := w.write(x, st, nil); err != nil {
		t.Fatal(err)
	}
	if got := batch(series(2, 5)); !slices.Equal(got, []string{"3", "4"}) {
		t.Fatalf("second append wrote symbols %q, want only the new strings", got)
	}
	w.reset() // the append failed
	if got := batch(series(3, 5)); !slices.Equal(got, []string{"3", "4"}) {
		t.Fatalf("after a failed append, wrote symbols %q, want its strings again", got)
	}
}

// durable reports whether pid is marked durable in st.
func durable(st *symbolTable, pid uint32) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Contains(st.pids, pid|pidDurable)
}

// TestSeriesRecordsNameSymbols runs the store's series records through a
// DB: written by the index writer and by a checkpoint as pids, each
// string's symbol record once; loaded after a crash with the same labels;
// new strings get pids above every earlier one; and symbol records no
// series names are dropped at the next rewrite of the index.
func TestSeriesRecordsNameSymbols(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	db := openTestDB(t, dir, o)
	want := map[string]bool{}
	add := func(db *DB, from, to int, extra string) {
		t.Helper()
		for i := from; i < to; i++ {
			lset := labels.FromStrings("__name__", fmt.Sprint("m_", i%5), "cluster", fmt.Sprint("c-", i%7), "instance", fmt.Sprint(i), "x", extra)
			if err := dbAppend(t, db, lset, 1000, 1); err != nil {
				t.Fatal(err)
			}
			want[lset.String()] = true
		}
	}
	add(db, 0, 200, "a")
	var w indexWriter
	if err := w.write(db, db.head.created.take()); err != nil {
		t.Fatal(err)
	}
	add(db, 200, 250, "b")
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	symbols := indexedSymbols(t, db)
	if got, want := len(symbols), 4+5+7+250+2; got != want { // label names, metric names, clusters, instances, values of x
		t.Fatalf("%d symbol records, want %d: %v", got, want, symbols)
	}
	maxPID := slices.Max(slices.Collect(maps.Keys(symbols)))
	crash(t, db)

	db = openTestDB(t, dir, o)
	checkSelect := func(db *DB) {
		t.Helper()
		got := dbSelect(t, db, 0, 2000, matchAll)
		if len(got) != len(want) {
			t.Fatalf("%d series after the restart, want %d", len(got), len(want))
		}
		for k := range got {
			if !want[k] {
				t.Fatalf("series %s after the restart, never written", k)
			}
		}
	}
	checkSelect(db)
	add(db, 250, 260, "c")
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	after := indexedSymbols(t, db)
	for pid, s := range after {
		if _, old := symbols[pid]; !old && pid <= maxPID {
			t.Fatalf("new symbol %q got pid %d, not above the store's %d", s, pid, maxPID)
		}
	}
	if got := len(after) - len(symbols); got != 10+1 {
		t.Fatalf("%d symbol records added for 10 series with a new value each and one new extra value, want 11", got)
	}
	var garbage indexFrames
	garbage.symbol(maxPID+1000, "garbage")
	if err := db.index.append(&garbage, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir, o)
	defer db.Close()
	checkSelect(db)
	db.checkpointMu.Lock()
	err := db.rewriteIndex()
	db.checkpointMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got := indexedSymbols(t, db); !maps.Equal(got, after) {
		t.Fatalf("after a rewrite the index holds %d symbol records, want the %d named", len(got), len(after))
	}
	checkSelect(db)
}
