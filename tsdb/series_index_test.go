package tsdb

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/prometheus/prometheus/model/labels"
)

// newTestSeriesIndex returns an empty series index file in a temporary
// directory.
func newTestSeriesIndex(t *testing.T) *seriesIndex {
	t.Helper()
	path := filepath.Join(t.TempDir(), seriesIndexName)
	f, size, records, symbols, err := writeSeriesIndex(path, func(*indexFrames, func() error) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	x := &seriesIndex{path: path, f: f, size: size, records: records, symbols: symbols}
	t.Cleanup(func() { x.close() })
	return x
}

// eachTestRecord calls fn with every record of frames.
func eachTestRecord(t *testing.T, frames []byte, fn func(typ byte, id uint64, rest []byte)) {
	t.Helper()
	for off := 0; off < len(frames); {
		payload, next, ok := readFrame(frames, off)
		if !ok {
			t.Fatalf("bad frame at %d", off)
		}
		err := eachIndexRecord(payload, func(typ byte, _ int, id uint64, rest []byte) error {
			fn(typ, id, rest)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		off = next
	}
}

// readTestIndex returns what the series index file at path holds: the
// records that count, by ref, and the symbol records, by pid.
func readTestIndex(t *testing.T, path string) (map[SeriesRef][]byte, map[uint32]string) {
	t.Helper()
	li, found, err := readSeriesIndex(path)
	if err != nil || !found {
		t.Fatalf("read series index: found %v, %v", found, err)
	}
	defer li.release()
	records := map[SeriesRef][]byte{}
	for _, e := range li.entries {
		records[e.ref] = bytes.Clone(li.record(e))
	}
	symbols := map[uint32]string{}
	for i, pid := range li.dict.pids {
		symbols[pid] = strings.Clone(li.dict.strs[i])
	}
	return records, symbols
}

// indexedRecords returns the series records db's index file holds.
func indexedRecords(t *testing.T, db *DB) map[SeriesRef][]byte {
	t.Helper()
	records, _ := readTestIndex(t, db.index.path)
	return records
}

// indexedSymbols returns the symbol records db's index file holds.
func indexedSymbols(t *testing.T, db *DB) map[uint32]string {
	t.Helper()
	_, symbols := readTestIndex(t, db.index.path)
	return symbols
}

// TestSeriesIndexLastRecordCounts appends records over several appends:
// a ref's later record replaces its earlier one, a delete removes it, a
// record after the delete brings it back, and a symbol's later record
// counts; reading the file gives exactly that, whatever the order of
// refs in it.
func TestSeriesIndexLastRecordCounts(t *testing.T) {
	x := newTestSeriesIndex(t)
	rec := func(v int) func([]byte) []byte {
		return func(b []byte) []byte { return appendSeriesRecord(b, seriesRecord{minT: int64(v)}, []uint32{1, 2}) }
	}
	var fr indexFrames
	put := func(ref SeriesRef, v int) { fr.endSeries(rec(v)(fr.seriesBody(ref))) }
	appendAll := func() {
		t.Helper()
		if err := x.append(&fr, nil); err != nil {
			t.Fatal(err)
		}
		fr.reset()
	}
	fr.symbol(1, "__name__")
	fr.symbol(2, "old")
	put(5, 1)
	put(3, 1)
	put(9, 1)
	appendAll()
	fr.symbol(2, "up")
	put(3, 2) // replaces
	fr.delete(9)
	fr.delete(4) // never written
	put(7, 1)
	appendAll()
	put(9, 3) // back after its delete
	fr.delete(7)
	appendAll()

	records, symbols := readTestIndex(t, x.path)
	want := map[SeriesRef][]byte{5: rec(1)(nil), 3: rec(2)(nil), 9: rec(3)(nil)}
	if len(records) != len(want) {
		t.Fatalf("records for refs %v, want %v", slices.Sorted(maps.Keys(records)), slices.Sorted(maps.Keys(want)))
	}
	for ref, r := range want {
		if !bytes.Equal(records[ref], r) {
			t.Errorf("ref %d: record %x, want %x", ref, records[ref], r)
		}
	}
	if symbols[1] != "__name__" || symbols[2] != "up" || len(symbols) != 2 {
		t.Errorf("symbols %v, want the last record of each pid", symbols)
	}
	if x.records != 9 || x.symbols != 3 {
		t.Errorf("counted %d series and delete records and %d symbol records, want 9 and 3", x.records, x.symbols)
	}
}

// TestSeriesIndexTornTail cuts the file after every byte of its last
// append: reading keeps the appends before it whole, reports the rest as
// torn, and the file opened for appending again drops the torn bytes and
// takes new records readably.
func TestSeriesIndexTornTail(t *testing.T) {
	x := newTestSeriesIndex(t)
	var fr indexFrames
	for ref := range SeriesRef(50) {
		fr.endSeries(appendSeriesRecord(fr.seriesBody(ref+1), seriesRecord{}, []uint32{1, 1}))
	}
	fr.symbol(1, "a")
	if err := x.append(&fr, nil); err != nil {
		t.Fatal(err)
	}
	whole := x.size
	fr.reset()
	fr.endSeries(appendSeriesRecord(fr.seriesBody(100), seriesRecord{}, []uint32{1, 1}))
	fr.delete(1)
	if err := x.append(&fr, nil); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(x.path)
	if err != nil {
		t.Fatal(err)
	}
	for cut := whole; cut < int64(len(full)); cut++ {
		path := filepath.Join(t.TempDir(), seriesIndexName)
		if err := os.WriteFile(path, full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		li, _, err := readSeriesIndex(path)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if li.size != whole || li.torn != cut-whole || len(li.entries) != 50 || li.records != 50 {
			t.Fatalf("cut at %d: %d whole bytes, %d torn, %d records, want %d, %d, 50", cut, li.size, li.torn, len(li.entries), whole, cut-whole)
		}
		y, err := openSeriesIndex(path, li.size, li.records, li.symbols)
		li.release()
		if err != nil {
			t.Fatal(err)
		}
		fr.reset()
		fr.delete(2)
		if err := y.append(&fr, nil); err != nil {
			t.Fatal(err)
		}
		y.close()
		if records, _ := readTestIndex(t, path); len(records) != 49 || records[2] != nil {
			t.Fatalf("cut at %d, then a delete appended: %d records", cut, len(records))
		}
	}
}

// TestSeriesIndexMalformed: a file that is not a series index, or whose
// whole frame holds records that do not parse, is refused rather than
// read in part.
func TestSeriesIndexMalformed(t *testing.T) {
	header := appendFrame(nil, seriesIndexMagic)
	record := func(typ byte, body ...byte) []byte { return append([]byte{typ, byte(len(body))}, body...) }
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"empty", nil},
		{"other header", appendFrame(nil, []byte("etcdgate series index\x00\x02"))},
		{"header cut short", header[:len(header)-1]},
		{"unknown record type", appendFrame(header, record('q', 1))},
		{"record past its frame", appendFrame(header, []byte{indexRecordSeries, 9, 1})},
		{"record without a ref", appendFrame(header, record(indexRecordSeries, 0x80))},
		{"delete with a body", appendFrame(header, record(indexRecordDelete, 1, 2))},
		{"symbol id 0", appendFrame(header, record(indexRecordSymbol, 0, 'a'))},
		{"symbol id past 31 bits", appendFrame(header, record(indexRecordSymbol, 0x80, 0x80, 0x80, 0x80, 0x08, 'a'))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), seriesIndexName)
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			if li, _, err := readSeriesIndex(path); err == nil {
				li.release()
				t.Fatal("read without an error")
			}
		})
	}
}

