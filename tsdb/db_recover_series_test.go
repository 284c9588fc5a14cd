package tsdb

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/prometheus/prometheus/model/labels"
)

// TestLoadSeriesMatchesSequential writes series records of varied labels
// straight into a store (refs with holes, some wide enough apart to make
// many ranges, label sets that repeat under a later ref, values shared by
// many series and unique to one) and loads them with loadSeries on 1 to 8
// workers and with the one-by-one path: the index, symbol table, maps,
// series state and accounting must be the same.
func TestLoadSeriesMatchesSequential(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(filepath.Join(dir, "badger"), 7_200_000, options.None, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	rng := rand.New(rand.NewPCG(1, 2))
	wb := st.db.NewWriteBatch()
	syms := newTestSymbolRecords(wb)
	for range 30 {
		syms.pid(fmt.Sprint("unused-", rng.IntN(1000)), true) // dropped at load
	}
	var written []labels.Labels
	ref := SeriesRef(0)
	for i := range 5000 {
		ref += SeriesRef(1 + rng.IntN(3))
		if i%1000 == 999 {
			ref += 40_000 // a hole: ranges that hold nothing
		}
		var lset labels.Labels
		switch {
		case i%97 == 96 && len(written) > 0:
			lset = written[rng.IntN(len(written))] // the same labels under a later ref
		default:
			b := labels.NewScratchBuilder(16)
			b.Add("__name__", fmt.Sprintf("metric_%d", rng.IntN(20)))
			b.Add("cluster", fmt.Sprintf("c-%d", i/300))
			b.Add("instance", fmt.Sprintf("10.0.%d.%d:2379", i/256%256, i%256))
			for k := range rng.IntN(6) {
				b.Add(fmt.Sprintf("extra_%d", k), fmt.Sprintf("v%d", rng.IntN(1+k*50)))
			}
			if i%7 == 0 {
				b.Add("unicode", "żółw-ü-"+fmt.Sprint(i))
			}
			b.Sort()
			lset = b.Labels()
			written = append(written, lset)
		}
		rec := seriesRecord{minT: int64(rng.IntN(1000)), maxT: int64(1000 + rng.IntN(1000)), lastV: rng.Uint64()}
		if i%50 == 0 {
			rec = seriesRecord{minT: maxInt64, maxT: minInt64} // no samples
		}
		// Records as the store writes them (labels as pids, some strings
		// under a second pid) and as it wrote them before pids.
		val := appendSeriesValue(nil, rec, lset)
		if i%3 != 0 {
			val = appendSeriesRecord(nil, rec, syms.pids(lset, i%11 == 0))
		}
		if err := wb.Set(seriesKey(prefixSeries, ref), val); err != nil {
			t.Fatal(err)
		}
	}
	if err := syms.err; err != nil {
		t.Fatal(err)
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	var wantUse symbolUse
	load := func(workers int) *Head {
		t.Helper()
		db := &DB{head: newTestHead(t, nil), store: st}
		dict, err := st.readSymbols()
		if err != nil {
			t.Fatal(err)
		}
		use := newSymbolUse(dict)
		if workers == 0 {
			err = db.loadSeriesSequential(legacyRecords{st}, dict, use)
			wantUse = use
		} else {
			err = db.loadSeriesWorkers(legacyRecords{st}, dict, use, workers)
			if !reflect.DeepEqual(use, wantUse) {
				t.Errorf("symbol records in use differ: %v, sequentially %v", use, wantUse)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		db.head.symbols.adoptPIDs(dict, use)
		return db.head
	}
	want := load(0)
	if n := want.NumIndexedSeries(); n < 4900 {
		t.Fatalf("%d series loaded sequentially", n)
	}
	for _, workers := range []int{1, 2, 3, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			compareHeads(t, load(workers), want)
		})
	}
}

// compareHeads fails t where got's index differs from want's.
func compareHeads(t *testing.T, got, want *Head) {
	t.Helper()
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"indexed series", got.numIndexed.Load(), want.numIndexed.Load()},
		{"active series", got.NumSeries(), want.NumSeries()},
		{"chunk bytes", got.chunkBytes.Load(), want.chunkBytes.Load()},
		{"index bytes", got.indexBytes.Load(), want.indexBytes.Load()},
		{"head bytes besides postings", got.Bytes() - got.index.bytes(), want.Bytes() - want.index.bytes()},
		{"last ref", got.lastRef.Load(), want.lastRef.Load()},
		{"min time", got.MinTime(), want.MinTime()},
		{"max time", got.MaxTime(), want.MaxTime()},
		{"symbols", got.symbols.load(), want.symbols.load()},
		{"symbol counts", got.symbols.count, want.symbols.count},
		{"symbol ids", got.symbols.ids, want.symbols.ids},
		{"symbol pids", got.symbols.pids, want.symbols.pids},
		{"next pid", got.symbols.nextPID, want.symbols.nextPID},
		{"live symbols", got.symbols.len(), want.symbols.len()},
		{"symbol bytes", got.symbols.size(), want.symbols.size()},
		{"postings", postingsContent(got), postingsContent(want)},
		{"all postings", got.index.all.appendTo(nil), want.index.all.appendTo(nil)},
		{"series", seriesStates(got), seriesStates(want)},
		{"hash maps", hashMapRefs(got), hashMapRefs(want)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s differ:\ngot  %v\nwant %v", c.what, brief(c.got), brief(c.want))
		}
	}
}

