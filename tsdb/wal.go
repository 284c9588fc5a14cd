package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// WALSync says when a write is acknowledged relative to fsync.
type WALSync string

const (
	// WALSyncNone acknowledges once the record is in the page cache: it
	// survives a crash of the process, not of the machine.
	WALSyncNone WALSync = "none"
	// WALSyncInterval fsyncs every interval and acknowledges after the
	// fsync that covers the record: it survives a power cut.
	WALSyncInterval WALSync = "interval"
)

// The WAL is a directory of numbered segment files. A segment is a
// sequence of frames: payload length (uint32 LE), CRC32-Castagnoli of the
// payload (uint32 LE), payload. A frame cut short by a crash is detected
// by its length or checksum and dropped on replay.
const (
	walFrameHeader = 8
	// walMaxSegment bounds a segment so that truncation frees space in
	// steps and replay can skip whole files.
	walMaxSegment = 128 << 20
	walMaxRecord  = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// wal appends records with group commit: concurrent callers of log share
// one write (and, with WALSyncInterval, one fsync).
type wal struct {
	dir      string
	sync     WALSync
	interval time.Duration
	logger   *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	pending  []byte // framed records waiting for the next write; guarded by mu
	spare    []byte // buffer swapped with pending by the writer; guarded by mu
	queued   uint64 // sequence of the last record in pending; guarded by mu
	written  uint64 // records up to this sequence are written; guarded by mu
	synced   uint64 // records up to this sequence are fsynced; guarded by mu
	flushing bool   // a writer is writing outside mu; guarded by mu
	err      error  // sticky write error; guarded by mu
	seg      *os.File
	segIndex int   // guarded by mu (and by flushing for writes to seg)
	segSize  int64 // guarded by flushing

	stop chan struct{}
	done chan struct{}
}

func walSegmentName(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("%08d", i))
}

