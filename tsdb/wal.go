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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// wal appends records with group commit: concurrent callers of write
// share one write (and, with WALSyncInterval, one fsync).
//
// File I/O runs outside mu, under one of two tokens: flushing, held by
// the one writer writing pending records to the current segment (and
// rotating it when full), and syncing, held by the one syncer fsyncing
// segments and the directory. They run concurrently: a writer never
// waits for an fsync, and only the syncer closes segments (those
// switched away from, once fsynced), so it never syncs a closed file.
//
// A failed write, create or fsync is sticky (err): every write is
// refused until the DB recovers, by cutting to a fresh segment
// (cut with recovering), checkpointing the head, and calling recovered.
type wal struct {
	dir      string
	sync     WALSync
	interval time.Duration
	logger   *slog.Logger
	fs       WALFS
	fsyncs   prometheus.Observer // seconds each syncSegments spent in fsync

	mu       sync.Mutex
	cond     *sync.Cond
	pending  []byte                // framed records waiting for the next write; guarded by mu
	spare    []byte                // buffer swapped with pending by the writer; guarded by mu
	queued   uint64                // sequence of the last record in pending; guarded by mu
	written  uint64                // records up to this sequence are written; guarded by mu
	synced   uint64                // records up to this sequence are fsynced, and their segments' names; guarded by mu
	flushing bool                  // a writer is writing outside mu; guarded by mu
	syncing  bool                  // a syncer is syncing outside mu; guarded by mu
	err      error                 // sticky failure, wrapping ErrWALFailed; guarded by mu
	failed   atomic.Pointer[error] // err, for failure to read without mu on every request
	seg      SegmentFile           // current segment; guarded by mu, written under flushing
	segIndex int                   // guarded by mu
	segSize  int64                 // guarded by flushing
	closing  []SegmentFile         // segments switched away from, to fsync and close; guarded by mu
	dirDirty bool                  // a segment was created since the directory's last fsync; guarded by mu

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
// fsyncs observes the time each round of fsyncs takes.
func openWAL(dir string, fs WALFS, mode WALSync, interval time.Duration, fsyncs prometheus.Observer, logger *slog.Logger) (*wal, error) {
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
	w := &wal{dir: dir, fs: fs, sync: mode, interval: interval, fsyncs: fsyncs, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	f, err := w.fs.Create(walSegmentName(dir, next))
	if err != nil {
		return nil, fmt.Errorf("open WAL segment %d: %w", next, err)
	}
	w.seg, w.segIndex = f, next
	// The new segment's name must be durable before a record in it is
	// acknowledged as surviving a power cut.
	if err := w.fs.SyncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync WAL directory: %w", err)
	}
	if mode == WALSyncInterval {
		go w.syncLoop()
	} else {
		close(w.done)
	}
	return w, nil
}

// failLocked makes err the sticky failure; a later failure (a recovery
// attempt's) replaces the cause, so that it names the current fault. The
// caller holds mu.
func (w *wal) failLocked(err error) {
	if w.err == nil {
		w.logger.Error("WAL failed; writes are refused until it recovers", "err", err)
	}
	failed := fmt.Errorf("%w: %w", ErrWALFailed, err)
	w.err = failed
	w.failed.Store(&failed)
	w.cond.Broadcast()
}

// failure returns the sticky failure, or nil.
func (w *wal) failure() error {
	if p := w.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// appendFrame frames payload onto dst.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// write writes one record to the current segment and returns its
// sequence number for waitSynced. Records are written in the order write
// is called.
func (w *wal) write(payload []byte) (uint64, error) {
	if len(payload) > walMaxRecord {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrCommitTooLarge, len(payload), walMaxRecord)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
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
	if w.written >= my {
		return my, nil // a later group's failure is not this record's
	}
	return my, w.err
}

// waitSynced returns when record seq is as durable as the sync mode
// promises: at once with WALSyncNone, after the fsync that covers it
// with WALSyncInterval.
func (w *wal) waitSynced(seq uint64) error {
	if w.sync != WALSyncInterval {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.synced < seq && w.err == nil {
		w.cond.Wait()
	}
	if w.synced >= seq {
		return nil
	}
	return w.err
}

// flushLocked writes everything pending with mu released during the
// write, so that new records queue up for the next group. A full segment
// is switched for a new one (no fsync: the syncer does that). Called with
// mu held and no other flush in progress.
func (w *wal) flushLocked() {
	w.flushing = true
	buf, upto, seg, index := w.pending, w.queued, w.seg, w.segIndex
	w.pending = w.spare[:0]
	w.mu.Unlock()
	n, err := seg.Write(buf)
	w.segSize += int64(n)
	var next SegmentFile
	if err == nil && w.segSize >= walMaxSegment {
		if next, err = w.fs.Create(walSegmentName(w.dir, index+1)); err != nil {
			err = fmt.Errorf("open WAL segment %d: %w", index+1, err)
		}
	} else if err != nil {
		err = fmt.Errorf("write WAL segment %d: %w", index, err)
	}
	w.mu.Lock()
	w.spare = buf
	w.flushing = false
	switch {
	case err != nil:
		w.failLocked(err)
	case next != nil:
		w.switchLocked(next)
		fallthrough
	default:
		w.written = upto
	}
	w.cond.Broadcast()
}

// switchLocked makes next the current segment; the old one is left to
// the syncer. The caller holds mu and no write is in progress.
func (w *wal) switchLocked(next SegmentFile) {
	w.closing = append(w.closing, w.seg)
	w.seg, w.segIndex, w.segSize = next, w.segIndex+1, 0
	w.dirDirty = true
}

// cut writes everything logged so far and starts a new segment, without
// fsync (call syncSegments after, outside the caller's locks). It returns
// the index of the new segment: every record written before cut returned
// lives in a lower segment. Callers must not write concurrently (the DB
// holds its commit lock exclusively).
//
// A failed WAL is cut too, when recovering: its pending records (refused
// to their writers) are dropped, and the new segment gets an empty probe
// record, so that a disk still refusing writes fails the recovery here.
// The failure stays until recovered is called.
func (w *wal) cut() (seg int, recovering bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.flushing {
		w.cond.Wait()
	}
	recovering = w.err != nil
	if !recovering && w.written < w.queued {
		w.flushLocked()
	}
	if w.err != nil && !recovering {
		return 0, false, w.err
	}
	if recovering {
		w.pending, w.written = w.pending[:0], w.queued
	}
	next, err := w.fs.Create(walSegmentName(w.dir, w.segIndex+1))
	if err != nil {
		err = fmt.Errorf("open WAL segment %d: %w", w.segIndex+1, err)
		w.failLocked(err)
		return 0, recovering, err
	}
	w.switchLocked(next)
	if recovering {
		if _, err := next.Write(appendFrame(nil, nil)); err != nil {
			err = fmt.Errorf("probe WAL segment %d: %w", w.segIndex, err)
			w.failLocked(err)
			return 0, true, err
		}
	}
	return w.segIndex, recovering, nil
}

// recovered clears the failure once a checkpoint made every record below
// the recovery's cut redundant.
func (w *wal) recovered() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = nil
	w.failed.Store(nil)
	w.synced = w.written
	w.logger.Info("WAL recovered; writes are accepted again", "segment", w.segIndex)
}

// syncSegments fsyncs the segments switched away from (and closes them),
// the directory if a segment was created, and the current segment; then
// everything written before it started counts as synced. A failure is
// sticky, except that when recovering the old segments' errors are
// ignored (a checkpoint is about to make them redundant).
func (w *wal) syncSegments(recovering bool) error {
	w.mu.Lock()
	for w.syncing {
		w.cond.Wait()
	}
	if w.err != nil && !recovering {
		defer w.mu.Unlock()
		return w.err
	}
	w.syncing = true
	upto, seg, closing, dirty := w.written, w.seg, w.closing, w.dirDirty
	w.closing, w.dirDirty = nil, false
	w.mu.Unlock()

	start := time.Now()
	var err error
	for _, f := range closing {
		if serr := f.Sync(); serr != nil && err == nil && !recovering {
			err = fmt.Errorf("sync WAL segment: %w", serr)
		}
		f.Close()
	}
	if err == nil && dirty {
		if err = w.fs.SyncDir(w.dir); err != nil {
			err = fmt.Errorf("sync WAL directory: %w", err)
		}
	}
	if err == nil {
		if err = seg.Sync(); err != nil {
			err = fmt.Errorf("sync WAL segment: %w", err)
		}
	}

	w.fsyncs.Observe(time.Since(start).Seconds())
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncing = false
	w.cond.Broadcast()
	if err != nil {
		w.dirDirty = w.dirDirty || dirty
		w.failLocked(err)
		return err
	}
	if upto > w.synced {
		w.synced = upto
	}
	return nil
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
		idle := w.err != nil || w.written == w.synced && len(w.closing) == 0 && !w.dirDirty
		w.mu.Unlock()
		if !idle {
			w.syncSegments(false)
		}
	}
}

// truncateBefore deletes the segments below index i, then makes the
// deletions durable.
func (w *wal) truncateBefore(i int) error {
	segs, err := walSegments(w.dir)
	if err != nil {
		return err
	}
	removed := false
	for _, s := range segs {
		if s >= i {
			break
		}
		if err := w.fs.Remove(walSegmentName(w.dir, s)); err != nil {
			return err
		}
		removed = true
	}
	if removed {
		return w.fs.SyncDir(w.dir)
	}
	return nil
}

func (w *wal) close() error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	for w.flushing || w.syncing {
		w.cond.Wait()
	}
	if w.written < w.queued && w.err == nil {
		w.flushLocked()
	}
	failed := w.err
	w.mu.Unlock()
	err := w.syncSegments(failed != nil)
	if failed != nil {
		err = failed
	}
	return errors.Join(err, w.seg.Close())
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
