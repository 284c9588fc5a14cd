package tsdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Compaction of persisted chunks. The head cuts a chunk about every 120
// samples and at the end of its series' chunk range, which its phase
// shifts off the bucket boundaries (series_append.go), and a checkpoint
// appends each closed chunk to the chunk journal as a record of its own,
// split at the bucket boundary it spans (chunk_journal.go): at 15 s, four
// or five records per series and 2-hour bucket, each with its frame and
// the XOR header.
// Once a bucket can receive no more chunks from the head, compaction
// rewrites the chunks of each of its series as one chunk (or a few, see
// mergedChunkBytes), its value windows chosen for size (xor_compact.go),
// or as an integer chunk (intchunk.go) where its values are whole
// numbers and that is smaller: BenchmarkDiskBytesPerSample goes from 1.91
// to 1.67 bytes a sample over 8 hours with the windows (snappy tables),
// and to 1.27 with integer chunks (1.38 uncompressed).
//
// Which buckets. A checkpoint whose walk completes writes every chunk the
// head holds of series that are stale (newest sample older than its
// staleBefore = refTime - StalenessPeriod) and every closed chunk of the
// others. Bucket b = [b·R, (b+1)·R) can get more chunks from the head
// after such a checkpoint only from a series whose open chunk holds
// samples of b (it started before (b+1)·R; it may reach past it) or that
// still accepts an out-of-order sample in b (t ≥ maxT - OutOfOrderWindow
// with t < (b+1)·R, so maxT < (b+1)·R + OutOfOrderWindow). Both need
// maxT ≥ staleBefore, or the series was stale and flushed whole. With
// openFrom the first sample of the oldest open chunk the walk saw, b is
// complete once a checkpoint ran with
//
//	(b+1)·R ≤ min(staleBefore - OutOfOrderWindow, openFrom),
//
// i.e. once the reference time at a completed checkpoint was past the
// bucket's end by the out-of-order window plus the staleness period, and
// every open chunk had started after it (at 15 s, half an hour after its
// end at most). The checkpoint interval is covered by taking the bound
// from the last checkpoint that completed, not from the clock
// (DB.compactBefore): the chunks of a bucket are in badger only once a
// checkpoint wrote them.
// Chunks that still arrive later (a series silent for longer than the
// staleness period that gets an out-of-order sample within its window, or
// one written while that checkpoint walked) are written as usual and stay
// extra entries of the compacted bucket; reads take several chunks.
//
// Out-of-order chunks (kind 1) are merged too: a series' chunks in a
// bucket are decoded through exactly the read path's merge
// (seriesSnapshot.iterator: chunks in key order, samples stably sorted by
// time, the first of equal timestamps kept), so the merged chunk holds,
// for each timestamp, the sample a query read before. Chunks of other
// buckets hold no timestamp of this one (out-of-order chunks are split at
// bucket boundaries), and the head's chunks come after the store's in
// every read, so merging one bucket changes no query's answer.
//
// Atomicity. Each series' merged chunks and the deletion of the chunks
// they replace go in one badger transaction (a transaction holds many
// series, never part of one); the first merged chunk takes the key of the
// series' first chunk in the bucket with kind 0, which sorts no later
// than any key it replaces. A query's snapshot shows the old chunks or the
// merged ones; a crash between transactions leaves some series merged
// and others not, and the next pass finds the merged ones already as few
// as they can be and skips them. A bucket is marked compacted (key
// prefixCompacted) after its last series.
//
// Locks. Reading and re-encoding run without any lock, from a snapshot
// taken under checkpointMu with the count of chunk writes (chunkWrites);
// the write takes checkpointMu again and goes ahead only if no checkpoint
// batch wrote chunks to the bucket since and retention did not drop it,
// else the batch is read again. Checkpoints and retention thus never see a half-written batch,
// retention can drop a bucket under compaction, and compaction never
// deletes a chunk a checkpoint rewrote or resurrects a dropped bucket.

