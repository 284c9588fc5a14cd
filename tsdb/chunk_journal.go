package tsdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// The chunk journal holds closed chunks from the checkpoint that takes
// them out of the head until their bucket is compacted. A checkpoint
// appends them, sequentially, instead of writing them through badger,
// whose LSM tree rewrote every byte at every level and held hundreds of
// MiB of table builders at each checkpoint at ten million series
// (BenchmarkStoreCheckpointWrites).
//
// A series' records form a chain, newest first: each names the series'
// previous record and the newest sample of every record before it
// (prevMaxT), so that a reader stops as soon as the rest of the chain
// holds nothing it wants. The head keeps only the position of the
// newest record of each series.
//
// A segment is a file named by its number (8 decimal digits, from 1):
//
//	segment := magic record*
//	magic   := "EGCJ" version:byte 0 0 0
//	record  := len:uint32-LE crc:uint32-LE body      (crc32c of body, len = len(body))
//	body    := ref:uvarint prev:uvarint prevMaxT:varint kind:byte seq:uvarint
//	           minT:varint span:uvarint data          (maxT = minT + span)
//
// A position is the segment's number << 32 | the offset of the record's
// len field, so 0 is no record. Segments are written once, in order, and
// never appended to after the process that wrote them stops: a crash may
// leave a torn tail, which no chain reaches (a checkpoint makes its
// records durable before the snapshot that names them).
const (
	journalMagic   = "EGCJ\x01\x00\x00\x00"
	journalHeader  = 8       // len and crc of a record
	journalSegment = 1 << 28 // bytes a segment grows to before the next begins
	// maxJournalBody bounds a record's body as a reader accepts it: a
	// chunk is a few hundred bytes, an out-of-order one a few KiB.
	maxJournalBody = 1 << 20
	// journalReadAhead is what a read fetches at once: most records fit.
	journalReadAhead = 512
)

var errBadJournalRecord = errors.New("malformed chunk journal record")

// bucketSpan is the oldest and the newest bucket of a segment's records.
type bucketSpan struct {
	min, max int64
	set      bool // false: no record yet
}

func (s bucketSpan) with(b int64) bucketSpan {
	if !s.set {
		return bucketSpan{b, b, true}
	}
	return bucketSpan{min(s.min, b), max(s.max, b), true}
}

// journalPos is the position of a record: segment << 32 | offset.
type journalPos uint64

func makeJournalPos(seg uint32, off uint32) journalPos { return journalPos(seg)<<32 | journalPos(off) }

func (p journalPos) segment() uint32 { return uint32(p >> 32) }
func (p journalPos) offset() uint32  { return uint32(p) }

func (p journalPos) String() string { return fmt.Sprintf("%d:%d", p.segment(), p.offset()) }

// journalRecord is one chunk of one series, and the link to the series'
// previous record.
type journalRecord struct {
	ref      SeriesRef
	prev     journalPos // the series' previous record; 0 if none
	prevMaxT int64      // newest sample of any record before this one; minInt64 if none
	kind     byte       // chunkInOrder or chunkOutOfOrder
	seq      uint32     // tells out-of-order chunks of one checkpoint apart
	chunk    memChunk
}