// FuzzSeriesIndex reads arbitrary bytes after a valid header: never a
// panic, and what it accepts is records whose bodies lie in the file,
// the whole frames followed only by torn bytes.
func FuzzSeriesIndex(f *testing.F) {
	var fr indexFrames
	fr.symbol(1, "__name__")
	fr.endSeries(appendSeriesRecord(fr.seriesBody(7), seriesRecord{minT: 1, maxT: 2}, []uint32{1, 1}))
	fr.delete(7)
	f.Add(fr.bytes())
	f.Add(fr.bytes()[:10])
	f.Add(appendFrame(nil, []byte{indexRecordSeries, 3, 0x80, 0x80, 1}))
	f.Add([]byte{})
	header := appendFrame(nil, seriesIndexMagic)
	f.Fuzz(func(t *testing.T, tail []byte) {
		li := &loadedIndex{data: append(slices.Clone(header), tail...)}
		if err := li.parse(); err != nil {
			return
		}
		if li.size+li.torn != int64(len(li.data)) || li.size < int64(len(header)) {
			t.Fatalf("%d whole and %d torn bytes of %d", li.size, li.torn, len(li.data))
		}
		for i, e := range li.entries {
			if i > 0 && li.entries[i-1].ref >= e.ref {
				t.Fatal("entries not by ref, or a ref twice")
			}
			if e.off >= uint64(li.size) {
				t.Fatalf("record at %d past the whole frames", e.off)
			}
			li.record(e)
		}
	})
}

