package tsdb

import (
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// rewriteFlushBytes is how much a rewrite encodes before it writes: the
// file is written in steps, never held whole in memory.
const rewriteFlushBytes = 4 << 20

// compactIndex rewrites the series index file from the head when records
// superseded or deleted make up more than half of it. A failed rewrite
// leaves the file as it was. The caller holds checkpointMu, so no series
// leaves the index meanwhile.
func (db *DB) compactIndex() error {
	h := db.head
	if !db.index.overgrown(h.NumIndexedSeries(), int64(h.symbols.len())) {
		return nil
	}
	return db.rewriteIndex()
}

// rewriteIndex writes the series index file anew from the head. The
// caller holds checkpointMu.
func (db *DB) rewriteIndex() error {
	h := db.head
	start := time.Now()
	before := db.index.fileSize()
	var written []pendingSymbol
	err := db.index.rewrite(func(fr *indexFrames, flush func() error) error {
		var err error
		written, err = db.writeIndexFromHead(fr, flush)
		return err
	})
	if err != nil {
		return fmt.Errorf("rewrite series index: %w", err)
	}
	h.symbols.markDurable(written)
	db.logger.Info("series index rewritten", "bytes_before", before, "bytes_after", db.index.fileSize(),
		"duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// writeIndexFromHead writes the record of every series whose record the
// index holds (indexPersisted), as the store holds it, then the symbol
// record of every symbol the head has given a pid, and returns those:
// they are durable once the file is in place. Series not yet persisted
// are left to the writers that persist them, which append to the new
// file.
func (db *DB) writeIndexFromHead(fr *indexFrames, flush func() error) ([]pendingSymbol, error) {
	h := db.head
	st := h.symbols
	var pids []uint32
	var need []pendingSymbol
	var b labels.ScratchBuilder
	var lset labels.Labels
	err := h.series.refs.batches(checkpointBatch, func(batch []*memSeries) error {
		for _, s := range batch {
			s.mu.Lock()
			if s.indexPersisted && !s.deleted {
				rec := storedRecord(s, s.persistedMaxT)
				var ok bool
				if pids, need, ok = st.persistedIDs(s.syms.refs(), pids[:0], need[:0]); ok {
					fr.endSeries(appendSeriesRecord(fr.seriesBody(s.ref), rec, pids))
				} else {
					st.labelsInto(&b, s.syms.refs(), &lset)
					fr.endSeries(appendSeriesValue(fr.seriesBody(s.ref), rec, lset))
				}
			}
			s.mu.Unlock()
		}
		if fr.size() >= rewriteFlushBytes {
			return flush()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var written []pendingSymbol
	for id := 0; ; {
		if id = st.symbolRecords(fr, id, &written); id < 0 {
			break
		}
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return written, nil
}

// symbolRecords adds to fr the symbol record of every symbol with a pid
// from slot from on, appending them to written, until fr holds
// rewriteFlushBytes; it returns the slot to go on from, -1 at the end.
// The table is locked a step at a time: a slot freed and given to
// another string meanwhile has no pid yet, or one its series record
// writes.
func (st *symbolTable) symbolRecords(fr *indexFrames, from int, written *[]pendingSymbol) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	strs := st.load()
	for id := from; id < len(st.pids); id++ {
		pid := st.pids[id]
		if pid == 0 {
			continue
		}
		fr.symbol(pid&^pidDurable, strs[id])
		*written = append(*written, pendingSymbol{id: uint32(id), pid: pid &^ pidDurable})
		if fr.size() >= rewriteFlushBytes {
			return id + 1
		}
	}
	return -1
}
