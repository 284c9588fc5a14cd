package tsdb

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// chunkOrder is where a persisted chunk's key sorts among a series'
// chunks: by bucket, first timestamp, kind and seq. Reads return a
// series' chunks in that order, from badger and the journal alike, so
// that the merge that keeps the first of equal timestamps
// (seriesSnapshot.iterator) and compaction see them as badger's keys
// ordered them before the journal.
type chunkOrder struct {
	bucket, minT int64
	kind         byte
	seq          uint32
	i            int  // the chunk's index in storeIterator.read
	journal      bool // the chunk is the journal's (compaction)
}

func compareChunkOrder(a, b chunkOrder) int {
	return cmp.Or(cmp.Compare(a.bucket, b.bucket), cmp.Compare(a.minT, b.minT), cmp.Compare(a.kind, b.kind), cmp.Compare(a.seq, b.seq))
}

// chunkKeyOrder returns the order of a chunk key of bucket b (a valid
// key: decodeChunk accepted it).
func chunkKeyOrder(b int64, key []byte) chunkOrder {
	return chunkOrder{bucket: b, minT: unflipSign(binary.BigEndian.Uint64(key[17:25])), kind: key[25], seq: binary.BigEndian.Uint32(key[26:30])}
}

// journalRead is a storeIterator's buffers for journal records.
type journalRead struct {
	buf    []byte
	sorted []memChunk
}

// reset empties the buffers of a read.
func (si *storeIterator) reset() {
	si.scratch, si.ends, si.read, si.order = si.scratch[:0], si.ends[:0], si.read[:0], si.order[:0]
}

// readChain appends to si.read the chunks of the chain from pos that
// overlap [mint, maxt], as readBucket appends badger's (bytes to
// si.scratch, end offsets to si.ends, keys' order to si.order). It stops
// where the rest of the chain ends before mint, and skips the records of
// buckets retention dropped or compaction moved into r's snapshot.
func (si *storeIterator) readChain(r *storeReader, pos journalPos, ref SeriesRef, mint, maxt int64) error {
	st := r.st
	if floor := st.journalFloor.Load(); floor != minInt64 {
		mint = max(mint, floor*st.bucketRange)
	}
	if r.compacted != minInt64 {
		mint = max(mint, (r.compacted+1)*st.bucketRange)
	}
	for pos != 0 {
		rec, buf, err := st.journal.readMapped(pos, si.journal.buf)
		si.journal.buf = buf
		if err != nil {
			return fmt.Errorf("persisted chunks of series %d: %w", ref, err)
		}
		if rec.ref != ref {
			return fmt.Errorf("persisted chunks of series %d: its chain reaches a record of series %d at %v", ref, rec.ref, pos)
		}
		if c := rec.chunk; c.minT <= maxt && c.maxT >= mint {
			si.scratch = append(si.scratch, c.data...)
			si.ends = append(si.ends, len(si.scratch))
			si.order = append(si.order, chunkOrder{bucket: -1, minT: c.minT, kind: rec.kind, seq: rec.seq})
			si.read = append(si.read, memChunk{minT: c.minT, maxT: c.maxT})
		}
		if rec.prevMaxT < mint {
			break
		}
		pos = rec.prev
	}
	return nil
}

// sortRead puts si.read, whose data copyOut has set, in key order. Only
// a read with journal chunks needs it: badger's come in key order.
func (si *storeIterator) sortRead(st *store) {
	journal := false
	for k := range si.order {
		if si.order[k].bucket == -1 {
			si.order[k].bucket = st.bucketOf(si.order[k].minT)
			journal = true
		}
		si.order[k].i = k
	}
	if !journal {
		return
	}
	slices.SortStableFunc(si.order, compareChunkOrder)
	si.journal.sorted = si.journal.sorted[:0]
	for _, o := range si.order {
		si.journal.sorted = append(si.journal.sorted, si.read[o.i])
	}
	copy(si.read, si.journal.sorted)
	clear(si.journal.sorted)
}