// appendJournalRecord appends rec, framed, to dst.
func appendJournalRecord(dst []byte, rec journalRecord) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, journalHeader)...)
	dst = binary.AppendUvarint(dst, uint64(rec.ref))
	dst = binary.AppendUvarint(dst, uint64(rec.prev))
	dst = binary.AppendVarint(dst, rec.prevMaxT)
	dst = append(dst, rec.kind)
	dst = binary.AppendUvarint(dst, uint64(rec.seq))
	dst = binary.AppendVarint(dst, rec.chunk.minT)
	dst = binary.AppendUvarint(dst, uint64(rec.chunk.maxT-rec.chunk.minT))
	dst = append(dst, rec.chunk.data...)
	body := dst[start+journalHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// decodeJournalBody decodes a record's body. The chunk's data aliases
// body.
func decodeJournalBody(body []byte) (journalRecord, error) {
	var rec journalRecord
	b := body
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	ref, prev := uvarint(), uvarint()
	rec.ref, rec.prev = SeriesRef(ref), journalPos(prev)
	rec.prevMaxT = varint()
	if len(b) < 1 {
		return rec, fmt.Errorf("%w: truncated before its kind", errBadJournalRecord)
	}
	rec.kind, b = b[0], b[1:]
	seq := uvarint()
	minT := varint()
	span := uvarint()
	switch {
	case b == nil:
		return rec, fmt.Errorf("%w: truncated header", errBadJournalRecord)
	case rec.kind != chunkInOrder && rec.kind != chunkOutOfOrder:
		return rec, fmt.Errorf("%w: chunk kind %d", errBadJournalRecord, rec.kind)
	case seq > math.MaxUint32:
		return rec, fmt.Errorf("%w: seq %d", errBadJournalRecord, seq)
	case span > math.MaxInt64 || minT > math.MaxInt64-int64(span):
		return rec, fmt.Errorf("%w: chunk from %d spans %d ms", errBadJournalRecord, minT, span)
	case len(b) == 0:
		return rec, fmt.Errorf("%w: chunk without data", errBadJournalRecord)
	}
	rec.seq = uint32(seq)
	rec.chunk = memChunk{data: b, minT: minT, maxT: minT + int64(span)}
	return rec, nil
}

// checkJournalFrame returns the body of the frame at the start of b, and
// the frame's length, once its length is within bounds and its checksum
// holds. more is the frame's length when b holds only part of it.
func checkJournalFrame(b []byte) (body []byte, frame int, more int, err error) {
	if len(b) < journalHeader {
		return nil, 0, journalHeader, nil
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxJournalBody {
		return nil, 0, 0, fmt.Errorf("%w: body of %d bytes", errBadJournalRecord, n)
	}
	frame = journalHeader + int(n)
	if len(b) < frame {
		return nil, 0, frame, nil
	}
	body = b[journalHeader:frame]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, 0, fmt.Errorf("%w: checksum mismatch", errBadJournalRecord)
	}
	return body, frame, 0, nil
}

// chunkJournal is a directory of journal segments: one writer (the
// checkpoint, under checkpointMu) appends to the newest, any number of
// readers read records by position.
type chunkJournal struct {
	dir          string
	segmentBytes int64 // journalSegment; tests make it small

	mu    sync.RWMutex
	files map[uint32]*journalFile // every segment, open for reading
	first uint32                  // the oldest segment; 0 if none

	appended atomic.Int64 // bytes appended since open, framing included

	// spans holds the buckets each segment's records lie in, as far as
	// appends and noteSpan told it: what retention and compaction
	// remove segments by.
	spans    map[uint32]bucketSpan // guarded by mu
	dropped  int64                 // guarded by mu: the newest bucket bucketsThrough returned; minInt64 if none
	removals []journalRemoval      // the writer's: removals waiting for readers, oldest first

	// The writer's: append, flush, sync and removeBefore are called by
	// one goroutine at a time (the checkpoint's or the compaction's,
	// under checkpointMu).
	seg      uint32       // segment being written; 0 before the first append
	cur      *journalFile // its reading side
	off      uint32       // its size, buffered bytes included
	out      *os.File
	w        *bufio.Writer
	buf      []byte
	unsynced []uint32 // segments written since the last sync, seg last
	dirDirty bool     // a segment was created or removed since the last sync
}

// journalFile is a segment open for reading, and mapped: a query's read
// of a record copies it from the mapping instead of calling pread, which
// cost a system call a record. The segment being written is mapped at the
// size it may grow to, and read through the mapping only up to what has
// been flushed to the file: a page past the file's end must never be
// touched (SIGBUS).
type journalFile struct {
	f    *os.File
	data []byte       // the mapping; nil when mapping failed (reads use pread)
	end  atomic.Int64 // bytes of data a read may touch: the file's, flushed
}

// openJournalFile maps the segment f for reads of up to mapped bytes, of
// which the first end are in the file.
func openJournalFile(f *os.File, mapped, end int64) *journalFile {
	jf := &journalFile{f: f, data: mapSegment(f, mapped)}
	jf.end.Store(end)
	return jf
}

func (jf *journalFile) close() error {
	err := unmapSegment(jf.data)
	jf.data = nil
	return errors.Join(err, jf.f.Close())
}

// openChunkJournal opens the journal in dir, creating dir. It appends to
// no segment it finds: the first append starts a new one.
func openChunkJournal(dir string) (*chunkJournal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	segs, err := journalSegments(dir)
	if err != nil {
		return nil, err
	}
	j := &chunkJournal{dir: dir, segmentBytes: journalSegment, files: make(map[uint32]*journalFile, len(segs)), spans: map[uint32]bucketSpan{}, dropped: minInt64}
	for _, s := range segs {
		f, err := os.Open(j.segmentPath(s))
		if err != nil {
			j.close()
			return nil, err
		}
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		j.files[s] = openJournalFile(f, size, size)
	}
	if len(segs) > 0 {
		j.first, j.seg = segs[0], segs[len(segs)-1]
	}
	return j, nil
}

// journalSegments returns the numbers of the segments in dir, ascending.
// Other files (a temporary file, a stray copy) are not segments.
func journalSegments(dir string) ([]uint32, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []uint32
	for _, e := range entries {
		if len(e.Name()) != 8 || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || n == 0 {
			continue
		}
		segs = append(segs, uint32(n))
	}
	slices.Sort(segs)
	return segs, nil
}

func (j *chunkJournal) segmentPath(seg uint32) string {
	return filepath.Join(j.dir, fmt.Sprintf("%08d", seg))
}

// append appends rec, whose chunk lies in bucket, and returns its
// position. The record is readable once flush or sync returns, and
// durable once sync does.
func (j *chunkJournal) append(rec journalRecord, bucket int64) (journalPos, error) {
	j.buf = appendJournalRecord(j.buf[:0], rec)
	if len(j.buf)-journalHeader > maxJournalBody {
		return 0, fmt.Errorf("journal record of %d bytes for series %d: over %d", len(j.buf), rec.ref, maxJournalBody)
	}
	if j.out == nil || int64(j.off)+int64(len(j.buf)) > j.segmentBytes || j.newerBucket(bucket) {
		if err := j.nextSegment(); err != nil {
			return 0, err
		}
	}
	pos := makeJournalPos(j.seg, j.off)
	if _, err := j.w.Write(j.buf); err != nil {
		return 0, fmt.Errorf("append to chunk journal segment %d: %w", j.seg, err)
	}
	j.off += uint32(len(j.buf))
	j.appended.Add(int64(len(j.buf)))
	j.markUnsynced()
	if sp := j.spans[j.seg]; !sp.set || bucket < sp.min || bucket > sp.max { // read without the lock: only the writer writes spans
		j.noteSpan(j.seg, bucket)
	}
	return pos, nil
}

// newerBucket reports whether bucket is newer than every record of the
// segment being written: the journal then starts a segment per bucket, so
// a segment's newest bucket is the one it began with (older records, the
// other side of a boundary or late chunks, go to the segment being
// written), and it goes once that bucket is compacted. Without it a node
// too small to fill a segment in a bucket kept every compacted bucket's
// records on disk until the segment filled.
func (j *chunkJournal) newerBucket(bucket int64) bool {
	sp := j.spans[j.seg] // read without the lock: only the writer writes spans
	return sp.set && bucket > sp.max
}

// segments returns how many segments the journal has.
func (j *chunkJournal) segments() int {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return len(j.files)
}

// spanCopy returns each segment's buckets.
func (j *chunkJournal) spanCopy() map[uint32]bucketSpan {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return maps.Clone(j.spans)
}

// end returns the position the next record would be appended at (before
// the first append, the start of the next segment): what a scan of later
// records starts from.
func (j *chunkJournal) end() journalPos {
	if j.out == nil {
		return makeJournalPos(j.seg+1, 0)
	}
	return makeJournalPos(j.seg, j.off)
}

// markUnsynced notes that the segment being written has bytes the next
// sync must make durable.
func (j *chunkJournal) markUnsynced() {
	if n := len(j.unsynced); n == 0 || j.unsynced[n-1] != j.seg {
		j.unsynced = append(j.unsynced, j.seg)
	}
}

// noteSpan records that segment seg holds a record in bucket.
func (j *chunkJournal) noteSpan(seg uint32, bucket int64) {
	j.mu.Lock()
	j.spans[seg] = j.spans[seg].with(bucket)
	j.mu.Unlock()
}

// bucketsThrough returns the buckets up to last, and past those an
// earlier call returned, that any segment holds records of: the buckets
// retention drops from the journal.
func (j *chunkJournal) bucketsThrough(last int64) []int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var buckets []int64
	for _, sp := range j.spans {
		for b := max(sp.min, j.dropped+1); b <= min(sp.max, last); b++ {
			if !slices.Contains(buckets, b) {
				buckets = append(buckets, b)
			}
		}
	}
	slices.Sort(buckets)
	j.dropped = max(j.dropped, last)
	return buckets
}

