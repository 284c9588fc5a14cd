package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ApplyRetention drops the store's time buckets that end more than
// Retention before the reference time (see refTime), removes from the
// index the series with no data left, and lets badger reclaim the space.
func (db *DB) ApplyRetention() error {
	db.checkpointMu.Lock()
	defer db.checkpointMu.Unlock()
	lastDead, ok := db.lastDeadBucket()
	if !ok {
		return nil
	}
	db.droppedThrough = max(db.droppedThrough, lastDead) // before the drop: db_compact.go
	db.store.journalFloor.Store(max(db.store.journalFloor.Load(), lastDead+1))
	for b := range db.bucketWritten {
		if b <= lastDead {
			delete(db.bucketWritten, b)
		}
	}
	dropped, err := db.store.dropBucketsThrough(lastDead)
	if err != nil {
		return err
	}
	journaled := db.journal.bucketsThrough(lastDead)
	db.deferJournalRemoval()
	if err := db.removeJournalSegments(); err != nil {
		return err
	}
	w := db.store.cache.beginWrite()
	for _, b := range journaled {
		w.dropBucket(b)
	}
	w.end()
	for _, b := range journaled {
		if !slices.Contains(dropped, b) {
			dropped = append(dropped, b)
		}
	}
	db.metrics.bucketsDropped.Add(float64(len(dropped)))
	if err := db.dropEvictedThrough(lastDead); err != nil {
		return err
	}
	keptFrom := (lastDead + 1) * db.store.bucketRange
	removed, err := db.removeExpiredSeries(keptFrom)
	if err != nil {
		return err
	}
	db.metrics.seriesRemoved.Add(float64(removed))
	for db.store.db.RunValueLogGC(0.5) == nil {
	}
	if len(dropped) > 0 || removed > 0 {
		db.logger.Info("retention applied", "buckets_dropped", len(dropped), "series_removed", removed, "kept_from_ms", keptFrom)
	}
	return nil
}

// lastDeadBucket returns the newest bucket retention drops now; ok is
// false for an empty head.
func (db *DB) lastDeadBucket() (int64, bool) {
	newest := db.refTime()
	if newest == minInt64 {
		return 0, false
	}
	cutoff := newest - db.opts.Retention.Milliseconds()
	// Bucket b covers [b·R, (b+1)·R): it may go when (b+1)·R <= cutoff.
	return db.store.bucketOf(cutoff) - 1, true
}

// refTime is the time retention and staleness are measured from: the
// newest sample, unless it is past the wall clock, then the wall clock.
// One sample stamped years ahead must not expire all history, nor make
// every series look stale; data written with old timestamps (a backfill,
// a test) keeps being measured from its own newest sample.
func (db *DB) refTime() int64 {
	return min(db.head.MaxTime(), time.Now().UnixMilli())
}

// dropBucketsThrough drops badger's chunk buckets up to and including
// last and returns those that held data.
func (s *store) dropBucketsThrough(last int64) ([]int64, error) {
	var prefixes [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChunk}})
		defer it.Close()
		for it.Rewind(); it.Valid(); {
			key := it.Item().Key()
			if len(key) != chunkKeyLen {
				return fmt.Errorf("chunk key of %d bytes", len(key))
			}
			b := unflipSign(binary.BigEndian.Uint64(key[1:9]))
			if b > last {
				break
			}
			p := append([]byte{prefixChunk}, key[1:9]...)
			prefixes = append(prefixes, p, compactedKey(b)) // and its compaction marker
			// Jump to the next bucket.
			it.Seek(binary.BigEndian.AppendUint64([]byte{prefixChunk}, flipSign(b+1)))
		}
		return nil
	})
	if err != nil || len(prefixes) == 0 {
		return nil, err
	}
	w := s.cache.beginWrite()
	defer w.end()
	var dropped []int64
	for _, p := range prefixes {
		if p[0] == prefixChunk {
			b := unflipSign(binary.BigEndian.Uint64(p[1:9]))
			w.dropBucket(b)
			dropped = append(dropped, b)
		}
	}
	if err := s.db.DropPrefix(prefixes...); err != nil {
		return nil, fmt.Errorf("drop chunk buckets: %w", err)
	}
	return dropped, nil
}

// removeExpiredSeries removes inactive series whose newest sample is
// older than keptFrom, and raises the oldest time of the others. A series
// pinned by an appender that has not committed yet is kept: its commit
// would otherwise acknowledge samples into a removed series. Deciding
// under the series' lock, as the appender pins it, makes the two agree.
func (db *DB) removeExpiredSeries(keptFrom int64) (int, error) {
	h := db.head
	var expired []*memSeries
	h.series.refs.batches(checkpointBatch, func(batch []*memSeries) error {
		for _, s := range batch {
			s.mu.Lock()
			if !s.active && s.maxT < keptFrom && s.pins == 0 {
				s.deleted = true
				expired = append(expired, s)
			} else if s.minT < keptFrom {
				s.minT = keptFrom
			}
			s.mu.Unlock()
		}
		return nil
	})
	if len(expired) == 0 {
		return 0, nil
	}
	// Out of the maps first, before any I/O: an appender that meets a
	// series marked deleted looks it up again until it is gone. A failed
	// delete below leaves records without data, which the next start
	// loads as empty series and the next pass removes.
	h.removeSeries(expired)
	var w recordWriter
	for _, s := range expired {
		w.delete(s.ref)
	}
	if err := w.write(db.index, h.symbols, nil); err != nil {
		return 0, errors.Join(errors.New("delete expired series"), err)
	}
	return len(expired), nil
}