const (
	prefixCompacted = 'C' // 'C' bucket → empty: the bucket is compacted

	// compactBatchSeries is how many series one read snapshot covers.
	compactBatchSeries = 2048
	// mergedChunkBytes bounds the bytes of a merged chunk: a value of
	// at most this plus a sample and a varint stays well below badger's
	// ValueThreshold (2 KiB, store.go), so chunks stay in the LSM tree. At
	// 15 s a series' 2-hour bucket (480 samples) takes 0.5 to 1.3 KiB.
	mergedChunkBytes = 1536
	// maxXORSampleBytes is the most one sample adds to an XOR chunk:
	// 68 bits of timestamp and 77 of value.
	maxXORSampleBytes = 19
	// compactTxnBytes and compactTxnEntries bound one transaction, counted
	// as badger counts them (Txn.checkSize), below its limits (15% of a
	// memtable, and that divided by the largest skiplist node).
	compactTxnBytes   = storeMemTableSize / 16
	compactTxnEntries = 4096
	// compactRetries is how often a batch is read again when chunk writes
	// raced with it, before the pass gives up until the next one.
	compactRetries = 3
)

// errChunkWritesRaced: chunks were written between a compaction batch's
// read and its write; the batch is read again.
var errChunkWritesRaced = errors.New("chunk writes raced with compaction")

// compactState is the progress of compaction: the bucket under way and
// the first key of it not yet compacted. Guarded by DB.compactMu.
type compactState struct {
	bucket  int64
	next    []byte        // nil: no bucket under way
	elapsed time.Duration // spent on the bucket so far
}

// compactStats is what compaction did.
type compactStats struct {
	buckets, series, merged, written, malformed int
	samples                                     int64
}

// compactBefore returns the newest bucket that a completed checkpoint
// has made complete (see the comment above), or false.
func (db *DB) compactBefore() (int64, bool) {
	limit := db.checkpointCompleteBefore.Load()
	if limit == minInt64 {
		return 0, false
	}
	// (b+1)·R ≤ limit ⟺ b ≤ bucketOf(limit) - 1, as in ApplyRetention.
	return db.store.bucketOf(limit) - 1, true
}

// Compact compacts every bucket that is complete and not yet compacted.
func (db *DB) Compact() error {
	_, err := db.compact(nil)
	return err
}

// compact works through the complete buckets oldest first, a batch of
// series at a time, until stop reports true between batches (nil: until
// done). It returns what it did.
func (db *DB) compact(stop func() bool) (st compactStats, err error) {
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	defer func() {
		if err != nil {
			db.metrics.compactionFailures.Inc()
		}
	}()
	last, ok := db.compactBefore()
	if !ok {
		return st, nil
	}
	cs := &db.compactState
	for {
		if cs.next == nil {
			b, found, err := db.nextCompactBucket(last)
			if err != nil {
				return st, err
			}
			if jb, ok := db.nextJournalBucket(last); ok && (!found || jb < b) {
				b, found = jb, true
			}
			if !found {
				return st, nil
			}
			cs.bucket, cs.next, cs.elapsed = b, chunkPrefix(nil, b, 0), 0
		}
		if stop != nil && stop() {
			return st, nil
		}
		start := time.Now()
		next, progressed, err := db.compactBatchRetried(cs.bucket, cs.next, &st)
		cs.elapsed += time.Since(start)
		if err != nil {
			return st, fmt.Errorf("compact bucket %d: %w", cs.bucket, err)
		}
		if !progressed {
			return st, nil
		}
		if next != nil {
			cs.next = next
			continue
		}
		if err := db.markCompacted(cs.bucket); err != nil {
			return st, err
		}
		st.buckets++
		db.metrics.compactionBuckets.Inc()
		db.metrics.compactionSeconds.Set(cs.elapsed.Seconds())
		db.logger.Debug("bucket compacted", "bucket", cs.bucket, "duration", cs.elapsed.Round(time.Millisecond))
		cs.next = nil
	}
}