// oldestSpan returns the oldest bucket at or after from that some segment
// holds records of, up to last.
func (j *chunkJournal) oldestSpan(from, last int64) (int64, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	best, found := int64(0), false
	for _, sp := range j.spans {
		b := max(sp.min, from)
		if b <= min(sp.max, last) && (!found || b < best) {
			best, found = b, true
		}
	}
	return best, found
}

// deferRemoval queues the removal of the segments whose records all lie
// in buckets up to dead, oldest first (never the one being written), to
// be done once every reader that entered at or before epoch has left
// (removeDeferred).
func (j *chunkJournal) deferRemoval(epoch uint64, dead int64) {
	j.mu.RLock()
	segs := slices.Sorted(maps.Keys(j.spans))
	keep := uint32(0)
	for _, s := range segs {
		if j.spans[s].max > dead || s == j.seg {
			keep = s
			break
		}
	}
	j.mu.RUnlock()
	if keep == 0 {
		keep = j.seg
	}
	if keep > j.first {
		j.removals = append(j.removals, journalRemoval{epoch: epoch, keep: keep})
	}
}

// journalRemoval is a removal of the segments before keep, waiting for
// the readers of epoch and before.
type journalRemoval struct {
	epoch uint64
	keep  uint32
}

// removeDeferred does the queued removals whose readers have left:
// oldest is the oldest epoch a reader is still open in.
func (j *chunkJournal) removeDeferred(oldest uint64) error {
	keep := uint32(0)
	n := 0
	for _, r := range j.removals {
		if r.epoch >= oldest {
			break
		}
		keep = max(keep, r.keep)
		n++
	}
	j.removals = j.removals[n:]
	if keep == 0 {
		return nil
	}
	if err := j.removeBefore(keep); err != nil {
		return err
	}
	j.mu.Lock()
	for s := range j.spans {
		if s < keep {
			delete(j.spans, s)
		}
	}
	j.mu.Unlock()
	return nil
}

