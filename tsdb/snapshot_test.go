package tsdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/value"
)

func TestHeadSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := createSnapshot(dir, 42, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[SeriesRef]headSnapshot{}
	for ref := SeriesRef(1); ref <= 3000; ref++ { // several frames
		h := headSnapshot{headMinT: int64(ref) * 10, maxT: int64(ref)*10 + 5, lastV: uint64(ref), chunk: bytes.Repeat([]byte{byte(ref)}, 100),
			xor: xorState{tDelta: uint64(ref) * 1000, free: uint8(ref % 8), leading: uint8(ref % 40), trailing: uint8(ref % 20)}, hasXOR: true}
		if ref%7 == 0 {
			h.chunk, h.headMinT, h.xor, h.hasXOR = nil, 0, xorState{}, false // an active series without an open chunk
		}
		want[ref] = h
		w.add(ref, h)
	}
	if err := w.commit(true, 0, nil); err != nil {
		t.Fatal(err)
	}
	got := map[SeriesRef]headSnapshot{}
	seg, found, err := readSnapshot(dir, func(ref SeriesRef, h headSnapshot) error {
		h.chunk = bytes.Clone(h.chunk)
		got[ref] = h
		return nil
	})
	if err != nil || !found || seg != 42 || len(got) != len(want) {
		t.Fatalf("seg %d found %v err %v: %d records", seg, found, err, len(got))
	}
	for ref, h := range want {
		g := got[ref]
		if g.headMinT != h.headMinT || g.maxT != h.maxT || g.lastV != h.lastV || !bytes.Equal(g.chunk, h.chunk) || g.xor != h.xor || g.hasXOR != h.hasXOR {
			t.Fatalf("series %d: %+v, want %+v", ref, g, h)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName+".tmp")); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
}

