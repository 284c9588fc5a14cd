package tsdb

import (
	"encoding/binary"
	"fmt"
	"path/filepath"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// recover rebuilds the head: the series index from the store's series
// records, the open chunks from the head snapshots, then every WAL record
// written after the last checkpoint.
func (db *DB) recover() error {
	var r walRecordReader
	err := db.store.scan(prefixSeries, func(key, val []byte) error {
		if len(key) != 9 {
			return fmt.Errorf("series key of %d bytes", len(key))
		}
		ref := SeriesRef(binary.BigEndian.Uint64(key[1:]))
		return decodeSeriesValue(val, &r, func(rec seriesRecord, lset labels.Labels) error {
			s := db.head.restoreSeries(ref, lset)
			s.mu.Lock()
			s.minT, s.maxT, s.lastV, s.persistedMaxT = rec.minT, rec.maxT, rec.lastV, rec.maxT
			s.indexPersisted = true
			s.mu.Unlock()
			db.head.updateTimeRange(rec.minT, rec.maxT)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load series: %w", err)
	}
	from, found, err := readSnapshot(db.dir, db.restoreHeadSnapshot)
	if err != nil {
		// The open chunks it held are lost; what the store and the WAL
		// hold is still served.
		db.logger.Error("head snapshot unreadable; open chunks of the last checkpoint are lost", "err", err)
	}
	if !found {
		from = 0
	}
	return db.replayWAL(from)
}

// restoreHeadSnapshot reopens the open chunk of an active series.
func (db *DB) restoreHeadSnapshot(ref SeriesRef, snap headSnapshot) error {
	s := db.head.series.getByRef(ref)
	if s == nil {
		return nil // its series record was removed by retention
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		db.head.activateLocked(s)
	}
	s.maxT, s.lastV = snap.maxT, snap.lastV
	s.persistedMaxT = max(s.persistedMaxT, snap.headMinT-1)
	if snap.chunk != nil {
		if err := s.reopenHeadLocked(snap); err != nil {
			return fmt.Errorf("head snapshot of series %d: %w", ref, err)
		}
		db.head.chunkBytes.Add(s.chunkBytesLocked())
		db.head.updateTimeRange(snap.headMinT, snap.maxT)
	} else {
		db.head.updateTimeRange(snap.maxT, snap.maxT)
	}
	return nil
}

// reopenHeadLocked rebuilds the open chunk from a snapshot by appending
// its samples anew: an XOR chunk read back from bytes cannot be appended
// to, since its writer's bit position within the last byte is lost.
func (s *memSeries) reopenHeadLocked(snap headSnapshot) error {
	var src chunkenc.XORChunk
	src.Reset(snap.chunk)
	it := src.Iterator(nil)
	c := newHeadChunk()
	app, err := c.Appender()
	if err != nil {
		return err
	}
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		app.Append(0, t, v)
	}
	if err := it.Err(); err != nil {
		return err
	}
	s.head, s.app = c, app
	return nil
}

// replayWAL applies the WAL records of segments >= from. A sample the head
// refuses (a duplicate of what the store already holds) is skipped.
func (db *DB) replayWAL(from int) error {
	var r walRecordReader
	h := db.head
	var samples, series, orphans int
	// aliases maps a logged ref to the series that now holds its labels
	// under another ref (retention removed the old one, and it came back).
	aliases := map[SeriesRef]*memSeries{}
	err := replayWAL(filepath.Join(db.dir, "wal"), from, db.logger, func(rec []byte) error {
		return r.decode(rec, func(ref SeriesRef, lset labels.Labels) error {
			if h.series.getByRef(ref) == nil {
				if s := h.restoreSeries(ref, lset); s.ref != ref {
					aliases[ref] = s
				}
				series++
			}
			return nil
		}, func(smp walSample) error {
			s := h.series.getByRef(smp.ref)
			if s == nil {
				s = aliases[smp.ref]
			}
			if s == nil {
				orphans++ // its series record was lost with a corrupt segment
				return nil
			}
			s.mu.Lock()
			_, err := s.appendLocked(smp.t, smp.v, h)
			s.mu.Unlock()
			if err == nil {
				samples++
				h.updateTimeRange(smp.t, smp.t)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if orphans > 0 {
		db.logger.Warn("WAL samples of unknown series skipped", "samples", orphans)
	}
	db.logger.Info("WAL replayed", "from_segment", from, "series_created", series, "samples", samples)
	return nil
}

// restoreSeries adds a series with a known ref to the index, inactive.
// Its record is in the store or the WAL, so it counts as logged.
func (h *Head) restoreSeries(ref SeriesRef, lset labels.Labels) *memSeries {
	hash := lset.Hash()
	syms := h.symbols.internLabels(lset)
	s, created := h.series.getOrSet(hash, lset, h.symbols, func() *memSeries {
		return newMemSeries(ref, syms)
	})
	if !created {
		h.symbols.release(syms) // never published: no reader holds it
	}
	if created {
		s.logged.Store(true)
		s.evictable = true // inactive: a checkpoint may evict it
		h.index.add(ref, h.symbols.load(), s.syms)
		h.numIndexed.Add(1)
		h.indexBytes.Add(seriesOverhead(len(s.syms)))
		for {
			last := h.lastRef.Load()
			if uint64(ref) <= last || h.lastRef.CompareAndSwap(last, uint64(ref)) {
				break
			}
		}
	}
	return s
}
