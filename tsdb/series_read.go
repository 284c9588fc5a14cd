package tsdb

import (
	"cmp"
	"slices"
)

// seriesSnapshot is what a reader needs of a series for [mint, maxt],
// copied under the series lock so that iterating needs no lock. Closed
// chunks are shared (they are immutable); the open chunk and buffered
// out-of-order samples are copied.
type seriesSnapshot struct {
	chunks []memChunk // in-order, non-overlapping, oldest first
	ooo    []sample   // out-of-order samples in range, sorted by t
	// bytes holds the copies the chunks' data point into (the open
	// chunk, chunks read past the cache), when a reused iterator's
	// buffers held them; the iterator keeps it for the next read.
	bytes []byte
}

// readBuffers are the buffers of an iterator passed back for reuse: its
// chunk list and the bytes copied for its chunks. The iterator's caller
// has given it up, so a new read may overwrite them; a chunksIterator
// keeps them, and a read through it allocates nothing once they have
// grown to a series' size.
type readBuffers struct {
	chunks []memChunk
	bytes  []byte
}

// buffersOf returns the buffers of reuse, emptied, if it has any.
func buffersOf(reuse Iterator) readBuffers {
	it, ok := reuse.(*chunksIterator)
	if !ok {
		return readBuffers{}
	}
	clear(it.chunkBuf) // no pointer to older data (an evicted cache entry) stays
	b := readBuffers{chunks: it.chunkBuf[:0], bytes: it.byteBuf[:0]}
	it.chunkBuf, it.byteBuf = nil, nil
	return b
}

func (s *memSeries) snapshotLocked(mint, maxt int64) seriesSnapshot {
	return s.snapshotInto(mint, maxt, readBuffers{})
}

// snapshotInto is snapshotLocked appending the chunks to b.chunks and the
// open chunk's copy to b.bytes; the snapshot's bytes field holds the
// grown bytes buffer.
func (s *memSeries) snapshotInto(mint, maxt int64, b readBuffers) seriesSnapshot {
	snap := seriesSnapshot{chunks: b.chunks, bytes: b.bytes}
	for _, c := range s.closedChunks() {
		if c.maxT >= mint && c.minT <= maxt {
			snap.chunks = append(snap.chunks, c)
		}
	}
	if s.head.open() && s.maxT >= mint && s.headMinTLocked() <= maxt {
		// A copy: later appends rewrite the last byte in place.
		n := len(snap.bytes)
		snap.bytes = append(snap.bytes, s.head.bytes()...)
		snap.chunks = append(snap.chunks, memChunk{data: snap.bytes[n:len(snap.bytes):len(snap.bytes)], minT: s.headMinTLocked(), maxT: s.maxT})
	}
	for _, c := range s.outOfOrder().chunks() {
		if c.maxT >= mint && c.minT <= maxt {
			snap.ooo = appendChunkSamples(snap.ooo, c, mint, maxt)
		}
	}
	for _, smp := range s.outOfOrder().samples() {
		if smp.t >= mint && smp.t <= maxt {
			snap.ooo = append(snap.ooo, smp)
		}
	}
	return snap
}

// iterator returns an iterator over the snapshot's samples in [mint, maxt].
// Without out-of-order samples it streams the chunks; otherwise it merges
// everything into one sorted slice, which is rare and bounded by the
// out-of-order window.
func (snap seriesSnapshot) iterator(reuse Iterator, mint, maxt int64) Iterator {
	if len(snap.ooo) == 0 && !overlapping(snap.chunks) {
		it, ok := reuse.(*chunksIterator)
		if !ok {
			it = &chunksIterator{}
		}
		it.reset(snap.chunks, mint, maxt)
		it.chunkBuf, it.byteBuf = snap.chunks, snap.bytes
		return it
	}
	var all []sample
	for _, c := range snap.chunks {
		all = appendChunkSamples(all, c, mint, maxt)
	}
	all = append(all, snap.ooo...)
	// Stable: for equal timestamps the in-order sample, appended first, wins.
	slices.SortStableFunc(all, func(a, b sample) int { return cmp.Compare(a.t, b.t) })
	all = slices.CompactFunc(all, func(a, b sample) bool { return a.t == b.t })
	it, ok := reuse.(*samplesIterator)
	if !ok {
		it = &samplesIterator{}
	}
	it.reset(all)
	return it
}

// overlapping reports whether chunks, in order, are not strictly
// time-ordered: then they need the merge.
func overlapping(chunks []memChunk) bool {
	for i := 1; i < len(chunks); i++ {
		if chunks[i].minT <= chunks[i-1].maxT {
			return true
		}
	}
	return false
}

// appendChunkSamples appends the samples of chunk c (XOR or integer) in
// [mint, maxt] to dst. A malformed chunk gives the samples before the
// fault.
func appendChunkSamples(dst []sample, c memChunk, mint, maxt int64) []sample {
	var it chunksIterator
	it.reset([]memChunk{c}, mint, maxt)
	for it.Next() {
		t, v := it.At()
		dst = append(dst, sample{t: t, v: v})
	}
	return dst
}
