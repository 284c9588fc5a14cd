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
	"sync"
	"sync/atomic"
)

// The head snapshot is a file holding the open chunk of every active
// series as of a checkpoint, and the WAL segment from which replay must
// start on top of it. A checkpoint writes it whole to a temporary file and
// renames it into place, so it is never torn. Open chunks change on every
// scrape: in badger, rewriting a million of them every checkpoint kept
// the LSM compacting, and its table builders held hundreds of MiB; one
// sequential file costs a write of ~60 bytes a series and no memory.
//
// The file is a sequence of WAL frames (length, CRC, payload). The first
// payload is the header: "etcdgate-head\x01" and the segment (uvarint).
// Each further payload holds records:
//
//	ref:uvarint headMinT:varint maxT:varint lastV:uint64-LE len:uvarint chunk writer
//	writer := (tDelta:uvarint free:byte leading:byte trailing:byte)?  (when len > 0)
//
// The writer is the state of the chunk's XOR writer after its last sample
// (maxT, lastV), so that restoring the chunk is a copy: decoding every
// chunk and appending its samples again was most of the restore's time.
// Version 1 files ("etcdgate-head\x01") have no writer; their chunks are
// restored by appending their samples again.
//
// The previous snapshot is kept as head.snapshot.prev, and the WAL from
// its segment on: should the newest be lost or corrupt, recovery falls
// back to it, the chunks in badger and a longer WAL replay, and loses
// nothing.
//
// Version 3 frames start with their kind: 'r', records as above; 'c', the
// newest chunk journal record of series (chunk_journal.go) as
// (ref:uvarint pos:uvarint)*, active or not; 'e', last, the journal's
// end when the snapshot was committed and the buckets of each segment,
// pos:uvarint n:uvarint (seg:uvarint min:varint max:varint)*n: records
// from there on are found by a scan at start.
const (
	snapshotName     = "head.snapshot"
	snapshotPrevName = "head.snapshot.prev"
	snapshotMagicV1  = "etcdgate-head\x01"
	snapshotMagicV2  = "etcdgate-head\x02"
	snapshotMagic    = "etcdgate-head\x03"

	snapshotRecords byte = 'r'
	snapshotChains  byte = 'c'
	snapshotEnd     byte = 'e'
	// snapshotFrame is the payload size at which a frame is written.
	snapshotFrame = 256 << 10
)

// headSnapshot is the open chunk of an active series at a checkpoint.
type headSnapshot struct {
	headMinT, maxT int64
	lastV          uint64
	chunk          []byte   // nil when the series has no open chunk
	xor            xorState // chunk's writer after its last sample (maxT, lastV)
	hasXOR         bool     // xor was read (a version 1 file has none)
}

type snapshotWriter struct {
	dir     string
	fs      WALFS
	f       *os.File
	w       *bufio.Writer
	payload []byte // of the records frame being filled
	chains  []byte // of the chains frame being filled
	frame   []byte
	err     error
}

func createSnapshot(dir string, seg int, fs WALFS) (*snapshotWriter, error) {
	f, err := os.Create(filepath.Join(dir, snapshotName+".tmp"))
	if err != nil {
		return nil, fmt.Errorf("create head snapshot: %w", err)
	}
	w := &snapshotWriter{dir: dir, fs: fs, f: f, w: bufio.NewWriterSize(f, 1<<20)}
	w.payload = binary.AppendUvarint(append(w.payload, snapshotMagic...), uint64(seg))
	w.flushFrame()
	return w, w.err
}

// addChain records the newest journal record of a series.
func (w *snapshotWriter) addChain(ref SeriesRef, pos journalPos) {
	if len(w.chains) == 0 {
		w.chains = append(w.chains, snapshotChains)
	}
	w.chains = binary.AppendUvarint(binary.AppendUvarint(w.chains, uint64(ref)), uint64(pos))
	if len(w.chains) >= snapshotFrame {
		w.flushChains()
	}
}