// TestLoadSeriesFromFileMatchesSequential loads series from a series
// index file whose records were replaced and deleted along the way, in no
// particular ref order: each series has its last record, and on 1 to 8
// workers the head is the one loading them one by one builds.
func TestLoadSeriesFromFileMatchesSequential(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type written struct {
		ref  SeriesRef
		lset labels.Labels
		rec  seriesRecord
	}
	var all []written
	ref := SeriesRef(0)
	for i := range 3000 {
		ref += SeriesRef(1 + rng.IntN(3))
		if i%700 == 699 {
			ref += 50_000
		}
		lset := labels.FromStrings("__name__", fmt.Sprint("m_", rng.IntN(9)), "cluster", fmt.Sprint("c-", i/200), "i", fmt.Sprint(i))
		all = append(all, written{ref, lset, seriesRecord{minT: int64(rng.IntN(1000)), maxT: int64(1000 + rng.IntN(1000)), lastV: rng.Uint64()}})
	}
	path := filepath.Join(t.TempDir(), seriesIndexName)
	pids := map[string]uint32{}
	pidsOf := func(fr *indexFrames, lset labels.Labels) []uint32 {
		var out []uint32
		lset.Range(func(l labels.Label) {
			for _, s := range []string{l.Name, l.Value} {
				pid, ok := pids[s]
				if !ok {
					pid = uint32(len(pids) + 1)
					pids[s] = pid
					fr.symbol(pid, s)
				}
				out = append(out, pid)
			}
		})
		return out
	}
	f, _, _, _, err := writeSeriesIndex(path, func(fr *indexFrames, flush func() error) error {
		order := rng.Perm(len(all))
		for k, i := range order {
			w := all[i]
			stale := w.rec
			stale.maxT = -1
			if k%5 == 0 { // an older record first, replaced below
				fr.endSeries(appendSeriesRecord(fr.seriesBody(w.ref), stale, pidsOf(fr, w.lset)))
			}
			if k%13 == 0 { // deleted, then written again
				fr.delete(w.ref)
			}
			if k%3 == 0 {
				fr.endSeries(appendSeriesValue(fr.seriesBody(w.ref), w.rec, w.lset))
			} else {
				fr.endSeries(appendSeriesRecord(fr.seriesBody(w.ref), w.rec, pidsOf(fr, w.lset)))
			}
			if k%17 == 0 {
				fr.delete(w.ref + 1_000_000) // never written
			}
			if k%400 == 0 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	li, _, err := readSeriesIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer li.release()
	if len(li.entries) != len(all) {
		t.Fatalf("%d records read, want %d", len(li.entries), len(all))
	}
	load := func(workers int) *Head {
		t.Helper()
		db := &DB{head: newTestHead(t, nil), opts: Options{sequentialLoad: workers == 0}}
		use := newSymbolUse(li.dict)
		var err error
		if workers == 0 {
			err = db.loadSeriesSequential(fileRecords{li}, li.dict, use)
		} else {
			err = db.loadSeriesWorkers(fileRecords{li}, li.dict, use, workers)
		}
		if err != nil {
			t.Fatal(err)
		}
		db.head.symbols.adoptPIDs(li.dict, use)
		return db.head
	}
	want := load(0)
	if n := want.NumIndexedSeries(); n != int64(len(all)) {
		t.Fatalf("%d series loaded, want %d", n, len(all))
	}
	for _, w := range all {
		s := want.series.getByRef(w.ref)
		if s == nil || s.maxT != w.rec.maxT || s.lastV != w.rec.lastV {
			t.Fatalf("series %d: %+v, want the last record %+v", w.ref, s, w.rec)
		}
	}
	for _, workers := range []int{1, 2, 3, 8} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) { compareHeads(t, load(workers), want) })
	}
}

