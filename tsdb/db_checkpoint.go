package tsdb

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/internal/scavenge"
)

// checkpointBatch is how many series a checkpoint collects before writing
// them and releasing their persisted chunks: it bounds the memory a
// checkpoint holds in flight.
const checkpointBatch = 8192

// errCheckpointStopped: a checkpoint of a shutdown ran past
// Options.ShutdownCheckpointTimeout and stopped between two batches.
var errCheckpointStopped = errors.New("checkpoint stopped at the shutdown timeout")

// persistItem is what a checkpoint took from one series: how many of its
// closed and out-of-order chunks it wrote, and whether the series may
// leave the head once they are written.
type persistItem struct {
	s          *memSeries
	nClosed    int
	nOOO       int
	maxT       int64      // of any chunk written
	chain      journalPos // the series' newest journal record after the batch
	deactivate bool
}

// Checkpoint writes everything the head holds that the store lacks (new
// series records, closed and out-of-order chunks to badger; every open
// chunk to a new head snapshot), then deletes the WAL segments it covers.
// Series without samples for the staleness period are flushed and leave
// the head.
func (db *DB) Checkpoint() (err error) {
	db.checkpointMu.Lock()
	defer db.checkpointMu.Unlock()
	start := time.Now()
	defer func() {
		if errors.Is(err, errCheckpointStopped) {
			return
		}
		if err != nil {
			db.metrics.checkpointFailures.Inc()
			return
		}
		db.metrics.checkpoints.Inc()
		db.metrics.checkpointSeconds.Set(time.Since(start).Seconds())
	}()

	db.commitMu.Lock()
	seg, recovering, err := db.wal.cut()
	db.commitMu.Unlock()
	if err != nil {
		return fmt.Errorf("cut WAL: %w", err)
	}
	// The segments below the cut are synced before the snapshot that
	// replaces them is written; a failed WAL's are not trusted at all:
	// the head, which holds everything acknowledged, is checkpointed.
	if err := db.wal.syncSegments(recovering); err != nil {
		return err
	}
	snap, err := createSnapshot(db.dir, seg, db.opts.fs())
	if err != nil {
		return err
	}
	staleBefore := int64(minInt64) // an empty head: nothing is stale
	if ref := db.refTime(); ref != minInt64 {
		staleBefore = ref - db.opts.StalenessPeriod.Milliseconds()
	}
	cp := checkpointer{db: db, seq: uint32(seg) << 12, staleBefore: staleBefore, openFrom: maxInt64, snap: snap, mustFinish: recovering}
	if err := db.startEvictions(&cp); err != nil {
		snap.abort()
		return err
	}
	if err := cp.walk(); err != nil {
		snap.abort()
		return err
	}
	// Every chunk the head held of the buckets this completes is in
	// badger now (db_compact.go).
	if complete, ok := cp.completeBefore(); ok && complete > db.checkpointCompleteBefore.Load() {
		db.checkpointCompleteBefore.Store(complete)
	}
	sync := db.opts.WALSync == WALSyncInterval || recovering
	if sync {
		if err := db.journal.sync(); err != nil {
			snap.abort()
			return err
		}
		if err := db.store.db.Sync(); err != nil {
			snap.abort()
			return err
		}
		if err := db.index.sync(); err != nil {
			snap.abort()
			return err
		}
	}
	// The snapshot goes in place only once badger holds the chunks it no
	// longer carries; the WAL goes only once the snapshot is in place.
	if err := snap.commit(sync, db.journal.end(), db.journal.spanCopy()); err != nil {
		return err
	}
	// A checkpoint allocates a burst of short-lived buffers (records,
	// badger's table builders) that the runtime would return to the OS
	// only slowly; RSS would stay at the burst's peak for minutes. A
	// checkpoint that wrote little is not worth the forced GC cycle.
	scavenge.IfWorthwhile()
	// The snapshot just replaced is now head.snapshot.prev: the WAL is
	// kept from its segment on.
	keepFrom := db.lastCut
	db.lastCut = seg
	if err := db.wal.truncateBefore(keepFrom); err != nil {
		return err
	}
	if recovering {
		db.wal.recovered()
	}
	if err := db.removeJournalSegments(); err != nil {
		db.logger.Warn("chunk journal segments not removed; the next checkpoint tries again", "err", err)
	}
	if err := db.compactIndex(); err != nil {
		db.logger.Warn("series index not rewritten; it keeps its superseded records", "err", err)
	}
	// Metadata a failed write left behind is retried here.
	return db.persistMetadata()
}