// nextSegment flushes the segment being written and starts the next.
func (j *chunkJournal) nextSegment() error {
	if err := j.flush(); err != nil {
		return err
	}
	if j.seg == math.MaxUint32 {
		return errors.New("chunk journal: segment numbers exhausted")
	}
	seg := j.seg + 1
	out, err := os.OpenFile(j.segmentPath(seg), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create chunk journal segment: %w", err)
	}
	in, err := os.Open(j.segmentPath(seg))
	if err != nil {
		out.Close()
		return err
	}
	if j.w == nil {
		j.w = bufio.NewWriterSize(out, 1<<20)
	} else {
		j.w.Reset(out)
	}
	if _, err := j.w.WriteString(journalMagic); err != nil {
		out.Close()
		in.Close()
		return err
	}
	j.mu.Lock()
	j.cur = openJournalFile(in, max(j.segmentBytes, int64(len(journalMagic)+journalHeader+maxJournalBody)), 0)
	j.files[seg] = j.cur
	if j.first == 0 {
		j.first = seg
	}
	j.mu.Unlock()
	if j.out != nil {
		// Synced with the rest by the next sync; closing does not lose it.
		if err := j.out.Close(); err != nil {
			return fmt.Errorf("close chunk journal segment %d: %w", j.seg, err)
		}
	}
	j.out, j.seg, j.off = out, seg, uint32(len(journalMagic))
	j.markUnsynced()
	j.dirDirty = true
	return nil
}