// nextCompactBucket returns the oldest bucket up to last that holds
// chunks and is not marked compacted.
func (db *DB) nextCompactBucket(last int64) (int64, bool, error) {
	var bucket int64
	var found bool
	err := db.store.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChunk}})
		defer it.Close()
		for it.Rewind(); it.Valid(); {
			key := it.Item().Key()
			if len(key) != chunkKeyLen {
				return fmt.Errorf("chunk key of %d bytes", len(key))
			}
			b := unflipSign(binary.BigEndian.Uint64(key[1:9]))
			if b > last {
				return nil
			}
			_, err := txn.Get(compactedKey(b))
			if errors.Is(err, badger.ErrKeyNotFound) {
				bucket, found = b, true
				return nil
			}
			if err != nil {
				return err
			}
			it.Seek(binary.BigEndian.AppendUint64([]byte{prefixChunk}, flipSign(b+1)))
		}
		return nil
	})
	return bucket, found, err
}

func compactedKey(bucket int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixCompacted}, flipSign(bucket))
}

// markCompacted records that bucket is compacted, unless retention
// dropped it meanwhile (a marker of a dropped bucket would outlive it).
func (db *DB) markCompacted(bucket int64) error {
	db.checkpointMu.Lock()
	defer db.checkpointMu.Unlock()
	if bucket <= db.droppedThrough {
		return nil
	}
	err := db.store.db.Update(func(txn *badger.Txn) error { return txn.Set(compactedKey(bucket), nil) })
	if err != nil {
		return err
	}
	// After the marker and the merged chunks are in badger: a reader that
	// sees the mark skips the bucket's journal records.
	db.store.journalCompacted.Store(max(db.store.journalCompacted.Load(), bucket))
	db.deferJournalRemoval()
	return nil
}

// compactBatchRetried runs compactBatch, reading the batch again while
// chunk writes race with it. It reports false when they raced every time:
// the pass stops, and the next one tries again.
func (db *DB) compactBatchRetried(bucket int64, from []byte, st *compactStats) ([]byte, bool, error) {
	for try := 0; ; try++ {
		next, err := db.compactBatch(bucket, from, st)
		switch {
		case !errors.Is(err, errChunkWritesRaced):
			return next, true, err
		case try == compactRetries:
			return nil, false, nil
		}
	}
}

// noteChunkWritesLocked records a checkpoint batch that writes chunks to
// buckets, before it writes them. The caller holds checkpointMu.
func (db *DB) noteChunkWritesLocked(buckets []int64) {
	if len(buckets) == 0 {
		return
	}
	db.chunkWrites++
	for _, b := range buckets {
		db.bucketWritten[b] = db.chunkWrites
	}
}

// compactSeries is one series' chunks in the bucket as a batch read them.
type compactSeries struct {
	ref    SeriesRef
	keys   [][]byte // of badger's chunks: what the merged ones replace
	chunks []memChunk
	ooo    bool // some chunk is out of order
	bad    error
	// journaled: some chunks are the journal's, which have no key and
	// must reach badger even when they cannot be merged any further.
	journaled bool
	orders    []chunkOrder // where each chunk sorts, while merging the two
}