type checkpointer struct {
	db          *DB
	seq         uint32 // base of the seq part of out-of-order chunk keys
	staleBefore int64
	openFrom    int64 // the oldest first sample of an open chunk the walk left in the head
	builder     labels.ScratchBuilder
	lset        labels.Labels // reused for evicted series' records
	records     recordWriter  // series records of the batch being written
	items       []persistItem
	wb          *badger.WriteBatch
	arena       arena      // keys and values of the batch being written
	cacheWrite  cacheWrite // of the batch being written: marks its chunks
	wrote       []int64    // of the batch being written: the buckets it has chunks in
	snap        *snapshotWriter
	evict       evictor // series leaving memory (series_evict.go)
	readBuf     []byte  // journal records read
	ints        intChunker
	split       chunkSplitter
	// mustFinish: the checkpoint recovers a failed WAL, whose segment may
	// have lost pages the head still holds; a shutdown does not stop it.
	mustFinish bool
}

// completeBefore returns the time before which the walk left nothing in
// the head that the store may still receive (db_compact.go): the stale
// bound less the out-of-order window, and no later than the oldest open
// chunk's start. ok is false for an empty head.
func (cp *checkpointer) completeBefore() (t int64, ok bool) {
	if cp.staleBefore == minInt64 {
		return 0, false
	}
	return min(cp.staleBefore-cp.db.opts.Head.OutOfOrderWindow.Milliseconds(), cp.openFrom), true
}

// set queues key and value, both encoded into the arena.
func (cp *checkpointer) set(key, val func([]byte) []byte) error {
	return cp.wb.Set(cp.arena.add(key), cp.arena.add(val))
}

// walk visits every series in batches: collect under each series' lock,
// write the batch, then release what was written.
func (cp *checkpointer) walk() error {
	defer cp.evict.u.discard()
	return cp.db.head.series.refs.batches(checkpointBatch, cp.persist)
}

// stopped reports whether the walk stops before its next batch, a
// shutdown's time being up. Between batches the store is as a crash
// between them would leave it: recovery takes each series' stored range
// from its record, and the WAL behind the last completed checkpoint stays.
func (cp *checkpointer) stopped() bool {
	return !cp.mustFinish && cp.db.pastShutdownDeadline()
}

func (cp *checkpointer) persist(batch []*memSeries) error {
	if cp.stopped() {
		return errCheckpointStopped
	}
	// A write batch may commit parts of itself before Flush: the chunk
	// cache's write spans the whole batch (chunk_cache.go).
	cp.cacheWrite = cp.db.store.cache.beginWrite()
	defer cp.cacheWrite.end()
	cp.wrote = cp.wrote[:0]
	cp.wb = cp.db.store.db.NewWriteBatch()
	defer cp.wb.Cancel()
	defer cp.records.reset()
	cp.items = cp.items[:0]
	for _, s := range batch {
		s.mu.Lock()
		item, err := cp.collectLocked(s)
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if item != nil {
			cp.items = append(cp.items, *item)
		}
	}
	if err := cp.queueEvictionHashes(); err != nil {
		return err
	}
	cp.db.noteChunkWritesLocked(cp.wrote) // before the write: db_compact.go
	if err := cp.wb.Flush(); err != nil {
		return fmt.Errorf("write checkpoint batch: %w", err)
	}
	// The batch's journal records become readable before any chain
	// head names them (release).
	if err := cp.db.journal.flush(); err != nil {
		return fmt.Errorf("write checkpoint batch's chunks: %w", err)
	}
	// After the chunks: a record must not claim more than badger holds
	// (storedRecord).
	if err := cp.records.write(cp.db.index, cp.db.head.symbols, nil); err != nil {
		return fmt.Errorf("write checkpoint batch's series records: %w", err)
	}
	cp.db.store.released.Add(1) // before any release: headQuerier.storeFor
	for _, it := range cp.items {
		cp.release(it)
	}
	cp.finishEvictions()
	cp.arena.reset()
	if f := cp.db.opts.afterCheckpointBatch; f != nil {
		f()
	}
	return nil
}