// toLegacyStore turns the closed store in dir into one written before
// the series index file: its series and symbol records in badger, no
// file.
func toLegacyStore(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, seriesIndexName)
	records, symbols := readTestIndex(t, path)
	st, err := openStore(filepath.Join(dir, "badger"), 7_200_000, options.None, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	wb := st.db.NewWriteBatch()
	for pid, s := range symbols {
		if err := wb.Set(symbolKey(pid), []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	for ref, rec := range records {
		if err := wb.Set(seriesKey(prefixSeries, ref), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(wb.Flush(), st.close(), os.Remove(path)); err != nil {
		t.Fatal(err)
	}
}

// legacyKeys counts the series and symbol records badger holds.
func legacyKeys(t *testing.T, db *DB) int {
	t.Helper()
	n := 0
	for _, p := range []byte{prefixSeries, prefixSymbol} {
		if err := db.store.scan(p, func(_, _ []byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestSeriesIndexMovedFromBadger opens a store whose series records are
// in badger, as stores were written before the series index file: every
// series and sample is there, the records are in a new file and gone
// from badger, and the next start reads the file. Records that a start
// which moved them left in badger (it stopped before dropping them) are
// dropped, not read.
func TestSeriesIndexMovedFromBadger(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	db := openTestDB(t, dir, o)
	for i := range 300 {
		lset := labels.FromStrings("__name__", fmt.Sprint("m_", i%4), "i", fmt.Sprint(i))
		for ts := int64(1000); ts <= 3000; ts += 1000 {
			if err := dbAppend(t, db, lset, ts, float64(ts)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := dbSelect(t, db, 0, 10_000, matchAll)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	toLegacyStore(t, dir)

	db = openTestDB(t, dir, o)
	if got := dbSelect(t, db, 0, 10_000, matchAll); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the move, %d series differ from the %d written", len(got), len(want))
	}
	if n := legacyKeys(t, db); n != 0 {
		t.Fatalf("badger still holds %d series and symbol records", n)
	}
	if n := len(indexedRecords(t, db)); n != 300 {
		t.Fatalf("the series index file holds %d records, want 300", n)
	}
	records, symbols := readTestIndex(t, db.index.path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A start that moved the records and stopped before dropping them.
	st, err := openStore(filepath.Join(dir, "badger"), 7_200_000, options.None, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	wb := st.db.NewWriteBatch()
	for ref, rec := range records {
		if err := wb.Set(seriesKey(prefixSeries, ref+1_000_000), rec); err != nil { // not in the file
			t.Fatal(err)
		}
	}
	for pid, s := range symbols {
		if err := wb.Set(symbolKey(pid), []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(wb.Flush(), st.close()); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir, o)
	defer db.Close()
	if got := dbSelect(t, db, 0, 10_000, matchAll); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the second start, %d series differ from the %d written", len(got), len(want))
	}
	if n := db.head.NumIndexedSeries(); n != 300 {
		t.Fatalf("%d series indexed, want the file's 300", n)
	}
	if n := legacyKeys(t, db); n != 0 {
		t.Fatalf("badger still holds %d series and symbol records left by the move", n)
	}
}

// TestSeriesIndexRewrite rewrites an index file that holds replaced and
// deleted records (series deactivated, evicted, one revived): the new
// file holds one record for each series of the index and is smaller,
// appends go on into it, and after a crash the same series and samples
// load from it.
func TestSeriesIndexRewrite(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	db := openTestDB(t, dir, o)
	const minute = 60000
	writePods(t, db, "old", 50, 0, 30*minute)
	writePods(t, db, "new", 50, 30*minute, 60*minute)
	checkpoint(t, db) // the old pods are deactivated: records written again
	checkpoint(t, db) // and evicted: deleted
	writePods(t, db, "old", 1, 60*minute, 61*minute)
	checkpoint(t, db)
	if n := db.head.NumIndexedSeries(); n != 51 {
		t.Fatalf("%d series indexed, want 51", n)
	}
	before := db.index.fileSize()
	if db.index.records <= 150 {
		t.Fatalf("the file holds %d series and delete records, want more than the 150 of replaced and deleted ones", db.index.records)
	}
	db.checkpointMu.Lock()
	err := db.rewriteIndex()
	db.checkpointMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if db.index.records != 51 || db.index.fileSize() >= before {
		t.Fatalf("rewritten: %d records in %d bytes, want 51 in fewer than %d", db.index.records, db.index.fileSize(), before)
	}
	records, _ := readTestIndex(t, db.index.path)
	for ref := range records {
		if db.head.series.getByRef(ref) == nil {
			t.Fatalf("the rewritten file holds series %d, which the index does not", ref)
		}
	}
	writePods(t, db, "later", 10, 61*minute, 62*minute)
	var w indexWriter
	if err := w.write(db, db.head.created.take()); err != nil {
		t.Fatal(err)
	}
	want := dbSelect(t, db, 0, 62*minute, matchAll)
	crash(t, db)

	db = openTestDB(t, dir, o)
	defer db.Close()
	if n := db.head.NumIndexedSeries(); n != 61 {
		t.Fatalf("%d series loaded after the crash, want 61", n)
	}
	if got := dbSelect(t, db, 0, 62*minute, matchAll); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the crash %d series differ from the %d before it", len(got), len(want))
	}
}

// TestSeriesIndexOvergrown: a file is rewritten once it holds more than
// twice the records or symbols the head would write, past some slack,
// or when a failed append left it broken.
func TestSeriesIndexOvergrown(t *testing.T) {
	x := &seriesIndex{records: 3 << 16, symbols: 10}
	if x.overgrown(1<<16, 10) {
		t.Error("3·2^16 records for 2^16 series: rewritten, want kept (within the slack)")
	}
	if !x.overgrown(1<<14, 10) {
		t.Error("3·2^16 records for 2^14 series: kept, want rewritten")
	}
	x.records, x.symbols = 10, 1<<18
	if !x.overgrown(10, 100) {
		t.Error("2^18 symbol records for 100 symbols: kept, want rewritten")
	}
	x.symbols, x.broken = 10, errBadSeriesIndex
	if !x.overgrown(10, 10) {
		t.Error("a broken file: kept, want rewritten")
	}
}

// TestSeriesIndexBrokenUntilRewrite: an append whose write fails and
// cannot be cut off the file leaves it refusing appends, rather than
// writing after a partial frame, until a rewrite replaces the file.
func TestSeriesIndexBrokenUntilRewrite(t *testing.T) {
	x := newTestSeriesIndex(t)
	var fr indexFrames
	fr.delete(1)
	x.f.Close() // the write fails, and so does the cut
	if err := x.append(&fr, nil); err == nil {
		t.Fatal("append to a closed file succeeded")
	}
	called := false
	if err := x.append(&fr, func() { called = true }); err == nil || called {
		t.Fatalf("append after a failed cut: %v, then called %v; want refused", err, called)
	}
	if !x.overgrown(0, 0) {
		t.Fatal("a broken file is not due for a rewrite")
	}
	err := x.rewrite(func(fr *indexFrames, _ func() error) error {
		fr.endSeries(appendSeriesRecord(fr.seriesBody(7), seriesRecord{}, []uint32{1, 1}))
		fr.symbol(1, "a")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fr.reset()
	fr.endSeries(appendSeriesRecord(fr.seriesBody(8), seriesRecord{}, []uint32{1, 1}))
	if err := x.append(&fr, nil); err != nil {
		t.Fatalf("append after the rewrite: %v", err)
	}
	if records, _ := readTestIndex(t, x.path); len(records) != 2 {
		t.Fatalf("%d records after the rewrite and an append, want 2", len(records))
	}
}
