package tsdb

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// Compaction of the journal's chunks. A bucket's chunks are in badger
// (those of series that left memory, late ones, a store's from before
// the journal) and in the chains of the series in memory. A batch takes
// the next series in ref order from both, merges each series' chunks as
// compaction always has, and writes the merged ones to badger; the
// journal's records stay where they are. Once the bucket is marked
// compacted its records are dead: readers skip them (a reader takes the
// mark before its badger snapshot, which then holds the merged chunks),
// checkpoints write chunks of it to badger, and its segments go once no
// reader that could still read them is open.

// compactedThrough returns the newest bucket marked compacted, from the
// markers in badger; minInt64 if none.
func (s *store) compactedThrough() (int64, error) {
	newest := int64(minInt64)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixCompacted}, Reverse: true})
		defer it.Close()
		it.Seek([]byte{prefixCompacted, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		if it.Valid() {
			key := it.Item().Key()
			if len(key) != 9 {
				return fmt.Errorf("compaction marker of %d bytes", len(key))
			}
			newest = unflipSign(binary.BigEndian.Uint64(key[1:]))
		}
		return nil
	})
	return newest, err
}

// nextJournalBucket returns the oldest bucket up to last the journal has
// records of that is neither compacted nor dropped.
func (db *DB) nextJournalBucket(last int64) (int64, bool) {
	from := max(db.store.journalCompacted.Load()+1, db.store.journalFloor.Load())
	return db.journal.oldestSpan(from, last)
}

// journalDeadThrough is the newest bucket whose journal records are dead.
func (db *DB) journalDeadThrough() int64 {
	dead := db.store.journalCompacted.Load()
	if floor := db.store.journalFloor.Load(); floor != minInt64 {
		dead = max(dead, floor-1)
	}
	return dead
}

// journalLiveFrom is the oldest time of a bucket whose journal records
// are not dead; minInt64 if none is.
func (db *DB) journalLiveFrom() int64 {
	if dead := db.journalDeadThrough(); dead != minInt64 {
		return (dead + 1) * db.store.bucketRange
	}
	return minInt64
}

// deferJournalRemoval queues the removal of the segments wholly in dead
// buckets for when the readers open now have left. The caller holds
// checkpointMu.
func (db *DB) deferJournalRemoval() {
	db.journal.deferRemoval(db.head.readers.advance(), db.journalDeadThrough())
}

// removeJournalSegments removes the segments whose removal waited for
// readers that have all left. The caller holds checkpointMu.
func (db *DB) removeJournalSegments() error {
	return db.journal.removeDeferred(db.head.readers.oldest())
}

// readJournalBatch adds to series, badger's of bucket from ref from on
// (sorted by ref, and up to limit, exclusive; limit 0: badger has no
// more), the journal's chunks of bucket of the series in memory from ref
// from on, and returns the batch's series, sorted by ref and at most
// batch of them, and the ref the next batch starts from (0: the bucket is
// done).
func (db *DB) readJournalBatch(bucket int64, series []compactSeries, from, limit SeriesRef, batch int) ([]compactSeries, SeriesRef, error) {
	lo := bucket * db.store.bucketRange
	hi := lo + db.store.bucketRange - 1
	// As a reader: retention that drops the bucket meanwhile removes its
	// segments only once the read is done, and one that dropped it
	// before has left nothing to read.
	epoch := db.head.readers.enter()
	defer db.head.readers.exit(epoch)
	if lo < db.journalLiveFrom() {
		return series, limit, nil
	}
	var buf []byte
	var journaled []compactSeries
	stopped := SeriesRef(0) // where the journal's series were cut off, 0 if they were not
	err := db.head.series.refs.from(from, func(s *memSeries) (bool, error) {
		if limit != 0 && s.ref >= limit {
			return false, nil
		}
		if len(journaled) == batch {
			stopped = s.ref
			return false, nil
		}
		s.mu.Lock()
		chain := db.head.series.refs.chain(s.ref)
		s.mu.Unlock()
		cs, err := db.readJournalSeries(s.ref, chain, lo, hi, &buf)
		if err != nil || len(cs.chunks) == 0 {
			return err == nil, err
		}
		journaled = append(journaled, cs)
		return true, nil
	})
	if err != nil {
		return nil, 0, err
	}
	for _, cs := range journaled {
		series = mergeCompactSeries(series, cs)
	}
	cut := stopped
	if len(series) > batch && (cut == 0 || series[batch].ref < cut) {
		cut = series[batch].ref
	}
	if cut == 0 {
		return series, limit, nil
	}
	n := 0
	for n < len(series) && series[n].ref < cut {
		n++
	}
	return series[:n], cut, nil
}