// collectLocked queues the series' unpersisted state in the write batch.
// It returns nil when the series has nothing new. The caller holds s.mu.
func (cp *checkpointer) collectLocked(s *memSeries) (*persistItem, error) {
	deactivate := s.active && s.maxT < cp.staleBefore
	if s.active && !deactivate {
		// Every active series is in the new snapshot, changed or not:
		// the file replaces the previous one whole.
		snap := headSnapshot{maxT: s.maxT, lastV: s.lastV}
		if s.head.open() {
			snap.headMinT, snap.chunk, snap.xor = s.headMinTLocked(), s.head.bytes(), s.headXOR.state() // copied by add, under s.mu
			cp.openFrom = min(cp.openFrom, snap.headMinT)
		}
		cp.snap.add(s.ref, snap)
	}
	if evicted, err := cp.evictLocked(s); evicted || err != nil {
		return nil, err
	}
	if !s.active && s.indexPersisted || !deactivate && s.indexPersisted && len(s.closedChunks()) == 0 && s.outOfOrder().empty() {
		if chain := cp.db.head.series.refs.chain(s.ref); chain != 0 {
			cp.snap.addChain(s.ref, chain) // unchanged by this checkpoint
		}
		return nil, nil
	}
	before := s.chunkBytesLocked()
	if deactivate && s.head.open() {
		s.appendClosedLocked(s.closeHeadLocked())
	}
	s.spillOutOfOrderLocked()
	if s.active { // closing and spilling change what the chunks hold
		cp.db.head.chunkBytes.Add(s.chunkBytesLocked() - before)
	}
	item := &persistItem{s: s, nClosed: len(s.closedChunks()), nOOO: len(s.outOfOrder().chunks()), maxT: minInt64, deactivate: deactivate}
	item.chain = cp.db.head.series.refs.chain(s.ref)
	prevMaxT := s.persistedMaxT
	for _, c := range s.closedChunks() {
		if err := cp.journalChunk(item, c, chunkInOrder, 0, &prevMaxT); err != nil {
			return nil, err
		}
		item.maxT = max(item.maxT, c.maxT)
	}
	for i, c := range s.outOfOrder().chunks() {
		if err := cp.journalChunk(item, c, chunkOutOfOrder, cp.seq|uint32(i&0xfff), &prevMaxT); err != nil {
			return nil, err
		}
		item.maxT = max(item.maxT, c.maxT)
	}
	// The record is written anew when out-of-order chunks go to the store:
	// recovery reads an active series' store chunks only through the
	// record's maxT and the snapshot's open chunk, and out-of-order chunks
	// may reach past the latter.
	if !s.indexPersisted || deactivate || item.nOOO > 0 {
		persisted := max(s.persistedMaxT, item.maxT)
		if deactivate {
			persisted = s.maxT // every chunk is in this batch
		}
		cp.records.add(cp.db.head.symbols, s, storedRecord(s, persisted))
	}
	return item, nil
}

// markChunk marks a chunk of ref in bucket as written by the batch, for
// the chunk cache and for compaction.
func (cp *checkpointer) markChunk(bucket int64, ref SeriesRef) {
	cp.cacheWrite.chunk(bucket, ref)
	if !slices.Contains(cp.wrote, bucket) { // a batch writes to a few buckets
		cp.wrote = append(cp.wrote, bucket)
	}
}

// journalChunk appends a chunk of kind to the journal, chained to the
// item's series' newest record, split at bucket boundaries so that each
// piece lies in one bucket: out-of-order chunks may span several,
// in-order ones the boundary their series' phase shifts their range over
// (series_append.go). prevMaxT is the newest sample of the series'
// records before it, and is moved on.
func (cp *checkpointer) journalChunk(item *persistItem, c memChunk, kind byte, seq uint32, prevMaxT *int64) error {
	st := cp.db.store
	dead := cp.db.journalDeadThrough()
	appendPiece := func(piece memChunk) error {
		piece = cp.ints.smaller(piece)
		bucket := st.bucketOf(piece.minT)
		cp.markChunk(bucket, item.s.ref)
		if bucket <= dead {
			// A late chunk of a bucket compacted (or dropped): badger
			// holds the bucket now, the journal's records of it are dead.
			return cp.set(func(b []byte) []byte { return st.appendChunkKey(b, item.s.ref, piece.minT, kind, seq) },
				func(b []byte) []byte { return appendChunkValue(b, piece) })
		}
		pos, err := cp.db.journal.append(journalRecord{ref: item.s.ref, prev: item.chain, prevMaxT: *prevMaxT, kind: kind, seq: seq, chunk: piece}, bucket)
		if err != nil {
			return err
		}
		item.chain, *prevMaxT = pos, max(*prevMaxT, piece.maxT)
		return nil
	}
	if st.bucketOf(c.minT) == st.bucketOf(c.maxT) {
		return appendPiece(c)
	}
	return cp.split.pieces(c, st.bucketRange, appendPiece)
}

