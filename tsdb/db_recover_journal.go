package tsdb

import (
	"fmt"
	"math"
	"os"
	"time"
)

// scanJournal reads the chunk journal from position from on (0: from its
// oldest segment) and sets each series' chain to its newest record there:
// records are appended in chain order. With ranges, as scanChunks does for badger's chunks, it
// also widens each series' time range and persisted time to what its
// records hold, for a recovery without the head snapshot.
//
// Every record counts, those of a checkpoint that did not complete
// included: that checkpoint may have written the series index records
// that claim their samples, and WAL replay then skips those samples.
func (db *DB) scanJournal(from journalPos, ranges bool) error {
	start := time.Now()
	segs, err := journalSegments(db.journal.dir)
	if err != nil {
		return err
	}
	var records, scanned int
	for _, seg := range segs {
		if seg < from.segment() {
			continue
		}
		f, err := os.Open(db.journal.segmentPath(seg))
		if err != nil {
			return err
		}
		scanned++
		off := int64(0)
		if seg == from.segment() {
			off = int64(from.offset())
		}
		_, err = scanJournalSegmentFrom(f, seg, off, func(pos journalPos, rec journalRecord) error {
			db.journal.noteSpan(seg, db.store.bucketOf(rec.chunk.minT))
			s := db.head.series.getByRef(rec.ref)
			if s == nil {
				return nil // its series was removed by retention
			}
			records++
			s.mu.Lock()
			defer s.mu.Unlock()
			db.head.series.refs.setChain(rec.ref, pos)
			if !ranges {
				return nil
			}
			c := rec.chunk
			s.minT = min(s.minT, c.minT)
			s.persistedMaxT = max(s.persistedMaxT, c.maxT)
			if c.maxT > s.maxT {
				s.maxT = c.maxT
				if v, ok := chunkValueAt(c, c.maxT); ok {
					s.lastV = math.Float64bits(v)
				}
			}
			db.head.updateTimeRange(c.minT, c.maxT)
			return nil
		})
		f.Close()
		if err != nil {
			return fmt.Errorf("chunk journal segment %d: %w", seg, err)
		}
	}
	if scanned > 0 {
		db.logger.Info("chunk journal scanned", "segments", scanned, "records", records,
			"duration", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