func (w *snapshotWriter) flushChains() {
	if w.err != nil || len(w.chains) == 0 {
		return
	}
	w.frame = appendFrame(w.frame[:0], w.chains)
	_, w.err = w.w.Write(w.frame)
	w.chains = w.chains[:0]
}

// add appends the record of one series; the chunk is copied.
func (w *snapshotWriter) add(ref SeriesRef, h headSnapshot) {
	p := w.payload
	if len(p) == 0 {
		p = append(p, snapshotRecords)
	}
	p = binary.AppendUvarint(p, uint64(ref))
	p = binary.AppendVarint(p, h.headMinT)
	p = binary.AppendVarint(p, h.maxT)
	p = binary.LittleEndian.AppendUint64(p, h.lastV)
	p = binary.AppendUvarint(p, uint64(len(h.chunk)))
	p = append(p, h.chunk...)
	if len(h.chunk) > 0 {
		p = binary.AppendUvarint(p, h.xor.tDelta)
		p = append(p, h.xor.free, h.xor.leading, h.xor.trailing)
	}
	w.payload = p
	if len(w.payload) >= snapshotFrame {
		w.flushFrame()
	}
}

func (w *snapshotWriter) flushFrame() {
	if w.err != nil || len(w.payload) == 0 {
		return
	}
	w.frame = appendFrame(w.frame[:0], w.payload)
	_, w.err = w.w.Write(w.frame)
	w.payload = w.payload[:0]
}

// commit writes the file out, the journal's end last, and renames it
// into place; with sync it is fsynced first. The directory is fsynced
// after the rename in any mode: the WAL segments the snapshot replaces
// are deleted next, and a power cut must not keep those deletions but
// lose the rename.
func (w *snapshotWriter) commit(sync bool, journalEnd journalPos, spans map[uint32]bucketSpan) error {
	w.flushFrame()
	w.flushChains()
	w.payload = binary.AppendUvarint(append(w.payload[:0], snapshotEnd), uint64(journalEnd))
	w.payload = binary.AppendUvarint(w.payload, uint64(len(spans)))
	for _, seg := range slices.Sorted(maps.Keys(spans)) {
		w.payload = binary.AppendUvarint(w.payload, uint64(seg))
		w.payload = binary.AppendVarint(binary.AppendVarint(w.payload, spans[seg].min), spans[seg].max)
	}
	w.flushFrame()
	if w.err == nil {
		w.err = w.w.Flush()
	}
	if w.err == nil && sync {
		w.err = w.f.Sync()
	}
	if err := w.f.Close(); w.err == nil {
		w.err = err
	}
	if w.err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("write head snapshot: %w", w.err)
	}
	cur := filepath.Join(w.dir, snapshotName)
	if err := os.Rename(cur, filepath.Join(w.dir, snapshotPrevName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		os.Remove(w.f.Name())
		return fmt.Errorf("keep previous head snapshot: %w", err)
	}
	if err := os.Rename(w.f.Name(), cur); err != nil {
		return fmt.Errorf("install head snapshot: %w", err)
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fmt.Errorf("sync directory of head snapshot: %w", err)
	}
	return nil
}

func (w *snapshotWriter) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

var errBadSnapshot = errors.New("malformed head snapshot")

// readSnapshot calls fn for every record of the snapshot in dir and
// returns the WAL segment replay starts from; found is false when there
// is no snapshot. A record's chunk is valid only during fn.
func readSnapshot(dir string, fn func(SeriesRef, headSnapshot) error) (seg int, found bool, err error) {
	return readSnapshotFile(filepath.Join(dir, snapshotName), fn)
}

// readSnapshotFile reads the snapshot at path, as readSnapshot.
func readSnapshotFile(path string, fn func(SeriesRef, headSnapshot) error) (seg int, found bool, err error) {
	return eachSnapshotFrame(path, 1, func(version byte, payload []byte) error { return decodeSnapshotRecords(version, payload, fn) })
}