// chunkSplitter cuts chunks at bucket boundaries for the checkpoint,
// reusing its buffers. When the clock passes a bucket boundary, every
// series' open chunk spans it, and each piece decoded and encoded into
// slices of its own (grown from nothing, as the head's chunks grow) came
// to 28 GB allocated in a 33-minute run at ten million series: a GC
// cycle every 15 s, a fifth of the node's CPU.
type chunkSplitter struct {
	it      chunksIterator
	one     [1]memChunk
	samples []sample
	buf     []byte
}

// pieces calls piece with c cut at the multiples of bucketRange, in time
// order. A piece's bytes are the splitter's until the next call. A
// malformed chunk gives the samples before the fault.
func (sp *chunkSplitter) pieces(c memChunk, bucketRange int64, piece func(memChunk) error) error {
	sp.one[0] = c
	sp.samples = sp.samples[:0]
	for sp.it.reset(sp.one[:], c.minT, c.maxT); sp.it.Next(); {
		t, v := sp.it.At()
		sp.samples = append(sp.samples, sample{t: t, v: v})
	}
	sp.one[0] = memChunk{} // not kept past the call
	samples := sp.samples
	for len(samples) > 0 {
		end := chunkRangeEnd(samples[0].t, bucketRange)
		n, _ := slices.BinarySearchFunc(samples, end, func(x sample, t int64) int { return cmp.Compare(x.t, t) })
		sp.buf = appendXORSamples(sp.buf[:0], samples[:n])
		if err := piece(memChunk{data: sp.buf, minT: samples[0].t, maxT: samples[n-1].t}); err != nil {
			return err
		}
		samples = samples[n:]
	}
	return nil
}

// moveChainLocked writes the journal records of a series leaving memory
// to the batch, as the chunk entries of its key: only series in the ref
// table have chains. The caller holds s.mu.
func (cp *checkpointer) moveChainLocked(s *memSeries) error {
	st := cp.db.store
	dead, live := cp.db.journalDeadThrough(), cp.db.journalLiveFrom()
	for pos := cp.db.head.series.refs.chain(s.ref); pos != 0; {
		rec, buf, err := cp.db.journal.read(pos, cp.readBuf)
		cp.readBuf = buf
		if err != nil {
			return fmt.Errorf("series %d leaving memory: %w", s.ref, err)
		}
		if rec.ref != s.ref {
			return fmt.Errorf("series %d leaving memory: its chain reaches a record of series %d at %v", s.ref, rec.ref, pos)
		}
		// A record of a dead bucket is skipped (badger holds it merged, or
		// it was dropped); its segment may be gone, so the walk stops
		// before reading one where the rest of the chain is all dead.
		if bucket := st.bucketOf(rec.chunk.minT); bucket > dead {
			cp.markChunk(bucket, s.ref)
			err = cp.set(func(b []byte) []byte { return st.appendChunkKey(b, s.ref, rec.chunk.minT, rec.kind, rec.seq) },
				func(b []byte) []byte { return appendChunkValue(b, rec.chunk) })
			if err != nil {
				return err
			}
		}
		if rec.prevMaxT < live {
			break
		}
		pos = rec.prev
	}
	return nil
}

// release drops from memory the chunks a written batch holds, and lets a
// stale series leave the head unless a sample arrived meanwhile.
func (cp *checkpointer) release(it persistItem) {
	s, h := it.s, cp.db.head
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.chunkBytesLocked()
	if o := s.outOfOrder(); o != nil {
		if o.done = slices.Delete(o.done, 0, it.nOOO); o.empty() {
			s.aside.ooo = nil
		}
	}
	if it.chain != 0 {
		h.series.refs.setChain(s.ref, it.chain)
		cp.snap.addChain(s.ref, it.chain)
	}
	s.dropClosedLocked(it.nClosed) // and the holder of nothing
	s.indexPersisted = true
	s.persistedMaxT = max(s.persistedMaxT, it.maxT)
	if s.active {
		h.chunkBytes.Add(s.chunkBytesLocked() - before)
	}
	if it.deactivate && s.active && !s.head.open() && len(s.closedChunks()) == 0 && s.outOfOrder().empty() {
		h.deactivateLocked(s)
	}
}
