package tsdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestHeadSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := createSnapshot(dir, 42, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[SeriesRef]headSnapshot{}
	for ref := SeriesRef(1); ref <= 3000; ref++ { // several frames
		h := headSnapshot{headMinT: int64(ref) * 10, maxT: int64(ref)*10 + 5, lastV: uint64(ref), chunk: bytes.Repeat([]byte{byte(ref)}, 100)}
		if ref%7 == 0 {
			h.chunk, h.headMinT = nil, 0 // an active series without an open chunk
		}
		want[ref] = h
		w.add(ref, h)
	}
	if err := w.commit(true); err != nil {
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
		if g.headMinT != h.headMinT || g.maxT != h.maxT || g.lastV != h.lastV || !bytes.Equal(g.chunk, h.chunk) {
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
	if err := w.commit(false); err != nil {
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
	w.commit(false)
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
		check := func(p []byte) error {
			return decodeSnapshotRecords(p, func(SeriesRef, headSnapshot) error { return nil })
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
	if err := w.commit(false); err != nil {
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
		seg, found, err := eachSnapshotFrame(path, workers, func(p []byte) error {
			return decodeSnapshotRecords(p, func(ref SeriesRef, h headSnapshot) error {
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
