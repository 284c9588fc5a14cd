package tsdb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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
// fail cleanly, never panic.
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
		readSnapshot(d, func(SeriesRef, headSnapshot) error { return nil })
	})
}