// eachSnapshotFrame reads the snapshot at path frame by frame, holding a
// few frames in memory rather than the file (at ten million series it is
// gigabytes), and calls fn with the payload of every frame after the
// header, on workers goroutines: in file order when workers is 1, else in
// any order and concurrently. A payload is valid only during fn. It stops
// at the first bad frame or error of fn, having passed every frame before
// it to fn (and perhaps some after it), and returns its error.
func eachSnapshotFrame(path string, workers int, fn func(version byte, payload []byte) error) (seg int, found bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	frame, err := readSnapshotFrame(r, 0, nil)
	if err == io.EOF {
		return 0, true, fmt.Errorf("%w: no header", errBadSnapshot)
	}
	if err != nil {
		return 0, true, err
	}
	if crc32.Checksum(frame[walFrameHeader:], castagnoli) != binary.LittleEndian.Uint32(frame[4:]) {
		return 0, true, fmt.Errorf("%w: bad frame at offset 0", errBadSnapshot)
	}
	seg, version, err := decodeSnapshotHeader(frame[walFrameHeader:])
	if err != nil {
		return 0, true, err
	}
	off := len(frame)

	type job struct {
		frame []byte
		off   int
	}
	jobs := make(chan job, workers)
	free := make(chan []byte, 2*workers+1) // bounds the frames in memory
	for range cap(free) {
		free <- nil
	}
	// A frame after one that failed is skipped, one before it never: the
	// error returned is the first in file order, as with one worker.
	var (
		stop     atomic.Bool
		mu       sync.Mutex
		firstErr error
		firstOff = math.MaxInt
	)
	before := func(off int) bool {
		mu.Lock()
		defer mu.Unlock()
		return off < firstOff
	}
	fail := func(off int, err error) {
		mu.Lock()
		if off < firstOff {
			firstOff, firstErr = off, err
		}
		mu.Unlock()
		stop.Store(true)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if before(j.off) {
					payload := j.frame[walFrameHeader:]
					if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(j.frame[4:]) {
						fail(j.off, fmt.Errorf("%w: bad frame at offset %d", errBadSnapshot, j.off))
					} else if err := fn(version, payload); err != nil {
						fail(j.off, err)
					}
				}
				free <- j.frame
			}
		}()
	}
	for !stop.Load() {
		frame, err := readSnapshotFrame(r, off, <-free)
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(off, err)
			break
		}
		jobs <- job{frame, off}
		off += len(frame)
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return 0, true, firstErr
	}
	return seg, true, nil
}

// readSnapshotFrame reads the frame at off into buf (reused if large
// enough), header and payload; the header's CRC is for the caller to
// check. It returns io.EOF at the end of the file.
func readSnapshotFrame(r *bufio.Reader, off int, buf []byte) ([]byte, error) {
	bad := fmt.Errorf("%w: bad frame at offset %d", errBadSnapshot, off)
	var hdr [walFrameHeader]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return nil, bad
		}
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(hdr[:]))
	if n > walMaxRecord {
		return nil, bad
	}
	buf = append(buf[:0], hdr[:]...)
	buf = slices.Grow(buf, n)[:walFrameHeader+n]
	if _, err := io.ReadFull(r, buf[walFrameHeader:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, bad
		}
		return nil, err
	}
	return buf, nil
}

// decodeSnapshotHeader returns the segment and the format version (1 to
// 3) of a snapshot's header.
func decodeSnapshotHeader(p []byte) (seg int, version byte, err error) {
	if m := string(p[:min(len(p), len(snapshotMagic))]); m != snapshotMagic && m != snapshotMagicV2 && m != snapshotMagicV1 {
		return 0, 0, fmt.Errorf("%w: unknown header", errBadSnapshot)
	}
	version = p[len(snapshotMagic)-1]
	d := decbuf{b: p[len(snapshotMagic):]}
	s := d.uvarint()
	if d.err != nil || s > 1<<31 {
		return 0, 0, fmt.Errorf("%w: bad segment in header", errBadSnapshot)
	}
	return int(s), version, nil
}