// walSegments lists the segment indexes in dir, ascending.
func walSegments(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []int
	for _, e := range entries {
		if i, err := strconv.Atoi(e.Name()); err == nil && len(e.Name()) == 8 {
			segs = append(segs, i)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

// openWAL starts a new segment after the newest one in dir: replay has
// already read (and repaired) the existing ones.
func openWAL(dir string, mode WALSync, interval time.Duration, logger *slog.Logger) (*wal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	segs, err := walSegments(dir)
	if err != nil {
		return nil, err
	}
	next := 1
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	w := &wal{dir: dir, sync: mode, interval: interval, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	if err := w.openSegment(next); err != nil {
		return nil, err
	}
	if mode == WALSyncInterval {
		go w.syncLoop()
	} else {
		close(w.done)
	}
	return w, nil
}

func (w *wal) openSegment(i int) error {
	f, err := os.OpenFile(walSegmentName(w.dir, i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open WAL segment %d: %w", i, err)
	}
	w.seg, w.segIndex, w.segSize = f, i, 0
	return nil
}

// appendFrame frames payload onto dst.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// log writes one record and returns when it is durable as the sync mode
// promises. Records are written in the order log is called.
func (w *wal) log(payload []byte) error {
	if len(payload) > walMaxRecord {
		return fmt.Errorf("WAL record of %d bytes exceeds %d", len(payload), walMaxRecord)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.pending = appendFrame(w.pending, payload)
	w.queued++
	my := w.queued
	for w.written < my && w.err == nil {
		if w.flushing {
			w.cond.Wait()
			continue
		}
		w.flushLocked()
	}
	for w.sync == WALSyncInterval && w.synced < my && w.err == nil {
		w.cond.Wait()
	}
	return w.err
}

// flushLocked writes everything pending with mu released during the
// write, so that new records queue up for the next group. Called with
// mu held and no other flush in progress.
func (w *wal) flushLocked() {
	w.flushing = true
	buf, upto := w.pending, w.queued
	w.pending = w.spare[:0]
	w.mu.Unlock()
	_, err := w.seg.Write(buf)
	w.segSize += int64(len(buf))
	var rotateErr error
	if err == nil && w.segSize >= walMaxSegment {
		rotateErr = w.rotateFlushing()
	}
	w.mu.Lock()
	w.spare = buf
	w.flushing = false
	if err != nil {
		w.err = fmt.Errorf("write WAL segment %d: %w", w.segIndex, err)
	} else if rotateErr != nil {
		w.err = rotateErr
	} else {
		w.written = upto
	}
	w.cond.Broadcast()
}

// rotateFlushing closes the current segment and opens the next. The
// caller is the only writer (it holds flushing) and, for fsync, needs no
// lock: syncing a closed file is avoided by syncing before closing.
func (w *wal) rotateFlushing() error {
	if err := w.seg.Sync(); err != nil {
		return fmt.Errorf("sync WAL segment %d: %w", w.segIndex, err)
	}
	if err := w.seg.Close(); err != nil {
		return err
	}
	w.mu.Lock()
	next := w.segIndex + 1
	w.mu.Unlock()
	return w.openSegment(next)
}

// cut flushes everything logged so far and starts a new segment. It
// returns the index of the new segment: every record logged before cut
// returned lives in a lower segment. Callers must not log concurrently
// (the DB holds its commit lock exclusively).
func (w *wal) cut() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.flushing {
		w.cond.Wait()
	}
	if w.written < w.queued {
		w.flushLocked()
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.seg.Sync(); err != nil {
		return 0, err
	}
	if err := w.seg.Close(); err != nil {
		return 0, err
	}
	w.synced = w.written
	if err := w.openSegment(w.segIndex + 1); err != nil {
		w.err = err
		return 0, err
	}
	return w.segIndex, nil
}

// syncLoop fsyncs every interval and releases the waiters it covered.
func (w *wal) syncLoop() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		for w.flushing {
			w.cond.Wait()
		}
		upto, f := w.written, w.seg
		if upto == w.synced {
			w.mu.Unlock()
			continue
		}
		// Hold flushing so no writer rotates f away while it syncs.
		w.flushing = true
		w.mu.Unlock()
		err := f.Sync()
		w.mu.Lock()
		w.flushing = false
		if err != nil && w.err == nil {
			w.err = fmt.Errorf("sync WAL: %w", err)
		} else if upto > w.synced {
			w.synced = upto
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// truncateBefore deletes the segments below index i.
func (w *wal) truncateBefore(i int) error {
	segs, err := walSegments(w.dir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s >= i {
			break
		}
		if err := os.Remove(walSegmentName(w.dir, s)); err != nil {
			return err
		}
	}
	return nil
}

func (w *wal) close() error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.flushing {
		w.cond.Wait()
	}
	if w.written < w.queued && w.err == nil {
		w.flushLocked()
	}
	if err := w.seg.Sync(); err != nil {
		return err
	}
	return w.seg.Close()
}

// replayWAL calls fn with every intact record of the segments >= from, in
// order. A frame cut short or failing its checksum ends its segment: in
// the last segment that is the torn tail of a crash, and the file is
// truncated to its intact prefix; in an earlier one the loss is logged.
func replayWAL(dir string, from int, logger *slog.Logger, fn func(payload []byte) error) error {
	segs, err := walSegments(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for k, s := range segs {
		if s < from {
			continue
		}
		name := walSegmentName(dir, s)
		data, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read WAL segment %d: %w", s, err)
		}
		good, err := replaySegment(data, fn)
		if err != nil {
			return fmt.Errorf("WAL segment %d: %w", s, err)
		}
		if good < len(data) {
			logger.Warn("WAL segment has a torn or corrupt record; dropping its tail",
				"segment", s, "intact_bytes", good, "dropped_bytes", len(data)-good, "last_segment", k == len(segs)-1)
			if err := os.Truncate(name, int64(good)); err != nil {
				return err
			}
		}
	}
	return nil
}

// replaySegment returns the length of the intact prefix of data. fn
// must not keep the payload.
func replaySegment(data []byte, fn func([]byte) error) (int, error) {
	off := 0
	for off < len(data) {
		payload, next, ok := readFrame(data, off)
		if !ok {
			return off, nil
		}
		if err := fn(payload); err != nil {
			return off, err
		}
		off = next
	}
	return off, nil
}

// readFrame returns the payload of the frame at off, if intact.
func readFrame(data []byte, off int) (payload []byte, next int, ok bool) {
	if off+walFrameHeader > len(data) {
		return nil, 0, false
	}
	n := int(binary.LittleEndian.Uint32(data[off:]))
	end := off + walFrameHeader + n
	if n > walMaxRecord || end > len(data) {
		return nil, 0, false
	}
	payload = data[off+walFrameHeader : end]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(data[off+4:]) {
		return nil, 0, false
	}
	return payload, end, true
}
