package tsdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func testJournalRecord(i int) journalRecord {
	data := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 20+i%150)
	kind := chunkInOrder
	if i%7 == 0 {
		kind = chunkOutOfOrder
	}
	return journalRecord{
		ref: SeriesRef(i*3 + 1), prev: journalPos(i) << 20, prevMaxT: int64(i)*15000 - 1, kind: kind, seq: uint32(i % 5),
		chunk: memChunk{data: data, minT: int64(i) * 15000, maxT: int64(i)*15000 + 1800000},
	}
}

func equalJournalRecords(a, b journalRecord) bool {
	return a.ref == b.ref && a.prev == b.prev && a.prevMaxT == b.prevMaxT && a.kind == b.kind && a.seq == b.seq &&
		a.chunk.minT == b.chunk.minT && a.chunk.maxT == b.chunk.maxT && bytes.Equal(a.chunk.data, b.chunk.data)
}

// TestChunkJournalRoundTrip appends records across several segments,
// reads each back by position, and again after reopening; appends after
// the reopen go to a new segment.
func TestChunkJournalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	j, err := openChunkJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.segmentBytes = 16 << 10
	const n = 2000
	pos := make([]journalPos, n)
	for i := range n {
		if pos[i], err = j.append(testJournalRecord(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.sync(); err != nil {
		t.Fatal(err)
	}
	check := func(j *chunkJournal) {
		t.Helper()
		var buf []byte
		for i := range n {
			var rec journalRecord
			rec, buf, err = j.read(pos[i], buf)
			if err != nil {
				t.Fatalf("record %d at %v: %v", i, pos[i], err)
			}
			if want := testJournalRecord(i); !equalJournalRecords(rec, want) {
				t.Fatalf("record %d at %v: %+v, want %+v", i, pos[i], rec, want)
			}
		}
	}
	check(j)
	segs, _ := journalSegments(dir)
	if len(segs) < 10 || pos[n-1].segment() != segs[len(segs)-1] {
		t.Fatalf("segments %v for %d records of ~200 bytes in 16 KiB segments; last record in %d", segs, n, pos[n-1].segment())
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}

	j, err = openChunkJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	check(j)
	p, err := j.append(testJournalRecord(n), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.flush(); err != nil {
		t.Fatal(err)
	}
	if p.segment() != segs[len(segs)-1]+1 {
		t.Fatalf("after a reopen the first record went to segment %d, want a new one (%d)", p.segment(), segs[len(segs)-1]+1)
	}
	if rec, _, err := j.read(p, nil); err != nil || !equalJournalRecords(rec, testJournalRecord(n)) {
		t.Fatalf("flushed record: %+v, %v", rec, err)
	}
}

// TestChunkJournalScanStopsAtTornTail cuts a segment inside its last
// record, as a crash before the sync leaves it: a scan returns every
// record before it and where they end.
func TestChunkJournalScanStopsAtTornTail(t *testing.T) {
	dir := t.TempDir()
	j, err := openChunkJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	var last journalPos
	for i := range 10 {
		if last, err = j.append(testJournalRecord(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "00000001")
	if err := os.Truncate(path, int64(last.offset())+20); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []journalRecord
	end, err := scanJournalSegment(f, 1, func(p journalPos, rec journalRecord) error {
		rec.chunk.data = bytes.Clone(rec.chunk.data) // valid during the call only
		got = append(got, rec)
		return nil
	})
	if err != nil || end != int64(last.offset()) || len(got) != 9 {
		t.Fatalf("scan of a torn segment: %d records ending at %d, %v; want 9 ending at %d", len(got), end, err, last.offset())
	}
	for i, rec := range got {
		if !equalJournalRecords(rec, testJournalRecord(i)) {
			t.Fatalf("record %d: %+v", i, rec)
		}
	}
	j, err = openChunkJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if _, _, err := j.read(last, nil); !errors.Is(err, errBadJournalRecord) {
		t.Fatalf("read of the torn record: %v, want %v", err, errBadJournalRecord)
	}
}

// TestChunkJournalReadRejectsDamage flips a byte of a record and reads
// at positions no record starts at: each read fails with an error, none
// panics or returns a wrong record.
func TestChunkJournalReadRejectsDamage(t *testing.T) {
	dir := t.TempDir()
	j, err := openChunkJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	first, _ := j.append(testJournalRecord(1), 0)
	second, _ := j.append(testJournalRecord(2), 0)
	if err := j.sync(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []journalPos{0, makeJournalPos(1, 3), makeJournalPos(1, first.offset()+1), makeJournalPos(1, 1<<30), makeJournalPos(9, 8)} {
		if rec, _, err := j.read(p, nil); err == nil {
			t.Errorf("read at %v: %+v, want an error", p, rec)
		}
	}
	path := filepath.Join(dir, "00000001")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[second.offset()+journalHeader+3] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.read(second, nil); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("read of a damaged record: %v, want a checksum mismatch", err)
	}
	if rec, _, err := j.read(first, nil); err != nil || !equalJournalRecords(rec, testJournalRecord(1)) {
		t.Fatalf("the intact record before it: %+v, %v", rec, err)
	}
}

func TestDecodeJournalBodyMalformed(t *testing.T) {
	good := appendJournalRecord(nil, testJournalRecord(3))[journalHeader:]
	if _, err := decodeJournalBody(good); err != nil {
		t.Fatal(err)
	}
	header := len(good) - len(testJournalRecord(3).chunk.data)
	rec := testJournalRecord(3)
	rec.ref, rec.prev, rec.prevMaxT = 0, 0, 0 // a byte each: the kind is at 3, the seq (3) at 4
	zeroed := appendJournalRecord(nil, rec)[journalHeader:]
	const kindAt = 3
	spliced := func(at int, with ...byte) []byte {
		return append(append(append([]byte{}, zeroed[:at]...), with...), zeroed[at+1:]...)
	}
	overflow := binary.AppendUvarint(binary.AppendVarint([]byte{0, 0, 0, chunkInOrder, 0}, math.MaxInt64-10), 100)
	for name, body := range map[string][]byte{
		"empty":           {},
		"header only":     good[:header],
		"truncated":       good[:2],
		"bad kind":        spliced(kindAt, 9),
		"seq over 32 bit": spliced(kindAt+1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
		"span overflow":   append(overflow, 1),
	} {
		if rec, err := decodeJournalBody(body); !errors.Is(err, errBadJournalRecord) {
			t.Errorf("%s: %+v, %v; want %v", name, rec, err, errBadJournalRecord)
		}
	}
}

// TestChunkJournalRemoveBefore deletes old segments, never the one being
// written; reads of removed records fail cleanly.
func TestChunkJournalRemoveBefore(t *testing.T) {
	dir := t.TempDir()
	j, err := openChunkJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	pos := appendTestRecords(t, j, 200)
	lastSeg := pos[len(pos)-1].segment()
	if err := j.removeBefore(4); err != nil {
		t.Fatal(err)
	}
	if err := j.removeBefore(math.MaxUint32); err != nil {
		t.Fatal(err)
	}
	segs, _ := journalSegments(dir)
	if len(segs) != 1 || segs[0] != lastSeg {
		t.Fatalf("segments after removing all before the newest: %v, want [%d]", segs, lastSeg)
	}
	if _, _, err := j.read(pos[0], nil); err == nil {
		t.Fatal("read of a removed segment's record succeeded")
	}
	if rec, _, err := j.read(pos[len(pos)-1], nil); err != nil || !equalJournalRecords(rec, testJournalRecord(len(pos)-1)) {
		t.Fatalf("newest record: %+v, %v", rec, err)
	}
	if err := j.sync(); err != nil {
		t.Fatal(err)
	}
}

// FuzzJournalRecord decodes arbitrary bytes as a record's body: it fails
// cleanly or decodes to a record that encodes back to the same bytes.
func FuzzJournalRecord(f *testing.F) {
	for i := range 4 {
		f.Add(appendJournalRecord(nil, testJournalRecord(i*7))[journalHeader:])
	}
	f.Add([]byte{1, 0, 0, 9, 0, 0, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec, err := decodeJournalBody(body)
		if err != nil {
			return
		}
		again := appendJournalRecord(nil, rec)[journalHeader:]
		rec2, err := decodeJournalBody(again)
		if err != nil || !equalJournalRecords(rec, rec2) {
			t.Fatalf("round trip of %x: %+v, %v; want %+v", body, rec2, err, rec)
		}
	})
}

// FuzzJournalSegmentScan scans arbitrary bytes after a segment's magic:
// it stops cleanly, and each record it returns is framed at its offset.
func FuzzJournalSegmentScan(f *testing.F) {
	var seg []byte
	for i := range 3 {
		seg = appendJournalRecord(seg, testJournalRecord(i))
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, tail []byte) {
		data := append([]byte(journalMagic), tail...)
		end, err := scanJournalSegment(bytes.NewReader(data), 1, func(p journalPos, rec journalRecord) error {
			if int(p.offset()) >= len(data) {
				t.Fatalf("record at %v past the segment's %d bytes", p, len(data))
			}
			body, _, _, err := checkJournalFrame(data[p.offset():])
			if err != nil || body == nil {
				t.Fatalf("record at %v is not framed there: %v", p, err)
			}
			return nil
		})
		if err != nil || end > int64(len(data)) || end < int64(len(journalMagic)) {
			t.Fatalf("scan: end %d of %d bytes, %v", end, len(data), err)
		}
	})
}

// TestChunkJournalRemovesDeadSegments removes the segments whose records
// all lie in dead buckets, oldest first, once the readers of the epoch
// of the removal have left; retention learns the buckets they held.
func TestChunkJournalRemovesDeadSegments(t *testing.T) {
	j, err := openChunkJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	j.segmentBytes = 512 // a few records each
	var last journalPos
	for i := range 60 {
		if last, err = j.append(testJournalRecord(i), int64(i/20)); err != nil { // buckets 0, 1, 2
			t.Fatal(err)
		}
	}
	if err := j.flush(); err != nil {
		t.Fatal(err)
	}
	if b := j.bucketsThrough(0); !slices.Equal(b, []int64{0}) {
		t.Fatalf("buckets through 0: %v", b)
	}
	if b := j.bucketsThrough(1); !slices.Equal(b, []int64{1}) {
		t.Fatalf("buckets through 1 after 0 was dropped: %v", b)
	}
	before, _ := journalSegments(j.dir)
	j.deferRemoval(5, 0)
	if err := j.removeDeferred(5); err != nil { // a reader of epoch 5 is still open
		t.Fatal(err)
	}
	if segs, _ := journalSegments(j.dir); len(segs) != len(before) {
		t.Fatalf("segments %v removed while a reader of their epoch is open (before %v)", segs, before)
	}
	if err := j.removeDeferred(6); err != nil {
		t.Fatal(err)
	}
	after, _ := journalSegments(j.dir)
	if len(after) >= len(before) {
		t.Fatalf("segments %v after removing those of bucket 0, before %v", after, before)
	}
	for _, s := range after {
		if sp := j.spans[s]; sp.set && sp.max < 1 {
			t.Fatalf("segment %d of buckets %d-%d kept (segments %v, before %v)", s, sp.min, sp.max, after, before)
		}
	}
	j.deferRemoval(6, 9)
	if err := j.removeDeferred(math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	if segs, _ := journalSegments(j.dir); len(segs) != 1 || segs[0] != last.segment() {
		t.Fatalf("segments %v after every bucket died, want only the one being written (%d)", segs, last.segment())
	}
}

// TestChunkJournalSegmentPerBucket starts a segment when a record of a
// newer bucket comes, however little the segment holds, and keeps older
// records (a boundary's other side, late chunks) in the segment being
// written: a small node's compacted buckets then leave the disk.
func TestChunkJournalSegmentPerBucket(t *testing.T) {
	j, err := openChunkJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	buckets := []int64{0, 0, 1, 0, 1, 1, 0, 2, 1, 2}
	var pos []journalPos
	for i, b := range buckets {
		p, err := j.append(testJournalRecord(i), b)
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, p)
	}
	if err := j.flush(); err != nil {
		t.Fatal(err)
	}
	var segs []uint32
	for _, p := range pos {
		segs = append(segs, p.segment())
	}
	if want := []uint32{1, 1, 2, 2, 2, 2, 2, 3, 3, 3}; !slices.Equal(segs, want) {
		t.Fatalf("records of buckets %v went to segments %v, want %v", buckets, segs, want)
	}
	for i, p := range pos {
		rec, _, err := j.read(p, nil)
		if err != nil || rec.ref != testJournalRecord(i).ref {
			t.Fatalf("record %d at %v: %+v, %v", i, p, rec, err)
		}
	}
	j.deferRemoval(1, 1) // buckets 0 and 1 compacted
	if err := j.removeDeferred(2); err != nil {
		t.Fatal(err)
	}
	if got, _ := journalSegments(j.dir); !slices.Equal(got, []uint32{3}) {
		t.Fatalf("segments %v once buckets 0 and 1 are compacted, want [3]", got)
	}
}