// decodeSnapshotRecords calls fn for each record of a payload of a
// snapshot of the given version; a version 3 payload of another kind
// holds none.
func decodeSnapshotRecords(version byte, p []byte, fn func(SeriesRef, headSnapshot) error) error {
	if version >= 3 {
		switch {
		case len(p) == 0:
			return fmt.Errorf("%w: empty frame", errBadSnapshot)
		case p[0] == snapshotChains || p[0] == snapshotEnd:
			return nil
		case p[0] != snapshotRecords:
			return fmt.Errorf("%w: frame of kind %q", errBadSnapshot, p[0])
		}
		p = p[1:]
	}
	d := decbuf{b: p}
	for len(d.b) > 0 && d.err == nil {
		ref := SeriesRef(d.uvarint())
		h := headSnapshot{headMinT: d.varint(), maxT: d.varint(), lastV: d.uint64()}
		n := d.uvarint()
		if d.err != nil || n > uint64(len(d.b)) {
			return fmt.Errorf("%w: truncated record", errBadSnapshot)
		}
		if n > 0 {
			h.chunk = d.b[:n]
		}
		d.b = d.b[n:]
		if n > 0 && version >= 2 {
			h.xor = xorState{tDelta: d.uvarint(), free: d.byte(), leading: d.byte(), trailing: d.byte()}
			if d.err != nil || !h.xor.valid() {
				return fmt.Errorf("%w: bad chunk writer of series %d", errBadSnapshot, ref)
			}
			h.hasXOR = true
		}
		if err := fn(ref, h); err != nil {
			return err
		}
	}
	if d.err != nil {
		return fmt.Errorf("%w: %v", errBadSnapshot, d.err)
	}
	return nil
}

// decodeSnapshotChains calls fn for each series' newest journal record in
// a version 3 payload of chains, and end for its journal end; other
// payloads hold neither.
func decodeSnapshotChains(version byte, p []byte, fn func(SeriesRef, journalPos) error, end func(journalPos, map[uint32]bucketSpan)) error {
	if version < 3 || len(p) == 0 {
		return nil
	}
	d := decbuf{b: p[1:]}
	switch p[0] {
	case snapshotRecords:
		return nil
	case snapshotEnd:
		pos := journalPos(d.uvarint())
		n := d.uvarint()
		if d.err != nil || n > uint64(len(d.b)) {
			return fmt.Errorf("%w: bad journal end", errBadSnapshot)
		}
		spans := make(map[uint32]bucketSpan, n)
		for range n {
			seg, lo, hi := d.uvarint(), d.varint(), d.varint()
			if d.err != nil || seg == 0 || seg > math.MaxUint32 || lo > hi {
				return fmt.Errorf("%w: bad journal segment span", errBadSnapshot)
			}
			spans[uint32(seg)] = bucketSpan{lo, hi, true}
		}
		if len(d.b) > 0 {
			return fmt.Errorf("%w: bytes after the journal end", errBadSnapshot)
		}
		end(pos, spans)
		return nil
	case snapshotChains:
		for len(d.b) > 0 && d.err == nil {
			ref, pos := SeriesRef(d.uvarint()), journalPos(d.uvarint())
			if d.err == nil && pos.offset() < uint32(len(journalMagic)) {
				return fmt.Errorf("%w: journal record of series %d at %v", errBadSnapshot, ref, pos)
			}
			if d.err == nil {
				if err := fn(ref, pos); err != nil {
					return err
				}
			}
		}
		if d.err != nil {
			return fmt.Errorf("%w: %v", errBadSnapshot, d.err)
		}
		return nil
	}
	return fmt.Errorf("%w: frame of kind %q", errBadSnapshot, p[0])
}