// flush hands the buffered records to the file, which makes them
// readable.
func (j *chunkJournal) flush() error {
	if j.w == nil || j.w.Buffered() == 0 {
		return nil
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("write chunk journal segment %d: %w", j.seg, err)
	}
	j.cur.end.Store(int64(j.off))
	return nil
}

// sync makes every record appended so far durable: the segments written
// since the last sync, and the directory's entries.
func (j *chunkJournal) sync() error {
	if err := j.flush(); err != nil {
		return err
	}
	for _, s := range j.unsynced {
		var err error
		if s == j.seg && j.out != nil {
			err = j.out.Sync()
		} else {
			err = syncFile(j.segmentPath(s))
		}
		if err != nil {
			return fmt.Errorf("sync chunk journal segment %d: %w", s, err)
		}
	}
	j.unsynced = j.unsynced[:0]
	if j.dirDirty {
		if err := syncDir(j.dir); err != nil {
			return err
		}
		j.dirDirty = false
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// readMapped is read through the segment's mapping. A record the
// mapping does not yield whole and intact is read again with pread, which
// reports what is wrong with it. The pages a read touches count in the
// node's resident set until the kernel reclaims them or the segment is
// removed, so it serves queries, whose reads are few records of many
// series; compaction and eviction, which read whole buckets of records
// once, read with pread.
func (j *chunkJournal) readMapped(pos journalPos, buf []byte) (journalRecord, []byte, error) {
	j.mu.RLock()
	if jf := j.files[pos.segment()]; jf != nil && jf.data != nil {
		rec, b, err := readMappedRecord(jf.data[:min(jf.end.Load(), int64(len(jf.data)))], pos, buf)
		// After the copy: removal unmaps under the write lock. A page
		// fault during the copy (the record's page not in memory) holds
		// the read lock for one page's disk read; a writer taking the
		// lock meanwhile (removal, a new segment) waits that long.
		j.mu.RUnlock()
		if err == nil {
			return rec, b, nil
		}
		buf = b
	} else {
		j.mu.RUnlock()
	}
	return j.read(pos, buf)
}

// read returns the record at pos, its chunk's data in buf (grown as
// needed and returned).
func (j *chunkJournal) read(pos journalPos, buf []byte) (journalRecord, []byte, error) {
	j.mu.RLock()
	jf := j.files[pos.segment()]
	j.mu.RUnlock()
	if jf == nil || pos.offset() < uint32(len(journalMagic)) {
		return journalRecord{}, buf, fmt.Errorf("chunk journal: no record at %v", pos)
	}
	f := jf.f
	buf = slices.Grow(buf[:0], journalReadAhead)[:journalReadAhead]
	n, err := f.ReadAt(buf, int64(pos.offset()))
	if err != nil && !errors.Is(err, io.EOF) {
		return journalRecord{}, buf, fmt.Errorf("read chunk journal at %v: %w", pos, err)
	}
	body, _, more, err := checkJournalFrame(buf[:n])
	if err == nil && body == nil && more > n {
		buf = slices.Grow(buf[:0], more)[:more]
		if n, err = f.ReadAt(buf, int64(pos.offset())); err == nil || errors.Is(err, io.EOF) {
			body, _, _, err = checkJournalFrame(buf[:n])
		}
	}
	if err == nil && body == nil {
		err = fmt.Errorf("%w: truncated", errBadJournalRecord)
	}
	if err != nil {
		return journalRecord{}, buf, fmt.Errorf("chunk journal at %v: %w", pos, err)
	}
	rec, err := decodeJournalBody(body)
	if err != nil {
		return journalRecord{}, buf, fmt.Errorf("chunk journal at %v: %w", pos, err)
	}
	return rec, buf, nil
}

// readMappedRecord is read from a segment's mapping, data being the part
// a read may touch: the record's body is checked in place and copied to
// buf, which the returned chunk's data then lies in.
func readMappedRecord(data []byte, pos journalPos, buf []byte) (journalRecord, []byte, error) {
	off := int(pos.offset())
	if off < len(journalMagic) || off >= len(data) {
		return journalRecord{}, buf, fmt.Errorf("chunk journal: no record at %v", pos)
	}
	body, _, _, err := checkJournalFrame(data[off:])
	if err == nil && body == nil {
		err = fmt.Errorf("%w: truncated", errBadJournalRecord)
	}
	if err != nil {
		return journalRecord{}, buf, fmt.Errorf("chunk journal at %v: %w", pos, err)
	}
	buf = append(buf[:0], body...)
	rec, err := decodeJournalBody(buf)
	if err != nil {
		return journalRecord{}, buf, fmt.Errorf("chunk journal at %v: %w", pos, err)
	}
	return rec, buf, nil
}

// removeBefore deletes the segments older than seg; never the one being
// written.
func (j *chunkJournal) removeBefore(seg uint32) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.first != 0 && j.first < seg && j.first != j.seg {
		if jf := j.files[j.first]; jf != nil {
			jf.close()
			delete(j.files, j.first)
		}
		if err := os.Remove(j.segmentPath(j.first)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove chunk journal segment %d: %w", j.first, err)
		}
		j.unsynced = slices.DeleteFunc(j.unsynced, func(s uint32) bool { return s == j.first })
		j.dirDirty = true
		j.first++
		for j.first < j.seg && j.files[j.first] == nil {
			j.first++
		}
	}
	return nil
}

// close closes the segments; it does not sync.
func (j *chunkJournal) close() error {
	err := j.flush()
	if j.out != nil {
		err = errors.Join(err, j.out.Close())
		j.out = nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for s, jf := range j.files {
		err = errors.Join(err, jf.close())
		delete(j.files, s)
	}
	return err
}

// scanJournalSegment calls fn with every record of a segment, in order,
// until the first that is torn or malformed: what a crash left after the
// last sync. It returns the offset where the valid records end. A
// record's chunk data is valid during the call only.
func scanJournalSegment(r io.Reader, seg uint32, fn func(journalPos, journalRecord) error) (int64, error) {
	return scanJournalSegmentFrom(r, seg, 0, fn)
}

// scanJournalSegmentFrom is scanJournalSegment from offset off of a
// segment (0: its start, magic included), r seekable when off > 0.
func scanJournalSegmentFrom(r io.Reader, seg uint32, off int64, fn func(journalPos, journalRecord) error) (int64, error) {
	if off <= int64(len(journalMagic)) {
		off = 0
	} else if s, ok := r.(io.Seeker); !ok {
		return 0, fmt.Errorf("chunk journal segment %d: cannot start at %d", seg, off)
	} else if _, err := s.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(r, 1<<20)
	if off == 0 {
		magic := make([]byte, len(journalMagic))
		n, err := io.ReadFull(br, magic)
		if err != nil && string(magic[:n]) == journalMagic[:n] {
			return 0, nil // created, then a crash before its first write
		}
		if err != nil || string(magic) != journalMagic {
			return 0, fmt.Errorf("chunk journal segment %d: not a segment (magic %q)", seg, magic[:n])
		}
		off = int64(len(journalMagic))
	}
	var frame []byte
	for {
		hdr, err := br.Peek(journalHeader)
		if err != nil || off > math.MaxUint32-journalHeader-maxJournalBody {
			return off, nil // the end, a torn header, or past what a position can name
		}
		_, _, more, err := checkJournalFrame(hdr)
		if err != nil {
			return off, nil
		}
		frame = slices.Grow(frame[:0], more)[:more]
		if _, err := io.ReadFull(br, frame); err != nil {
			return off, nil // torn
		}
		body, _, _, err := checkJournalFrame(frame)
		if err != nil {
			return off, nil
		}
		rec, err := decodeJournalBody(body)
		if err != nil {
			return off, nil
		}
		if err := fn(makeJournalPos(seg, uint32(off)), rec); err != nil {
			return off, err
		}
		off += int64(len(frame))
	}
}
