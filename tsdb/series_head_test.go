package tsdb

import (
	"bytes"
	"cmp"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// headTestSamples are in-order samples that exercise every timestamp
// bucket and value encoding, within one chunk range.
func headTestSamples(n int) []sample {
	var out []sample
	ts := int64(1000)
	for i := range n {
		ts += 15000 + int64(i%7)*(1<<(i%21))
		v := float64(i) * 1.5
		switch i % 5 {
		case 3:
			v = math.Float64frombits(0x7ff0000000000002) // stale marker
		case 4:
			v = math.Inf(1 - 2*(i%2))
		}
		out = append(out, sample{t: ts, v: v})
	}
	return out
}

// readSeries returns every sample a reader of s sees.
func readSeries(t *testing.T, s *memSeries) []sample {
	t.Helper()
	s.mu.Lock()
	snap := s.snapshotLocked(math.MinInt64, math.MaxInt64)
	s.mu.Unlock()
	it := snap.iterator(nil, math.MinInt64, math.MaxInt64)
	var got []sample
	for it.Next() {
		ts, v := it.At()
		got = append(got, sample{t: ts, v: v})
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func sameSamples(a, b []sample) bool {
	return slices.EqualFunc(a, b, func(x, y sample) bool {
		return x.t == y.t && math.Float64bits(x.v) == math.Float64bits(y.v)
	})
}

// TestHeadChunkMatchesChunkenc appends through memSeries and checks the
// open chunk against chunkenc's appender after every sample, across chunk
// cuts (where the samples' uneven intervals put them: cutEvenly). A cut
// that newChunk did not report, or one reported that did not happen,
// leaves the open chunk unlike chunkenc's.
func TestHeadChunkMatchesChunkenc(t *testing.T) {
	const chunkSamples = 50
	samples := headTestSamples(3*chunkSamples + 7)
	s := newMemSeries(1, seriesSyms{})
	var ref *chunkenc.XORChunk
	var app chunkenc.Appender
	first, cuts := 0, 0
	for i, smp := range samples {
		newChunk := s.appendInOrderLocked(smp.t, smp.v, chunkSamples, math.MaxInt64/2)
		if newChunk {
			if i > 0 {
				cuts++
			}
			ref, first = chunkenc.NewXORChunk(), i
			app, _ = ref.Appender()
		}
		app.Append(0, smp.t, smp.v)
		if !bytes.Equal(s.head.bytes(), ref.Bytes()) {
			t.Fatalf("sample %d: open chunk\n%x, chunkenc\n%x", i, s.head.bytes(), ref.Bytes())
		}
		if got := s.headMinTLocked(); got != samples[first].t {
			t.Fatalf("sample %d: headMinT %d", i, got)
		}
	}
	if cuts < 3 || len(s.closedChunks()) != cuts {
		t.Fatalf("%d closed chunks after %d cuts, want as many and at least 3", len(s.closedChunks()), cuts)
	}
	for _, c := range s.closedChunks() {
		if cap(c.data) > len(c.data)+len(c.data)/8+16 { // right-sized, up to the allocator's size class
			t.Fatalf("closed chunk of %d bytes holds %d", len(c.data), cap(c.data))
		}
	}
	if got := readSeries(t, s); !sameSamples(got, samples) {
		t.Fatalf("read back %d samples, want %d:\n%v", len(got), len(samples), got)
	}
}

// TestHeadChunkReaderCopy checks that what a reader took of the open
// chunk does not change when later appends rewrite its last byte.
func TestHeadChunkReaderCopy(t *testing.T) {
	samples := headTestSamples(40)
	s := newMemSeries(1, seriesSyms{})
	for _, smp := range samples[:20] {
		s.appendInOrderLocked(smp.t, smp.v, 120, math.MaxInt64/2)
	}
	snap := s.snapshotLocked(math.MinInt64, math.MaxInt64)
	hs := headSeries{s: s, mint: math.MinInt64, maxt: math.MaxInt64}
	chunks, _, ok, err := hs.Chunks(nil, nil)
	if err != nil || !ok || len(chunks) != 1 {
		t.Fatalf("Chunks: %d chunks, ok %v, err %v", len(chunks), ok, err)
	}
	taken := [][]byte{snap.chunks[0].data, chunks[0].Data}
	kept := [][]byte{bytes.Clone(taken[0]), bytes.Clone(taken[1])}
	for _, smp := range samples[20:] {
		s.appendInOrderLocked(smp.t, smp.v, 120, math.MaxInt64/2)
	}
	for i := range taken {
		if !bytes.Equal(taken[i], kept[i]) {
			t.Fatalf("reader %d: chunk changed under it:\n%x, was\n%x", i, taken[i], kept[i])
		}
	}
}

// TestReopenHeadContinues restores the open chunk from a snapshot's
// bytes after every sample count and checks that appending on gives the
// bytes of a chunk never interrupted.
func TestReopenHeadContinues(t *testing.T) {
	samples := headTestSamples(60)
	whole := newMemSeries(1, seriesSyms{})
	var snaps []headSnapshot
	for _, smp := range samples {
		whole.appendInOrderLocked(smp.t, smp.v, 120, math.MaxInt64/2)
		snaps = append(snaps, headSnapshot{headMinT: whole.headMinTLocked(), maxT: whole.maxT, lastV: whole.lastV, chunk: bytes.Clone(whole.head.bytes())})
	}
	for k, snap := range snaps {
		s := newMemSeries(1, seriesSyms{})
		s.maxT, s.lastV = snap.maxT, snap.lastV
		if err := s.reopenHeadLocked(snap); err != nil {
			t.Fatalf("reopen after %d samples: %v", k+1, err)
		}
		if !s.head.open() || len(s.closedChunks()) != 0 {
			t.Fatalf("reopen after %d samples: open chunk %x, %d closed", k+1, s.head.bytes(), len(s.closedChunks()))
		}
		for _, smp := range samples[k+1:] {
			s.appendInOrderLocked(smp.t, smp.v, 120, math.MaxInt64/2)
		}
		if !bytes.Equal(s.head.bytes(), whole.head.bytes()) {
			t.Fatalf("reopened after %d samples: open chunk\n%x, uninterrupted\n%x", k+1, s.head.bytes(), whole.head.bytes())
		}
	}
}

// TestReopenHeadDisagreeing: a snapshot whose newest sample is not its
// chunk's last one cannot feed the writer (it continues from maxT and
// lastV); the chunk is kept, closed, and the next sample opens a new one.
// A malformed chunk is an error.
func TestReopenHeadDisagreeing(t *testing.T) {
	samples := headTestSamples(10)
	src := newMemSeries(1, seriesSyms{})
	for _, smp := range samples[:5] {
		src.appendInOrderLocked(smp.t, smp.v, 120, math.MaxInt64/2)
	}
	chunk := bytes.Clone(src.head.bytes())
	tests := map[string]struct{ maxT, lastV int64 }{
		"newer maxT":   {maxT: samples[5].t, lastV: int64(math.Float64bits(samples[4].v))},
		"other value":  {maxT: samples[4].t, lastV: 12345},
		"older maxT":   {maxT: samples[3].t, lastV: int64(math.Float64bits(samples[3].v))},
		"maxT too old": {maxT: samples[0].t - 1, lastV: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newMemSeries(1, seriesSyms{})
			s.maxT, s.lastV = tc.maxT, uint64(tc.lastV)
			if err := s.reopenHeadLocked(headSnapshot{headMinT: samples[0].t, maxT: tc.maxT, lastV: uint64(tc.lastV), chunk: chunk}); err != nil {
				t.Fatal(err)
			}
			if s.head.open() || len(s.closedChunks()) != 1 || !bytes.Equal(s.closedChunks()[0].data, chunk) ||
				s.closedChunks()[0].minT != samples[0].t || s.closedChunks()[0].maxT != samples[4].t {
				t.Fatalf("open chunk %x, closed %+v", s.head.bytes(), s.closedChunks())
			}
			s.appendInOrderLocked(samples[6].t, samples[6].v, 120, math.MaxInt64/2)
			want := append(slices.Clone(samples[:5]), samples[6])
			if got := readSeries(t, s); !sameSamples(got, want) {
				t.Fatalf("read back %v, want %v", got, want)
			}
		})
	}
	t.Run("malformed", func(t *testing.T) {
		s := newMemSeries(1, seriesSyms{})
		s.maxT, s.lastV = samples[4].t, math.Float64bits(samples[4].v)
		bad := append([]byte{0, 200}, chunk[2:]...)
		if err := s.reopenHeadLocked(headSnapshot{headMinT: samples[0].t, maxT: s.maxT, lastV: s.lastV, chunk: bad}); err == nil {
			t.Fatal("reopened a chunk claiming 200 samples of 5")
		}
		if s.head.open() || len(s.closedChunks()) != 0 {
			t.Fatalf("malformed chunk left open chunk %x, closed %+v", s.head.bytes(), s.closedChunks())
		}
	})
	t.Run("empty", func(t *testing.T) {
		s := newMemSeries(1, seriesSyms{})
		if err := s.reopenHeadLocked(headSnapshot{chunk: []byte{0, 0}}); err != nil {
			t.Fatal(err)
		}
		if s.head.open() || len(s.closedChunks()) != 0 {
			t.Fatalf("empty chunk left open chunk %x, closed %+v", s.head.bytes(), s.closedChunks())
		}
	})
}

// TestRecoverSnapshotBadChunk: a head snapshot whose frames are sound but
// one of whose chunks does not decode fails part way, after reopening the
// chunks of the records before it. Recovery falls back to the store and
// the WAL, and must drop those reopened chunks: the WAL replays their
// samples again, and the writer would continue them from the store's
// newest sample, not theirs. Every sample is read back exactly once.
func TestRecoverSnapshotBadChunk(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	db := openTestDB(t, dir, o)
	a := labels.FromStrings("__name__", "a", "job", "etcd")
	b := labels.FromStrings("__name__", "b", "job", "etcd")
	const step = 15000
	write := func(lset labels.Labels, from, to int) { commitSteps(t, db, lset, from, to, step) }
	if err := db.Checkpoint(); err != nil { // the previous snapshot: without a and b
		t.Fatal(err)
	}
	write(a, 0, 50) // open chunks only
	write(b, 0, 50)
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	write(a, 50, 60) // the WAL tail
	write(b, 50, 60)
	crash(t, db)

	// Rewrite the snapshot: a's record first and intact, b's chunk
	// claiming more samples than it holds.
	type record struct {
		ref  SeriesRef
		snap headSnapshot
	}
	var recs []record
	seg, found, err := readSnapshot(dir, func(ref SeriesRef, h headSnapshot) error {
		h.chunk = bytes.Clone(h.chunk)
		recs = append(recs, record{ref, h})
		return nil
	})
	if err != nil || !found || len(recs) != 2 {
		t.Fatalf("snapshot: found %v, %d records, err %v", found, len(recs), err)
	}
	slices.SortFunc(recs, func(x, y record) int { return cmp.Compare(x.ref, y.ref) }) // a was created first
	recs[1].snap.chunk[1] = 200
	prevPath := filepath.Join(dir, snapshotPrevName)
	prev, err := os.ReadFile(prevPath)
	if err != nil {
		t.Fatal(err)
	}
	w, err := createSnapshot(dir, seg, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		w.add(r.ref, r.snap)
	}
	if err := w.commit(false, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prevPath, prev, 0o644); err != nil { // commit made the good one previous
		t.Fatal(err)
	}

	db = openTestDB(t, dir, o)
	defer db.Close()
	var active, chunkBytes int64
	db.head.series.refs.batches(1024, func(batch []*memSeries) error {
		for _, s := range batch {
			if s.active {
				active++
				chunkBytes += s.chunkBytesLocked()
			}
		}
		return nil
	})
	if active != db.head.NumSeries() || chunkBytes != db.head.chunkBytes.Load() {
		t.Fatalf("%d active series holding %d bytes, counted %d and %d", active, chunkBytes, db.head.NumSeries(), db.head.chunkBytes.Load())
	}
	got := dbSelect(t, db, 0, 1<<40, matchAll)
	checkSeries(t, got[a.String()], 0, step, 60)
	checkSeries(t, got[b.String()], 0, step, 60)
	write(a, 60, 70)
	write(b, 60, 70)
	got = dbSelect(t, db, 0, 1<<40, matchAll)
	checkSeries(t, got[a.String()], 0, step, 70)
	checkSeries(t, got[b.String()], 0, step, 70)
}

// TestHeadCutsBeforeDeltaPast32Bits appends samples whose range never
// ends (a range of half of int64 saturates) with deltas of 2^32-1 and
// 2^32 ms: the first fits the open chunk's 32-bit writer, the second
// cuts a chunk (headFullLocked) instead of panicking in packHeadXOR, and
// every sample reads back.
func TestHeadCutsBeforeDeltaPast32Bits(t *testing.T) {
	s := newMemSeries(1, seriesSyms{})
	want := []sample{{1000, 1}, {1000 + math.MaxUint32, 2}, {1000 + math.MaxUint32 + 1<<32, 3}, {1000 + math.MaxUint32 + 1<<32 + 15000, 4}}
	for _, smp := range want {
		s.appendInOrderLocked(smp.t, smp.v, 120, math.MaxInt64/2)
	}
	closed := s.closedChunks()
	if len(closed) != 1 || xorNumSamples(closed[0].data) != 2 || xorNumSamples(s.head.bytes()) != 2 {
		t.Fatalf("%d closed chunks, open chunk of %d samples; want one closed chunk of 2 and 2 open", len(closed), xorNumSamples(s.head.bytes()))
	}
	var got []sample
	for _, c := range [][]byte{closed[0].data, s.head.bytes()} {
		it, err := chunkenc.FromData(chunkenc.EncXOR, c)
		if err != nil {
			t.Fatal(err)
		}
		for i := it.Iterator(nil); i.Next() == chunkenc.ValFloat; {
			ts, v := i.At()
			got = append(got, sample{ts, v})
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("samples read back %v, want %v", got, want)
	}
}