// postingsContent is the index as plain lists: two heads whose lists
// were packed differently (appended one by one, or built and clipped)
// hold the same postings.
func postingsContent(h *Head) map[string]map[string][]SeriesRef {
	out := map[string]map[string][]SeriesRef{}
	for name, values := range h.index.m {
		out[name] = map[string][]SeriesRef{}
		for v, l := range values {
			out[name][v] = l.appendTo(nil)
		}
	}
	return out
}

func brief(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

type seriesState struct {
	ref                        SeriesRef
	syms                       symRefs
	minT, maxT, persistedMaxT  int64
	lastV                      uint64
	logged, indexPersisted, on bool
	headMinT                   int64
	headBytes                  []byte
}

func seriesStates(h *Head) []seriesState {
	var out []seriesState
	h.series.refs.batches(1024, func(batch []*memSeries) error {
		for _, s := range batch {
			out = append(out, seriesState{ref: s.ref, syms: s.syms.refs(), minT: s.minT, maxT: s.maxT,
				persistedMaxT: s.persistedMaxT, lastV: s.lastV, logged: s.logged.Load(),
				indexPersisted: s.indexPersisted, on: s.active})
			if s.head.open() {
				st := &out[len(out)-1]
				st.headMinT, st.headBytes = s.headMinTLocked(), slices.Clone(s.head.bytes())
			}
		}
		return nil
	})
	return out
}

// hashMapRefs lists each stripe's hash → refs.
func hashMapRefs(h *Head) []map[uint64][]SeriesRef {
	out := make([]map[uint64][]SeriesRef, len(h.series.stripes))
	for i := range h.series.stripes {
		out[i] = map[uint64][]SeriesRef{}
		h.series.stripes[i].each(func(hash uint64, s *memSeries) {
			out[i][hash] = append(out[i][hash], s.ref)
		})
		for _, refs := range out[i] {
			slices.Sort(refs)
		}
	}
	return out
}

// TestRecoverMatchesSequential restarts a DB after a crash (a checkpoint,
// so series records and a head snapshot, then a WAL tail of samples and
// new series) twice from the same files: once with the parallel load of
// series and snapshot, once one by one. The heads must be the same.
func TestRecoverMatchesSequential(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	db := openTestDB(t, dir, o)
	write := func(from, to int, ts int64) {
		app := db.Appender()
		for i := from; i < to; i++ {
			ls := labels.FromStrings("__name__", fmt.Sprintf("etcd_m%d", i%13), "cluster", fmt.Sprintf("c%d", i/100),
				"instance", fmt.Sprintf("10.1.%d.%d:2379", i/250, i%250), "job", "etcd", "le", fmt.Sprint(i%9))
			for k := range 1 + i%5 {
				if err := app.Append(ls, ts+int64(k)*15000, float64(i*k)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 12000, 0) // head snapshot of a few frames
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	write(11000, 13000, 100_000) // samples for old series, and new series, in the WAL only
	crash(t, db)
	seqDir := t.TempDir()
	if err := os.CopyFS(seqDir, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	seqOpts := o
	seqOpts.sequentialLoad = true
	want := openTestDB(t, seqDir, seqOpts)
	defer want.Close()
	got := openTestDB(t, dir, o)
	defer got.Close()
	if n := want.head.NumIndexedSeries(); n != 13000 {
		t.Fatalf("%d series after the restart, want 13000", n)
	}
	compareHeads(t, got.head, want.head)
	// The counters agree with the series they count.
	var active, chunkBytes int64
	got.head.series.refs.batches(1024, func(batch []*memSeries) error {
		for _, s := range batch {
			if s.active {
				active++
				chunkBytes += s.chunkBytesLocked()
			}
		}
		return nil
	})
	if active != got.head.NumSeries() || chunkBytes != got.head.chunkBytes.Load() {
		t.Fatalf("%d active series holding %d bytes, counted %d and %d", active, chunkBytes, got.head.NumSeries(), got.head.chunkBytes.Load())
	}
}

func TestMergeSorted(t *testing.T) {
	for _, tc := range []struct{ a, b, want []SeriesRef }{
		{nil, nil, nil},
		{nil, []SeriesRef{1, 2}, []SeriesRef{1, 2}},
		{[]SeriesRef{1, 2}, nil, []SeriesRef{1, 2}},
		{[]SeriesRef{1, 4, 9}, []SeriesRef{2, 3, 10, 11}, []SeriesRef{1, 2, 3, 4, 9, 10, 11}},
		{[]SeriesRef{5}, []SeriesRef{5, 6}, []SeriesRef{5, 5, 6}},
	} {
		if got := mergeSorted(tc.a, tc.b); !slices.Equal(got, tc.want) {
			t.Errorf("mergeSorted(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSplitRefs(t *testing.T) {
	for _, tc := range []struct {
		lo, hi  SeriesRef
		workers int
		n       int
	}{
		{1, 1, 4, 1},
		{1, 100, 4, 1},
		{1, 1 << 20, 1, 1},
		{1, 1 << 20, 2, 8},
		{5, 3*minRangeRefs + 5, 8, 3},
		{0, 1<<64 - 1, 2, 8},
	} {
		ranges := splitRefs(tc.lo, tc.hi, tc.workers)
		if len(ranges) != tc.n {
			t.Errorf("splitRefs(%d, %d, %d): %d ranges, want %d", tc.lo, tc.hi, tc.workers, len(ranges), tc.n)
		}
		next := tc.lo
		for i, r := range ranges {
			if r.lo != next || r.hi < r.lo {
				t.Fatalf("splitRefs(%d, %d, %d): range %d is [%d, %d] after %d", tc.lo, tc.hi, tc.workers, i, r.lo, r.hi, next)
			}
			next = r.hi + 1
		}
		if ranges[len(ranges)-1].hi != tc.hi {
			t.Errorf("splitRefs(%d, %d, %d) ends at %d", tc.lo, tc.hi, tc.workers, ranges[len(ranges)-1].hi)
		}
	}
}

// TestLoadSeriesMalformed puts one bad key or record among good ones:
// loading fails, whichever range meets it; a record without a series
// loads nothing, as the one-by-one path does.
func TestLoadSeriesMalformed(t *testing.T) {
	lset := labels.FromStrings("__name__", "up", "job", "etcd")
	good := appendSeriesValue(nil, seriesRecord{minT: 1, maxT: 2}, lset)
	header := appendSeriesValue(nil, seriesRecord{minT: 1, maxT: 2}, labels.EmptyLabels())[:len(good)-len(appendWALSeries(nil, []walSeries{{lset: lset}}))]
	two := appendWALSeries(slices.Clone(header), []walSeries{{lset: lset}, {lset: labels.FromStrings("a", "b")}})
	samples := appendWALSamples(slices.Clone(header), []walSample{{ref: 1, t: 1}})
	for _, tc := range []struct {
		name    string
		key     []byte
		val     []byte
		wantErr bool
	}{
		{"short key first", []byte{prefixSeries, 0}, good, true},
		{"long key between", append(seriesKey(prefixSeries, 20_000), 5), good, true},
		{"long key last", append(seriesKey(prefixSeries, 1<<40), 0), good, true},
		{"truncated record", seriesKey(prefixSeries, 30_000), good[:len(good)-3], true},
		{"truncated header", seriesKey(prefixSeries, 30_000), good[:5], true},
		{"two series", seriesKey(prefixSeries, 30_000), two, true},
		{"samples", seriesKey(prefixSeries, 30_000), samples, true},
		{"labels past the end", seriesKey(prefixSeries, 30_000), append(slices.Clone(header), walSeriesSection, 1, 7, 200), true},
		{"no series", seriesKey(prefixSeries, 30_000), append(slices.Clone(header), walSeriesSection, 0), false},
		{"unknown pid", seriesKey(prefixSeries, 30_000), appendSeriesRecord(nil, seriesRecord{}, []uint32{1, 2, 1, 1 << 30}), true},
		{"pid past 32 bits", seriesKey(prefixSeries, 30_000), append(slices.Clone(header), storeSymbolsSection, 1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x10), true},
		{"pids past the end", seriesKey(prefixSeries, 30_000), append(slices.Clone(header), storeSymbolsSection, 1, 40, 1, 2), true},
		{"pid truncated", seriesKey(prefixSeries, 30_000), append(slices.Clone(header), storeSymbolsSection, 1, 1, 1, 0x82), true},
		{"two series of pids", seriesKey(prefixSeries, 30_000), append(slices.Clone(header), storeSymbolsSection, 2, 1, 1, 2, 1, 1, 2), true},
		{"pids and strings", seriesKey(prefixSeries, 30_000), append(appendSeriesRecord(nil, seriesRecord{}, []uint32{1, 2}), good[len(header):]...), true},
		{"no series of pids", seriesKey(prefixSeries, 30_000), append(slices.Clone(header), storeSymbolsSection, 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := openStore(filepath.Join(t.TempDir(), "badger"), 7_200_000, options.None, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer st.close()
			wb := st.db.NewWriteBatch()
			syms := newTestSymbolRecords(wb)
			for ref := SeriesRef(1); ref <= 60_000; ref += 7 {
				lset := labels.FromStrings("__name__", "up", "i", fmt.Sprint(ref))
				v := appendSeriesValue(nil, seriesRecord{}, lset)
				if ref%2 == 0 {
					v = appendSeriesRecord(nil, seriesRecord{}, syms.pids(lset, false))
				}
				if err := wb.Set(seriesKey(prefixSeries, ref), v); err != nil {
					t.Fatal(err)
				}
			}
			if syms.err != nil {
				t.Fatal(syms.err)
			}
			if err := wb.Set(tc.key, tc.val); err != nil {
				t.Fatal(err)
			}
			if err := wb.Flush(); err != nil {
				t.Fatal(err)
			}
			dict, err := st.readSymbols()
			if err != nil {
				t.Fatal(err)
			}
			var heads []*Head
			for _, workers := range []int{0, 4} {
				db := &DB{head: newTestHead(t, nil), store: st}
				heads = append(heads, db.head)
				if workers == 0 {
					err = db.loadSeriesSequential(legacyRecords{st}, dict, newSymbolUse(dict))
				} else {
					err = db.loadSeriesWorkers(legacyRecords{st}, dict, newSymbolUse(dict), workers)
				}
				if gotErr := err != nil; gotErr != tc.wantErr {
					t.Fatalf("%d workers: error %v, want one: %v", workers, err, tc.wantErr)
				}
				if !tc.wantErr {
					if n := db.head.NumIndexedSeries(); n != 60_000/7+1 {
						t.Fatalf("%d series loaded", n)
					}
				}
			}
			if !tc.wantErr {
				compareHeads(t, heads[1], heads[0])
			}
		})
	}
}

// FuzzDecodeSeriesBorrowed holds the series record decoder to the WAL's
// record reader for records that spell their labels (as the store wrote
// them before pids): what it accepts, that one accepts with the same
// record and labels; what it refuses, that one refuses too, or reads as
// more than one series (which the store never writes under one key).
// Records of pids, which the WAL reader does not know, must name symbols
// of the dictionary, mark them in use, and read back the same when
// written again.
func FuzzDecodeSeriesBorrowed(f *testing.F) {
	strs := []string{"__name__", "up", "job", "etcd", "instance", "10.0.0.1:2379", "unused"}
	pids := []uint32{1, 2, 3, 4, 5, 6, 9}
	pidOf := map[string]uint32{}
	for i, s := range strs {
		pidOf[s] = pids[i]
	}
	dict := newSymbolDict(pids, strs)
	lset := labels.FromStrings("__name__", "up", "job", "etcd", "instance", "10.0.0.1:2379")
	good := appendSeriesValue(nil, seriesRecord{minT: -5, maxT: 1 << 40, lastV: 7}, lset)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(appendSeriesValue(nil, seriesRecord{}, labels.EmptyLabels()))
	f.Add(appendWALSeries(appendSeriesValue(nil, seriesRecord{}, lset), []walSeries{{lset: lset}}))
	rec := appendSeriesRecord(nil, seriesRecord{minT: 3, maxT: 9, lastV: 1}, []uint32{1, 2, 3, 4, 5, 6})
	f.Add(rec)
	f.Add(rec[:len(rec)-1])
	f.Add(appendSeriesRecord(nil, seriesRecord{}, []uint32{1, 7}))
	f.Add(appendSeriesRecord(nil, seriesRecord{}, nil))
	f.Fuzz(func(t *testing.T, val []byte) {
		use := newSymbolUse(dict)
		rec, pairs, found, err := decodeSeriesBorrowed(val, dict, use, nil)
		var got labels.Labels
		if err == nil && found {
			got = labels.New(pairs...) // copies out of val
		}
		// The WAL's reader, with a sample section refused rather than
		// handed to a nil callback.
		var r walRecordReader
		var wantRecs []seriesRecord
		var wantLsets []labels.Labels
		d := decbuf{b: val}
		wantRec := seriesRecord{minT: d.varint(), maxT: d.varint(), lastV: d.uint64()}
		wantErr := d.err
		if wantErr == nil {
			wantErr = r.decode(d.b, func(_ SeriesRef, ls labels.Labels) error {
				wantRecs = append(wantRecs, wantRec)
				wantLsets = append(wantLsets, ls.Copy())
				return nil
			}, func(walSample) error { return errBadWALRecord })
		}
		switch {
		case err != nil:
			if wantErr == nil && len(wantLsets) < 2 {
				t.Fatalf("refused (%v) what the one-by-one decoder reads as %v", err, wantLsets)
			}
		case wantErr != nil && found:
			checkPIDRecord(t, got, rec, use, dict, pidOf)
		case wantErr != nil:
			t.Fatalf("accepted what the one-by-one decoder refuses: %v", wantErr)
		case !found:
			if len(wantLsets) != 0 {
				t.Fatalf("no series, the one-by-one decoder reads %v", wantLsets)
			}
		case len(wantLsets) != 1 || !labels.Equal(got, wantLsets[0]) || rec != wantRecs[0]:
			t.Fatalf("read %v %+v, the one-by-one decoder %v %+v", got, rec, wantLsets, wantRecs)
		}
	})
}

// checkPIDRecord fails t unless got, read from a record of pids, names
// only the dictionary's strings, each marked in use, and reads back the
// same once written again.
func checkPIDRecord(t *testing.T, got labels.Labels, rec seriesRecord, use symbolUse, dict *symbolDict, pidOf map[string]uint32) {
	t.Helper()
	var pids []uint32
	got.Range(func(l labels.Label) {
		for _, s := range []string{l.Name, l.Value} {
			pid, ok := pidOf[s]
			if !ok {
				t.Fatalf("read %v, whose %q no symbol record holds", got, s)
			}
			if !use.has(dict.index(uint64(pid))) {
				t.Fatalf("read %v without marking symbol %d in use", got, pid)
			}
			pids = append(pids, pid)
		}
	})
	again, pairs, found, err := decodeSeriesBorrowed(appendSeriesRecord(nil, rec, pids), dict, newSymbolUse(dict), nil)
	if err != nil || !found || again != rec || !labels.Equal(labels.New(pairs...), got) {
		t.Fatalf("read %v %+v, written again %v %+v (found %v, err %v)", got, rec, pairs, again, found, err)
	}
}