// compactBatch compacts the series of bucket from key from on, up to
// compactBatchSeries of them, and returns the key to go on from, or nil
// when the bucket is done.
func (db *DB) compactBatch(bucket int64, from []byte, st *compactStats) ([]byte, error) {
	db.checkpointMu.Lock()
	writes := db.chunkWrites
	txn := db.store.db.NewTransaction(false)
	db.checkpointMu.Unlock()
	batch := compactBatchSeries
	if db.opts.compactBatchSeries > 0 {
		batch = db.opts.compactBatchSeries
	}
	series, next, err := readCompactBatch(txn, bucket, from, batch)
	txn.Discard()
	if err != nil {
		return nil, err
	}
	// The journal's series after the snapshot's writes count: a
	// checkpoint that adds to the bucket since makes the write retry.
	var limit SeriesRef
	if next != nil {
		limit = SeriesRef(binary.BigEndian.Uint64(next[9:17]))
	}
	series, nextRef, err := db.readJournalBatch(bucket, series, SeriesRef(binary.BigEndian.Uint64(from[9:17])), limit, batch)
	if err != nil {
		return nil, err
	}
	next = nil
	if nextRef != 0 {
		next = chunkPrefix(nil, bucket, nextRef)
	}
	var out compactOutput
	var stats compactStats
	for i := range series {
		cs := &series[i]
		if cs.bad != nil {
			stats.malformed++
			db.metrics.compactionMalformed.Inc()
			db.logger.Warn("malformed chunk left as it is by compaction", "bucket", bucket, "series", cs.ref, "err", cs.bad)
			out.addAsIs(db.store, cs)
			continue
		}
		n, err := out.add(db.store, cs)
		if err != nil {
			stats.malformed++
			db.metrics.compactionMalformed.Inc()
			db.logger.Warn("malformed chunk left as it is by compaction", "bucket", bucket, "series", cs.ref, "err", err)
			out.addAsIs(db.store, cs)
			continue
		}
		if n > 0 {
			stats.series++
			stats.merged += len(cs.chunks)
			stats.written += len(out.series[len(out.series)-1].keys)
			stats.samples += n
		}
	}
	if len(out.series) > 0 {
		if err := db.writeCompacted(bucket, writes, &out); err != nil {
			return nil, err
		}
	}
	st.series += stats.series
	st.merged += stats.merged
	st.written += stats.written
	st.malformed += stats.malformed
	st.samples += stats.samples
	db.metrics.compactionChunksMerged.Add(float64(stats.merged))
	return next, nil
}

// readCompactBatch reads the chunks of up to batch series of bucket from
// key from on, copying keys and values out of badger.
func readCompactBatch(txn *badger.Txn, bucket int64, from []byte, batch int) (series []compactSeries, next []byte, err error) {
	prefix := binary.BigEndian.AppendUint64([]byte{prefixChunk}, flipSign(bucket))
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Seek(from); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		if len(key) != chunkKeyLen {
			return nil, nil, fmt.Errorf("chunk key of %d bytes", len(key))
		}
		ref := SeriesRef(binary.BigEndian.Uint64(key[9:17]))
		if len(series) == 0 || series[len(series)-1].ref != ref {
			if len(series) == batch {
				return series, chunkPrefix(nil, bucket, ref), nil
			}
			series = append(series, compactSeries{ref: ref})
		}
		cs := &series[len(series)-1]
		k := item.KeyCopy(nil)
		var c memChunk
		verr := item.Value(func(v []byte) error {
			var err error
			c, err = decodeStoredChunk(k, v)
			return err
		})
		if verr != nil && cs.bad == nil {
			cs.bad = verr
		}
		cs.ooo = cs.ooo || k[25] == chunkOutOfOrder
		cs.keys = append(cs.keys, k)
		cs.chunks = append(cs.chunks, c)
	}
	return series, nil, nil
}

// decodeStoredChunk decodes a stored chunk (key of chunkKeyLen bytes)
// for compaction, its data copied out of val, and checks it whole.
func decodeStoredChunk(key, val []byte) (memChunk, error) {
	c, err := decodeChunk(key, val)
	if err != nil {
		return c, err
	}
	c.data = bytes.Clone(c.data)
	if err := validChunk(c); err != nil {
		return c, err
	}
	if key[25] > chunkOutOfOrder {
		return c, fmt.Errorf("chunk of kind %d", key[25])
	}
	return c, nil
}

