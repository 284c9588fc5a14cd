package tsdb

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// appendTestRecords appends n records to j in segments of 4 KiB and
// syncs them; it returns their positions.
func appendTestRecords(t *testing.T, j *chunkJournal, n int) []journalPos {
	t.Helper()
	j.segmentBytes = 4 << 10
	var pos []journalPos
	for i := range n {
		p, err := j.append(testJournalRecord(i), 0)
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	if err := j.sync(); err != nil {
		t.Fatal(err)
	}
	return pos
}

// checkMapped asserts that every segment is mapped (on Linux, where
// segments are), the one being written included.
func checkMapped(t *testing.T, j *chunkJournal) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	for s, jf := range j.files {
		if jf.data == nil {
			t.Errorf("segment %d is not mapped", s)
		}
	}
}

// TestChunkJournalReadsThroughMapping: every segment is mapped, in
// the process that writes it and after a reopen, and readMapped returns
// every record as read does. The segment being written yields through its
// mapping what was flushed, and no more.
func TestChunkJournalReadsThroughMapping(t *testing.T) {
	dir := t.TempDir()
	j, err := openChunkJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	pos := appendTestRecords(t, j, 300)
	if pos[len(pos)-1].segment() < 5 {
		t.Fatalf("records in %d segments, want several", pos[len(pos)-1].segment())
	}
	check := func(when string) {
		t.Helper()
		checkMapped(t, j)
		var buf []byte
		for i, p := range pos {
			var rec journalRecord
			rec, buf, err = j.readMapped(p, buf)
			if err != nil || !equalJournalRecords(rec, testJournalRecord(i)) {
				t.Fatalf("%s: record %d at %v: %+v, %v", when, i, p, rec, err)
			}
		}
	}
	check("written")
	if runtime.GOOS == "linux" {
		cur, last := j.cur, pos[len(pos)-1]
		if _, _, err := readMappedRecord(cur.data[:cur.end.Load()], last, nil); err != nil {
			t.Fatalf("flushed record of the segment being written, through its mapping: %v", err)
		}
		unflushed, err := j.append(testJournalRecord(len(pos)), 0)
		if err != nil {
			t.Fatal(err)
		}
		if unflushed.segment() != last.segment() {
			t.Fatalf("the unflushed record went to segment %d, not %d", unflushed.segment(), last.segment())
		}
		if _, _, err := readMappedRecord(cur.data[:cur.end.Load()], unflushed, nil); err == nil {
			t.Fatal("a record not flushed yet was read through the mapping")
		}
		if _, _, err := j.readMapped(unflushed, nil); err == nil {
			t.Fatal("a record not flushed yet was read")
		}
		if err := j.flush(); err != nil {
			t.Fatal(err)
		}
		if rec, _, err := readMappedRecord(cur.data[:cur.end.Load()], unflushed, nil); err != nil || !equalJournalRecords(rec, testJournalRecord(len(pos))) {
			t.Fatalf("the record once flushed, through the mapping: %+v, %v", rec, err)
		}
		pos = append(pos, unflushed)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if j, err = openChunkJournal(dir); err != nil {
		t.Fatal(err)
	}
	defer j.close()
	check("reopened")
}

// TestChunkJournalMappedReadRejectsDamage: a read through a mapping
// fails cleanly at a position no record starts at, past the segment's
// end, or on a record whose bytes changed, and the records around a
// damaged one still read.
func TestChunkJournalMappedReadRejectsDamage(t *testing.T) {
	dir := t.TempDir()
	j, err := openChunkJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	pos := appendTestRecords(t, j, 100)
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if j, err = openChunkJournal(dir); err != nil {
		t.Fatal(err)
	}
	defer j.close()
	checkMapped(t, j)
	first, second, third := pos[0], pos[1], pos[2]
	fi, err := os.Stat(filepath.Join(dir, "00000001"))
	if err != nil {
		t.Fatal(err)
	}
	end := uint32(fi.Size())
	for _, p := range []journalPos{0, makeJournalPos(1, 3), makeJournalPos(1, first.offset()+1), makeJournalPos(1, end), makeJournalPos(1, end-3), makeJournalPos(1, 1<<30), makeJournalPos(9999, 8)} {
		if rec, _, err := j.readMapped(p, nil); err == nil {
			t.Errorf("read at %v: %+v, want an error", p, rec)
		}
	}
	// Damage the segment in place, as a failing disk would: the mapping
	// shares the file's pages, so the read sees it.
	f, err := os.OpenFile(filepath.Join(dir, "00000001"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, int64(second.offset())+journalHeader+3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, _, err := j.readMapped(second, nil); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("read of a damaged record: %v, want a checksum mismatch", err)
	}
	for i, p := range []journalPos{first, third} {
		want := testJournalRecord(2 * i)
		if rec, _, err := j.readMapped(p, nil); err != nil || !equalJournalRecords(rec, want) {
			t.Fatalf("the intact record at %v: %+v, %v", p, rec, err)
		}
	}
}

// TestChunkJournalMappedReadsDuringRemoval: readers of sealed segments
// running while the segments are removed get each record whole or an
// error, never a read of an unmapped page (which would kill the process),
// and the race detector sees no race.
func TestChunkJournalMappedReadsDuringRemoval(t *testing.T) {
	j, err := openChunkJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	pos := appendTestRecords(t, j, 600)
	last := pos[len(pos)-1].segment()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var read, failed atomic.Int64
	var started sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for k, first := w, true; ; k = (k + 7) % len(pos) {
				select {
				case <-stop:
					return
				default:
				}
				rec, b, err := j.readMapped(pos[k], buf)
				buf = b
				if err == nil {
					read.Add(1)
				} else {
					failed.Add(1)
				}
				if first {
					started.Done() // the removals begin once every reader has read
					first = false
				}
				if err == nil && !equalJournalRecords(rec, testJournalRecord(k)) {
					t.Errorf("record %d: %+v", k, rec)
					return
				}
			}
		}()
	}
	started.Wait()
	for s := uint32(2); s <= last; s++ {
		if err := j.removeBefore(s); err != nil {
			t.Error(err)
		}
		runtime.Gosched()
	}
	for failed.Load() == 0 && !t.Failed() { // a reader meets a removed segment soon: most are
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	if read.Load() == 0 {
		t.Error("no read succeeded")
	}
	if rec, _, err := j.readMapped(pos[len(pos)-1], nil); err != nil || !equalJournalRecords(rec, testJournalRecord(len(pos)-1)) {
		t.Fatalf("newest record, in the segment being written: %+v, %v", rec, err)
	}
}