// readJournalSeries reads the journal's chunks of ref in [lo, hi] from
// its chain, in key order, their data copied and checked.
func (db *DB) readJournalSeries(ref SeriesRef, chain journalPos, lo, hi int64, buf *[]byte) (compactSeries, error) {
	cs := compactSeries{ref: ref}
	for pos := chain; pos != 0; {
		rec, b, err := db.journal.read(pos, *buf)
		*buf = b
		if err != nil {
			return cs, fmt.Errorf("series %d: %w", ref, err)
		}
		if c := rec.chunk; c.minT >= lo && c.minT <= hi {
			c.data = slices.Clone(c.data)
			if err := validChunk(c); err != nil && cs.bad == nil {
				cs.bad = err
			}
			cs.orders = append(cs.orders, chunkOrder{bucket: db.store.bucketOf(c.minT), minT: c.minT, kind: rec.kind, seq: rec.seq, i: len(cs.chunks), journal: true})
			cs.chunks = append(cs.chunks, c)
			cs.ooo = cs.ooo || rec.kind == chunkOutOfOrder
		}
		if rec.prevMaxT < lo {
			break
		}
		pos = rec.prev
	}
	if len(cs.chunks) > 0 {
		cs.journaled = true
		cs.sortChunks()
	}
	return cs, nil
}

// sortChunks puts cs's chunks in key order by cs.orders.
func (cs *compactSeries) sortChunks() {
	slices.SortStableFunc(cs.orders, compareChunkOrder)
	sorted := make([]memChunk, len(cs.orders))
	for k := range cs.orders {
		sorted[k] = cs.chunks[cs.orders[k].i]
		cs.orders[k].i = k
	}
	cs.chunks = sorted
}

// mergeCompactSeries adds the journal's chunks of one series (cs) to
// series, sorted by ref: to badger's series of the same ref, the two in
// key order, or as a series of its own.
func mergeCompactSeries(series []compactSeries, cs compactSeries) []compactSeries {
	i, found := slices.BinarySearchFunc(series, cs.ref, func(x compactSeries, ref SeriesRef) int { return cmp.Compare(x.ref, ref) })
	if !found {
		return slices.Insert(series, i, cs)
	}
	x := &series[i]
	for _, key := range x.keys {
		o := chunkKeyOrder(unflipSign(binary.BigEndian.Uint64(key[1:9])), key)
		o.i = len(x.orders)
		x.orders = append(x.orders, o)
	}
	for k := range cs.orders {
		o := cs.orders[k]
		o.i = len(x.chunks) + k
		x.orders = append(x.orders, o)
	}
	x.chunks = append(x.chunks, cs.chunks...)
	x.sortChunks()
	x.ooo = x.ooo || cs.ooo
	x.journaled = true
	if x.bad == nil {
		x.bad = cs.bad
	}
	return series
}

// addAsIs queues the journal's chunks of a series compaction cannot
// merge (one is malformed) as badger entries, unmerged: once the bucket
// is marked compacted its journal records are dead, and badger holds
// the series' chunks in it as they were.
func (o *compactOutput) addAsIs(st *store, cs *compactSeries) {
	w := compactWrite{ref: cs.ref}
	for k, ord := range cs.orders {
		if !ord.journal {
			continue
		}
		c := cs.chunks[k]
		w.keys = append(w.keys, st.appendChunkKey(nil, cs.ref, c.minT, ord.kind, ord.seq))
		w.vals = append(w.vals, appendChunkValue(nil, c))
	}
	if len(w.keys) > 0 {
		o.series = append(o.series, w)
	}
}
