package tsdb

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/prometheus/model/labels"
)

// recover rebuilds the head: the series index from the series index
// file (loadIndex), the open chunks from the head snapshot, then every WAL record
// written after the last checkpoint. If the snapshot is missing or
// corrupt, the series' time ranges come from a scan of badger's chunks,
// the open chunks from the previous snapshot, and the WAL is replayed
// from the previous checkpoint on.
func (db *DB) recover() error {
	start := time.Now()
	if err := db.loadIndex(); err != nil {
		return err
	}
	db.logger.Info("series index loaded", "series", db.head.NumIndexedSeries(), "symbols", db.head.symbols.len(),
		"duration", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	from, found, journalEnd, err := db.restoreSnapshot(snapshotName, false)
	if found && err == nil {
		db.logger.Info("head snapshot restored", "active_series", db.head.NumSeries(),
			"duration", time.Since(start).Round(time.Millisecond))
		// The snapshot has each series' chain as of its checkpoint; the
		// records appended after it are found by a scan.
		if err := db.scanJournal(journalEnd, false); err != nil {
			return fmt.Errorf("scan chunk journal: %w", err)
		}
		db.lastCut = from
		return db.replayWAL(from)
	}
	// Without the newest snapshot, badger's chunks say what each series
	// holds, the previous snapshot the open chunks of the checkpoint
	// before, and the WAL, kept from that checkpoint on, the rest.
	if err != nil {
		db.logger.Error("head snapshot unreadable; recovering from the store, the previous snapshot and the WAL", "err", err)
	} else if db.head.NumIndexedSeries() > 0 {
		db.logger.Warn("head snapshot missing; recovering from the store, the previous snapshot and the WAL")
	}
	if err := db.scanChunks(); err != nil {
		return fmt.Errorf("scan persisted chunks: %w", err)
	}
	if err := db.scanJournal(0, true); err != nil {
		return fmt.Errorf("scan chunk journal: %w", err)
	}
	from, found, _, err = db.restoreSnapshot(snapshotPrevName, true)
	if err != nil || !found {
		if err != nil {
			db.logger.Error("previous head snapshot unreadable too; the open chunks it held are lost", "err", err)
		}
		from = 0
	}
	db.lastCut = from
	return db.replayWAL(from)
}

// loadIndex loads the series index into the head: from the series index
// file, or, in a store written before the file existed, from badger's
// series and symbol records, which it then moves to a new file.
func (db *DB) loadIndex() error {
	path := filepath.Join(db.dir, seriesIndexName)
	li, found, err := readSeriesIndex(path)
	if err != nil {
		return err
	}
	if !found {
		return db.moveLegacyIndex(path)
	}
	defer li.release()
	if li.torn > 0 {
		db.logger.Warn("series index ends in a frame cut short; dropped", "bytes", li.torn)
	}
	use := newSymbolUse(li.dict)
	if err := db.loadSeriesFrom(fileRecords{li}, li.dict, use); err != nil {
		return fmt.Errorf("load series: %w", err)
	}
	db.head.symbols.adoptPIDs(li.dict, use)
	if db.index, err = openSeriesIndex(path, li.size, li.records, li.symbols); err != nil {
		return err
	}
	// An earlier start may have moved the records and stopped before
	// it dropped them from badger.
	return db.store.dropLegacyIndex()
}

// moveLegacyIndex loads badger's series records, if any, and writes the
// series index file from the head; only then are they dropped from
// badger, so that a crash in between loses none.
func (db *DB) moveLegacyIndex(path string) error {
	dict, err := db.store.readSymbols()
	if err != nil {
		return fmt.Errorf("load symbols: %w", err)
	}
	use := newSymbolUse(dict)
	if err := db.loadSeriesFrom(legacyRecords{db.store}, dict, use); err != nil {
		return fmt.Errorf("load series: %w", err)
	}
	db.head.symbols.adoptPIDs(dict, use)
	var written []pendingSymbol
	f, size, records, symbols, err := writeSeriesIndex(path, func(fr *indexFrames, flush func() error) error {
		var err error
		written, err = db.writeIndexFromHead(fr, flush)
		return err
	})
	if err != nil {
		return err
	}
	db.head.symbols.markDurable(written)
	db.index = &seriesIndex{path: path, f: f, size: size, records: records, symbols: symbols}
	if records > 0 {
		db.logger.Info("series records moved from badger to the series index file", "series", records)
	}
	return db.store.dropLegacyIndex()
}

// loadSeriesFrom loads the series records of src into the head.
func (db *DB) loadSeriesFrom(src seriesRecords, dict *symbolDict, use symbolUse) error {
	if db.opts.sequentialLoad {
		return db.loadSeriesSequential(src, dict, use)
	}
	return db.loadSeries(src, dict, use) // db_recover_series.go
}

// loadSeriesSequential reads the store's series records one by one in
// ref order through restoreSeries, as WAL replay restores series. It is
// the reference that loadSeries (db_recover_series.go) must match.
func (db *DB) loadSeriesSequential(src seriesRecords, dict *symbolDict, use symbolUse) error {
	var pairs []labels.Label
	return src.each(nil, func(ref SeriesRef, val []byte) error {
		var rec seriesRecord
		var found bool
		var err error
		rec, pairs, found, err = decodeSeriesBorrowed(val, dict, use, pairs[:0])
		if err != nil || !found {
			return err
		}
		s := db.head.restoreSeries(ref, labels.New(pairs...)) // interns copies of val's strings
		s.mu.Lock()
		s.minT, s.maxT, s.lastV, s.persistedMaxT = rec.minT, rec.maxT, rec.lastV, rec.maxT
		s.indexPersisted = true
		s.mu.Unlock()
		db.head.updateTimeRange(rec.minT, rec.maxT)
		return nil
	})
}

// restoreSnapshot restores the open chunks of the snapshot file name in
// the DB's directory and returns the WAL segment replay starts from. The
// file is checked whole before anything is restored from it, so that a
// corrupt one changes nothing. The file is read twice, a few frames at a
// time, the frames of each pass spread over GOMAXPROCS workers. In
// fallback mode the series' persisted
// chunks were scanned first: an open chunk badger already holds is not
// reopened.
func (db *DB) restoreSnapshot(name string, fallback bool) (seg int, found bool, journalEnd journalPos, err error) {
	path := filepath.Join(db.dir, name)
	workers := runtime.GOMAXPROCS(0)
	if db.opts.sequentialLoad {
		workers = 1
	}
	noChain := func(SeriesRef, journalPos) error { return nil }
	var endMu sync.Mutex
	setEnd := func(pos journalPos, spans map[uint32]bucketSpan) {
		endMu.Lock()
		journalEnd = pos
		endMu.Unlock()
		if !fallback {
			for seg, sp := range spans {
				db.journal.noteSpan(seg, sp.min)
				db.journal.noteSpan(seg, sp.max)
			}
		}
	}
	check := func(version byte, payload []byte) error {
		if err := decodeSnapshotChains(version, payload, noChain, func(journalPos, map[uint32]bucketSpan) {}); err != nil {
			return err
		}
		return decodeSnapshotRecords(version, payload, func(SeriesRef, headSnapshot) error { return nil })
	}
	if _, found, err = eachSnapshotFrame(path, workers, check); err != nil || !found {
		return 0, found, 0, err
	}
	// A fallback takes the chains from a scan of the whole journal: the
	// previous snapshot's are older.
	chain := db.restoreChain
	if fallback {
		chain = noChain
	}
	// Each series has one record and one chain: the frames restore in any
	// order.
	seg, found, err = eachSnapshotFrame(path, workers, func(version byte, payload []byte) error {
		if err := decodeSnapshotChains(version, payload, chain, setEnd); err != nil {
			return err
		}
		t := newRestoreTotals()
		defer t.addTo(db.head)
		return decodeSnapshotRecords(version, payload, func(ref SeriesRef, snap headSnapshot) error {
			return db.restoreHeadSnapshot(ref, snap, fallback, &t)
		})
	})
	return seg, found, journalEnd, err
}

// restoreChain sets a series' newest journal record from the snapshot.
func (db *DB) restoreChain(ref SeriesRef, pos journalPos) error {
	s := db.head.series.getByRef(ref)
	if s == nil {
		return nil // its series record was removed by retention
	}
	s.mu.Lock()
	db.head.series.refs.setChain(ref, pos)
	s.mu.Unlock()
	return nil
}

// restoreTotals sums what restoring a frame of the snapshot adds to the
// head's counters and time range, so that workers restoring frames side
// by side update those shared atomics once a frame, not a few times a
// series.
type restoreTotals struct {
	series, chunkBytes int64
	minT, maxT         int64
}

func newRestoreTotals() restoreTotals { return restoreTotals{minT: maxInt64, maxT: minInt64} }

func (t *restoreTotals) addTo(h *Head) {
	h.numSeries.Add(t.series)
	h.chunkBytes.Add(t.chunkBytes)
	h.updateTimeRange(t.minT, t.maxT)
}

// scanChunks sets each series' time range, persistedMaxT and newest
// sample from the chunks badger holds: a series record's range says what
// the series held when the record was written (often in open chunks, so
// in the lost snapshot), not what badger has. It reads every chunk's key
// and time range, then the newest chunk of each series for its last value.
func (db *DB) scanChunks() error {
	db.head.series.refs.batches(checkpointBatch, func(batch []*memSeries) error {
		for _, s := range batch {
			s.mu.Lock()
			s.minT, s.maxT, s.lastV, s.persistedMaxT = maxInt64, minInt64, 0, minInt64
			// A snapshot that failed part way may have reopened chunks: the
			// WAL replays their samples, and the writer of an open chunk
			// continues from maxT and lastV, which now say otherwise.
			if s.head.open() || len(s.closedChunks()) > 0 {
				before := s.chunkBytesLocked()
				s.head, s.headXOR = openChunk{}, headXOR{}
				s.dropClosedLocked(len(s.closedChunks()))
				if s.active {
					db.head.chunkBytes.Add(s.chunkBytesLocked() - before)
				}
			}
			s.mu.Unlock()
		}
		return nil
	})
	newest := map[SeriesRef][]byte{} // key of each series' newest chunk
	err := db.store.scan(prefixChunk, func(key, val []byte) error {
		c, err := decodeChunk(key, val)
		if err != nil {
			return err
		}
		ref := SeriesRef(binary.BigEndian.Uint64(key[9:17]))
		s := db.head.series.getByRef(ref)
		if s == nil {
			return nil // its series was removed by retention
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.minT = min(s.minT, c.minT)
		s.persistedMaxT = max(s.persistedMaxT, c.maxT)
		if c.maxT > s.maxT || newest[ref] == nil {
			s.maxT = max(s.maxT, c.maxT)
			newest[ref] = append(newest[ref][:0], key...)
		}
		db.head.updateTimeRange(c.minT, c.maxT)
		return nil
	})
	if err != nil {
		return err
	}
	return db.store.db.View(func(txn *badger.Txn) error {
		for ref, key := range newest {
			item, err := txn.Get(key)
			if err != nil {
				return err
			}
			err = item.Value(func(val []byte) error {
				c, err := decodeChunk(key, val)
				if err != nil {
					return err
				}
				s := db.head.series.getByRef(ref)
				s.mu.Lock()
				defer s.mu.Unlock()
				if v, ok := chunkValueAt(c, s.maxT); ok {
					s.lastV = math.Float64bits(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// restoreHeadSnapshot reopens the open chunk of an active series. What
// it adds to the head's counters and time range goes to t.
func (db *DB) restoreHeadSnapshot(ref SeriesRef, snap headSnapshot, fallback bool, t *restoreTotals) error {
	s := db.head.series.getByRef(ref)
	if s == nil {
		return nil // its series record was removed by retention
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fallback && snap.maxT <= s.maxT && (snap.chunk == nil || snap.headMinT <= s.persistedMaxT) {
		return nil // badger holds all of it: a later checkpoint closed the chunk
	}
	if !s.active { // as activateLocked, counted in t
		s.active = true
		t.chunkBytes += s.chunkBytesLocked()
		t.series++
	}
	if !fallback || snap.maxT >= s.maxT {
		s.maxT, s.lastV = snap.maxT, snap.lastV
	}
	s.persistedMaxT = max(s.persistedMaxT, snap.headMinT-1)
	if snap.chunk != nil {
		if err := s.reopenHeadLocked(snap); err != nil {
			return fmt.Errorf("head snapshot of series %d: %w", ref, err)
		}
		t.chunkBytes += s.chunkBytesLocked()
		t.minT, t.maxT = min(t.minT, snap.headMinT), max(t.maxT, snap.maxT)
	} else {
		t.minT, t.maxT = min(t.minT, snap.maxT), max(t.maxT, snap.maxT)
	}
	return nil
}

// reopenHeadLocked rebuilds the open chunk and its writer from a
// snapshot: a copy of its bytes with the writer it recorded, or, from a
// version 1 snapshot, its samples appended again (restoreXOR). The writer
// continues from the series' newest sample (maxT, lastV), so the chunk is
// reopened only when that is its last sample; otherwise (a snapshot whose
// maxT disagrees with its chunk, or whose writer's delta does not fit a
// headXOR) the chunk is kept closed and the next sample starts a new one.
func (s *memSeries) reopenHeadLocked(snap headSnapshot) error {
	c, x, lastT, lastV, err := snap.restoreChunk()
	if err != nil {
		return err
	}
	if xorNumSamples(c) == 0 {
		return nil
	}
	if lastT != s.maxT || lastV != s.lastV || !fitsHeadXOR(x) {
		minT, _ := binary.Varint(c[xorChunkHeader:])
		s.appendClosedLocked(memChunk{data: slices.Clip(c), minT: minT, maxT: lastT})
		return nil
	}
	s.head.set(c)
	s.headXOR = packHeadXOR(x)
	return nil
}

// replayWAL applies the WAL records of segments >= from. A sample the head
// refuses (a duplicate of what the store already holds) is skipped.
func (db *DB) replayWAL(from int) error {
	start := time.Now()
	var r walRecordReader
	h := db.head
	var samples, series, orphans int
	// aliases maps a logged ref to the series that now holds its labels
	// under another ref (retention removed the old one, and it came back).
	aliases := map[SeriesRef]*memSeries{}
	err := replayWAL(filepath.Join(db.dir, "wal"), from, db.logger, func(rec []byte) error {
		return r.decode(rec, func(ref SeriesRef, lset labels.Labels) error {
			if h.series.getByRef(ref) == nil {
				s := h.restoreSeries(ref, lset)
				if s.ref != ref {
					aliases[ref] = s
				} else if err := h.restoreEvictedState(s); err != nil { // series_evict.go
					return err
				}
				series++
			}
			return nil
		}, func(smp walSample) error {
			s := h.series.getByRef(smp.ref)
			if s == nil {
				s = aliases[smp.ref]
			}
			if s == nil { // evicted, its series record logged before the replayed segments
				var err error
				if s, err = h.restoreEvicted(smp.ref); err != nil {
					return err
				}
			}
			if s == nil {
				orphans++ // its series record was lost with a corrupt segment
				return nil
			}
			s.mu.Lock()
			_, err := s.replayLocked(smp.t, smp.v, h)
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
	db.logger.Info("WAL replayed", "from_segment", from, "series_created", series, "samples", samples,
		"duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// restoreSeries adds a series with a known ref to the index, inactive.
// Its record is in the store or the WAL, so it counts as logged.
func (h *Head) restoreSeries(ref SeriesRef, lset labels.Labels) *memSeries {
	hash := lset.Hash()
	syms := h.symbols.internSyms(lset)
	s, created := h.series.getOrSet(hash, lset, h.symbols, func() *memSeries {
		return newMemSeries(ref, syms)
	})
	if !created {
		h.symbols.release(syms.refs()) // never published: no reader holds it
	}
	if created {
		s.logged.Store(true)
		h.index.add(ref, h.symbols.load(), s.syms.refs())
		h.numIndexed.Add(1)
		h.indexBytes.Add(seriesOverhead(len(s.syms.refs())))
		for {
			last := h.lastRef.Load()
			if uint64(ref) <= last || h.lastRef.CompareAndSwap(last, uint64(ref)) {
				break
			}
		}
	}
	return s
}