func TestHeadSnapshotCorruptOrMissing(t *testing.T) {
	dir := t.TempDir()
	if _, found, err := readSnapshot(dir, nil); found || err != nil {
		t.Fatalf("missing snapshot: found %v err %v", found, err)
	}
	w, _ := createSnapshot(dir, 7, OSFS{})
	w.add(1, headSnapshot{maxT: 1, chunk: []byte{1, 2, 3}})
	if err := w.commit(false, 0, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, snapshotName)
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 0xff
	os.WriteFile(path, data, 0o644)
	if _, _, err := readSnapshot(dir, func(SeriesRef, headSnapshot) error { return nil }); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	// An aborted write leaves the installed snapshot alone.
	w, _ = createSnapshot(dir, 8, OSFS{})
	w.abort()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// FuzzHeadSnapshot reads arbitrary bytes as a snapshot file: it must
// fail cleanly, never panic, and three workers read what one reads.
func FuzzHeadSnapshot(f *testing.F) {
	dir := f.TempDir()
	w, _ := createSnapshot(dir, 3, OSFS{})
	w.add(5, headSnapshot{headMinT: 1, maxT: 2, lastV: 3, chunk: []byte{0, 1, 2}})
	w.commit(false, 0, nil)
	valid, _ := os.ReadFile(filepath.Join(dir, snapshotName))
	f.Add(valid)
	f.Add(valid[:len(valid)-2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, snapshotName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(d, snapshotName)
		check := func(version byte, p []byte) error {
			return decodeSnapshotRecords(version, p, func(SeriesRef, headSnapshot) error { return nil })
		}
		seg1, found1, err1 := eachSnapshotFrame(path, 1, check)
		seg3, found3, err3 := eachSnapshotFrame(path, 3, check)
		if seg1 != seg3 || found1 != found3 || fmt.Sprint(err1) != fmt.Sprint(err3) {
			t.Fatalf("one worker: %d %v %v; three: %d %v %v", seg1, found1, err1, seg3, found3, err3)
		}
	})
}

// TestHeadSnapshotParallelRead reads a snapshot of many frames on several
// workers: every record once; a corrupt or truncated frame in the middle
// gives the error one worker gives, every frame before it read.
func TestHeadSnapshotParallelRead(t *testing.T) {
	dir := t.TempDir()
	w, err := createSnapshot(dir, 9, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	const records = 20_000
	for ref := SeriesRef(1); ref <= records; ref++ {
		w.add(ref, headSnapshot{headMinT: int64(ref), maxT: int64(ref) + 1, lastV: uint64(ref), chunk: bytes.Repeat([]byte{byte(ref)}, 60)})
	}
	if err := w.commit(false, 0, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, snapshotName)
	valid, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// read returns the refs seen and the error of a read on workers.
	read := func(workers int) (map[SeriesRef]int, error) {
		var mu sync.Mutex
		seen := map[SeriesRef]int{}
		seg, found, err := eachSnapshotFrame(path, workers, func(version byte, p []byte) error {
			return decodeSnapshotRecords(version, p, func(ref SeriesRef, h headSnapshot) error {
				if h.maxT != int64(ref)+1 || !bytes.Equal(h.chunk, bytes.Repeat([]byte{byte(ref)}, 60)) {
					return fmt.Errorf("series %d: %+v", ref, h)
				}
				mu.Lock()
				seen[ref]++
				mu.Unlock()
				return nil
			})
		})
		if !found || err == nil && seg != 9 {
			t.Fatalf("found %v, segment %d", found, seg)
		}
		return seen, err
	}
	seen, err := read(4)
	if err != nil || len(seen) != records {
		t.Fatalf("%d records, err %v", len(seen), err)
	}
	for ref, n := range seen {
		if n != 1 {
			t.Fatalf("series %d read %d times", ref, n)
		}
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"flipped byte", func() []byte { d := bytes.Clone(valid); d[len(d)/3] ^= 0xff; return d }()},
		{"truncated", valid[:len(valid)*2/3]},
		{"bad length", func() []byte {
			d := bytes.Clone(valid)
			_, next, _ := readFrame(d, 0)
			binary.LittleEndian.PutUint32(d[next:], walMaxRecord+1)
			return d
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			want, wantErr := read(1)
			got, gotErr := read(4)
			if !errors.Is(gotErr, errBadSnapshot) || gotErr.Error() != wantErr.Error() {
				t.Fatalf("error %v, one worker gives %v", gotErr, wantErr)
			}
			for ref := range want {
				if got[ref] != 1 {
					t.Fatalf("series %d, read by one worker before the bad frame, read %d times by four", ref, got[ref])
				}
			}
		})
	}
}

// TestSnapshotChunkWriterRestores writes open chunks of many shapes
// (counters, gauges that hold, NaN and stale markers, huge jumps, irregular
// and equal timestamps, one sample) to a snapshot and reads them back: the
// chunk restored from its recorded writer is the one appending its samples
// again gives, bytes and writer, and both take further samples to the
// same bytes.
func TestSnapshotChunkWriterRestores(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	w, err := createSnapshot(dir, 1, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	type series struct {
		c     []byte
		x     xorState
		lastT int64
		lastV uint64
		next  []float64
		nextT []int64
		first int64
	}
	all := map[SeriesRef]*series{}
	step := func(kind int, prev float64) float64 {
		switch kind {
		case 0:
			return prev + float64(rng.IntN(100))
		case 1:
			return prev
		case 2:
			if rng.IntN(3) == 0 {
				return math.NaN()
			}
			return rng.Float64()
		case 3:
			if rng.IntN(4) == 0 {
				return math.Float64frombits(value.StaleNaN)
			}
			return prev + 1
		default:
			return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(300)))
		}
	}
	for ref := SeriesRef(1); ref <= 500; ref++ {
		s := &series{c: newXORChunk(0), x: newXORState()}
		kind := int(ref) % 5
		n := 1 + rng.IntN(120)
		ts, v := int64(rng.IntN(1<<40)), 0.0
		for i := range n + 10 {
			v = step(kind, v)
			if i < n {
				s.c = s.x.append(s.c, s.lastT, s.lastV, ts, v)
				s.lastT, s.lastV = ts, math.Float64bits(v)
				if i == 0 {
					s.first = ts
				}
			} else {
				s.next, s.nextT = append(s.next, v), append(s.nextT, ts)
			}
			ts += int64(rng.IntN(3)) * int64(1+rng.IntN(30_000)) // equal, regular and irregular steps
		}
		all[ref] = s
		w.add(ref, headSnapshot{headMinT: s.first, maxT: s.lastT, lastV: s.lastV, chunk: s.c, xor: s.x})
	}
	if err := w.commit(false, 0, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = readSnapshot(dir, func(ref SeriesRef, h headSnapshot) error {
		s := all[ref]
		if !xorEndsWith(h.chunk, h.maxT, h.lastV) {
			t.Fatalf("series %d: the chunk does not end with the snapshot's newest sample: restored by appending again", ref)
		}
		c, x, lastT, lastV, err := h.restoreChunk()
		if err != nil || !h.hasXOR {
			t.Fatalf("series %d: restore from the writer: %v (writer read: %v)", ref, err, h.hasXOR)
		}
		c2, x2, lastT2, lastV2, err := restoreXOR(h.chunk)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c, c2) || x != x2 || lastT != lastT2 || lastV != lastV2 {
			t.Fatalf("series %d: from the writer %x %+v %d %x, appended again %x %+v %d %x", ref, c, x, lastT, lastV, c2, x2, lastT2, lastV2)
		}
		for i, v := range s.next {
			c = x.append(c, lastT, lastV, s.nextT[i], v)
			c2 = x2.append(c2, lastT2, lastV2, s.nextT[i], v)
			lastT, lastV, lastT2, lastV2 = s.nextT[i], math.Float64bits(v), s.nextT[i], math.Float64bits(v)
		}
		if !bytes.Equal(c, c2) {
			t.Fatalf("series %d: further samples differ: %x and %x", ref, c, c2)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotVersion1 reads a snapshot written before chunk writers were
// recorded: its records read without one, and restore by appending their
// samples again. A record whose writer is out of range is refused.
func TestSnapshotVersion1(t *testing.T) {
	var x xorState
	c := newXORChunk(0)
	x = newXORState()
	c = x.append(c, 0, 0, 1000, 1.5)
	c = x.append(c, 1000, math.Float64bits(1.5), 2000, 2.5)
	rec := binary.AppendUvarint(nil, 9)
	rec = binary.AppendVarint(rec, 1000)
	rec = binary.AppendVarint(rec, 2000)
	rec = binary.LittleEndian.AppendUint64(rec, math.Float64bits(2.5))
	rec = binary.AppendUvarint(rec, uint64(len(c)))
	rec = append(rec, c...)
	file := appendFrame(nil, binary.AppendUvarint([]byte(snapshotMagicV1), 4))
	file = appendFrame(file, rec)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, snapshotName), file, 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	seg, found, err := readSnapshot(dir, func(ref SeriesRef, h headSnapshot) error {
		n++
		got, gx, lastT, _, err := h.restoreChunk()
		if ref != 9 || h.hasXOR || err != nil || !bytes.Equal(got, c) || gx != x || lastT != 2000 {
			t.Fatalf("series %d (writer read: %v): %x %+v %d, %v; want %x %+v", ref, h.hasXOR, got, gx, lastT, err, c, x)
		}
		return nil
	})
	if seg != 4 || !found || err != nil || n != 1 {
		t.Fatalf("segment %d found %v err %v, %d records", seg, found, err, n)
	}

	bad := append(binary.AppendUvarint(nil, 9), rec[1:]...) // the same record, then a writer out of range
	bad = append(binary.AppendUvarint(bad, 15000), 9, 0, 0)
	for _, version := range []struct {
		magic string
		frame []byte
	}{
		{snapshotMagicV2, bad},
		{snapshotMagic, append([]byte{snapshotRecords}, bad...)},
		{snapshotMagic, append([]byte{'x'}, bad...)}, // a frame of no kind
	} {
		file = appendFrame(nil, binary.AppendUvarint([]byte(version.magic), 4))
		file = appendFrame(file, version.frame)
		if err := os.WriteFile(filepath.Join(dir, snapshotName), file, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readSnapshot(dir, func(SeriesRef, headSnapshot) error { return nil }); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("%q, frame %q: %v, want a malformed snapshot", version.magic, version.frame[0], err)
		}
	}
}

// TestSnapshotChainsMalformed: frames of chains and the journal's end
// that do not decode are a malformed snapshot, never a panic or a chain
// that names no record.
func TestSnapshotChainsMalformed(t *testing.T) {
	good := binary.AppendUvarint(binary.AppendUvarint([]byte{snapshotChains}, 7), uint64(makeJournalPos(1, 8)))
	var chains []journalPos
	if err := decodeSnapshotChains(3, good, func(_ SeriesRef, p journalPos) error { chains = append(chains, p); return nil }, nil); err != nil || len(chains) != 1 {
		t.Fatalf("good chains frame: %v, %v", chains, err)
	}
	end := binary.AppendUvarint(binary.AppendUvarint([]byte{snapshotEnd}, uint64(makeJournalPos(2, 100))), 1)
	end = binary.AppendVarint(binary.AppendVarint(binary.AppendUvarint(end, 2), 5), 6)
	var gotEnd journalPos
	var gotSpans map[uint32]bucketSpan
	if err := decodeSnapshotChains(3, end, nil, func(p journalPos, s map[uint32]bucketSpan) { gotEnd, gotSpans = p, s }); err != nil ||
		gotEnd != makeJournalPos(2, 100) || gotSpans[2] != (bucketSpan{5, 6, true}) {
		t.Fatalf("good end frame: %v %v, %v", gotEnd, gotSpans, err)
	}
	noop := func(SeriesRef, journalPos) error { return nil }
	for name, p := range map[string][]byte{
		"chain before any record":        binary.AppendUvarint(binary.AppendUvarint([]byte{snapshotChains}, 7), uint64(makeJournalPos(1, 3))),
		"truncated chain":                good[:len(good)-1],
		"unknown kind":                   {'z', 1, 2},
		"end truncated":                  end[:len(end)-1],
		"end with trailing bytes":        append(slices.Clone(end), 0),
		"end with more spans than bytes": binary.AppendUvarint(binary.AppendUvarint([]byte{snapshotEnd}, 1), 1<<40),
		"span of segment 0":              binary.AppendVarint(binary.AppendVarint(binary.AppendUvarint(binary.AppendUvarint(binary.AppendUvarint([]byte{snapshotEnd}, 1), 1), 0), 1), 2),
		"span backwards":                 binary.AppendVarint(binary.AppendVarint(binary.AppendUvarint(binary.AppendUvarint(binary.AppendUvarint([]byte{snapshotEnd}, 1), 1), 3), 9), 2),
	} {
		if err := decodeSnapshotChains(3, p, noop, func(journalPos, map[uint32]bucketSpan) {}); !errors.Is(err, errBadSnapshot) {
			t.Errorf("%s: %v, want a malformed snapshot", name, err)
		}
	}
}