// validChunk reports why c is not a well-formed XOR or integer chunk
// holding as many samples as its header says, in increasing time order
// from c.minT to c.maxT.
func validChunk(c memChunk) error {
	if isIntChunk(c.data) {
		return validIntChunk(c)
	}
	if len(c.data) < xorChunkHeader {
		return fmt.Errorf("chunk of %d bytes", len(c.data))
	}
	var xc chunkenc.XORChunk
	xc.Reset(c.data)
	it := xc.Iterator(nil)
	n, prev := 0, int64(minInt64)
	for it.Next() == chunkenc.ValFloat {
		t, _ := it.At()
		if (n == 0 && t != c.minT) || (n > 0 && t <= prev) {
			return fmt.Errorf("chunk sample %d at %d out of order (first %d)", n, t, c.minT)
		}
		n, prev = n+1, t
	}
	switch {
	case it.Err() != nil:
		return it.Err()
	case n == 0 || n != xorNumSamples(c.data):
		return fmt.Errorf("chunk holds %d of %d samples", n, xorNumSamples(c.data))
	case prev != c.maxT:
		return fmt.Errorf("chunk ends at %d, its key says %d", prev, c.maxT)
	}
	return nil
}

// validIntChunk is validChunk for an integer chunk: every declared
// sample read, nothing but padding left, each value an integer.
func validIntChunk(c memChunk) error {
	var it intIterator
	it.reset(c.data)
	n, prev := 0, int64(minInt64)
	for it.next() {
		t, v := it.at()
		if (n == 0 && t != c.minT) || (n > 0 && t <= prev) {
			return fmt.Errorf("chunk sample %d at %d out of order (first %d)", n, t, c.minT)
		}
		if _, ok := intValue(v); !ok {
			return fmt.Errorf("%w: sample %d is %v", errIntChunk, n, v)
		}
		n, prev = n+1, t
	}
	switch {
	case it.err != nil:
		return it.err
	case !it.rest():
		return fmt.Errorf("%w: bytes after sample %d", errIntChunk, n)
	case prev != c.maxT:
		return fmt.Errorf("chunk ends at %d, its key says %d", prev, c.maxT)
	}
	return nil
}

// compactOutput is the writes of a batch: per series, the merged chunks'
// keys and values and the keys they replace.
type compactOutput struct {
	series  []compactWrite
	samples []sample // of the series being merged
	enc     compactEncoder
	ienc    intEncoder
	xorOnly bool // no integer chunks: for comparison in benchmarks
}

type compactWrite struct {
	ref        SeriesRef
	keys, vals [][]byte
	deletes    [][]byte
}

// add merges cs's chunks and queues the writes, unless they are already
// as few as they can be. It returns the number of samples rewritten (0:
// nothing to do).
func (o *compactOutput) add(st *store, cs *compactSeries) (int64, error) {
	if len(cs.chunks) < 2 && !cs.ooo && !cs.journaled {
		return 0, nil
	}
	it := seriesSnapshot{chunks: cs.chunks}.iterator(nil, minInt64, maxInt64)
	o.samples = o.samples[:0]
	for it.Next() {
		t, v := it.At()
		o.samples = append(o.samples, sample{t: t, v: v})
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	merged := o.encodePieces(o.samples)
	if len(merged) >= len(cs.chunks) && !cs.ooo && !cs.journaled {
		return 0, nil // already as few as they can be
	}
	w := compactWrite{ref: cs.ref}
	for _, m := range merged {
		w.keys = append(w.keys, st.appendChunkKey(nil, cs.ref, m.minT, chunkInOrder, 0))
		w.vals = append(w.vals, appendChunkValue(make([]byte, 0, binary.MaxVarintLen64+len(m.data)), m))
	}
	for _, k := range cs.keys {
		kept := false
		for _, nk := range w.keys {
			kept = kept || bytes.Equal(k, nk)
		}
		if !kept {
			w.deletes = append(w.deletes, k)
		}
	}
	o.series = append(o.series, w)
	return int64(len(o.samples)), nil
}

// encodePieces encodes samples as few chunks as the bounds allow: one if
// it fits mergedChunkBytes, else cut where appendCompact's chunk reaches
// mergedChunkBytes (less a sample) or the XOR sample count limit, each
// piece then written by the encoder, whose choice of windows is never
// larger than appendCompact's (the search holds its path). A piece whose
// values are all integers is written as an integer chunk (intchunk.go)
// where that is smaller than its XOR form; so is the whole, when that
// fits mergedChunkBytes where the XOR form does not.
func (o *compactOutput) encodePieces(samples []sample) []memChunk {
	if len(samples) < maxXORSamples {
		// Most series' buckets fit one chunk: try that first.
		data := o.smaller(o.enc.encode(samples), samples)
		if len(data) <= mergedChunkBytes {
			return []memChunk{{data: data, minT: samples[0].t, maxT: samples[len(samples)-1].t}}
		}
	}
	var merged []memChunk
	var c []byte
	x := newXORState()
	from := 0
	var prevT int64
	var prevV uint64
	cut := func(to int) {
		piece := samples[from:to]
		data := o.enc.encode(piece)
		if len(data) > len(c) { // never: the search holds c's path; keep the smaller
			data = c
		}
		data = o.smaller(data, piece)
		merged = append(merged, memChunk{data: data, minT: piece[0].t, maxT: piece[len(piece)-1].t})
		from = to
	}
	for i, smp := range samples {
		if c != nil && (len(c) > mergedChunkBytes-maxXORSampleBytes || xorNumSamples(c) == maxXORSamples) {
			cut(i)
			c = nil
		}
		if c == nil {
			c, x = newXORChunk(mergedChunkBytes), newXORState()
		}
		c = x.appendCompact(c, prevT, prevV, smp.t, smp.v)
		prevT, prevV = smp.t, math.Float64bits(smp.v)
	}
	if c != nil {
		cut(len(samples))
	}
	return merged
}

// smaller returns samples' integer chunk if they are integers and it is
// smaller than xor, their XOR chunk; else xor.
func (o *compactOutput) smaller(xor []byte, samples []sample) []byte {
	if o.xorOnly {
		return xor
	}
	ic, ok := o.ienc.encode(nil, samples)
	if ok && len(ic) < len(xor) {
		return ic
	}
	return xor
}

// size is what the series' writes count against a transaction's limits,
// as badger counts them.
func (w *compactWrite) size() (bytes, entries int) {
	for i := range w.keys {
		bytes += len(w.keys[i]) + len(w.vals[i]) + 12
	}
	for _, k := range w.deletes {
		bytes += len(k) + 12
	}
	return bytes, len(w.keys) + len(w.deletes)
}

// writeCompacted writes the batch's merged chunks, each series in one
// transaction, unless chunks were written since the batch's snapshot
// (writes is the count of chunk writes then). It holds checkpointMu.
func (db *DB) writeCompacted(bucket int64, writes uint64, out *compactOutput) error {
	db.checkpointMu.Lock()
	defer db.checkpointMu.Unlock()
	if db.bucketWritten[bucket] > writes || bucket <= db.droppedThrough {
		return errChunkWritesRaced
	}
	w := db.store.cache.beginWrite()
	defer w.end()
	w.bucket(bucket) // before the transactions: chunk_cache.go
	txn := db.store.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	size, entries := 0, 0
	for i := range out.series {
		cw := &out.series[i]
		b, e := cw.size()
		if entries > 0 && (size+b > compactTxnBytes || entries+e > compactTxnEntries) {
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("write compacted chunks: %w", err)
			}
			txn = db.store.db.NewTransaction(true)
			size, entries = 0, 0
		}
		size, entries = size+b, entries+e
		for j := range cw.keys {
			if err := txn.Set(cw.keys[j], cw.vals[j]); err != nil {
				return err
			}
		}
		for _, k := range cw.deletes {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("write compacted chunks: %w", err)
	}
	return nil
}
