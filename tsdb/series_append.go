package tsdb

import (
	"cmp"
	"math"
	"math/bits"
	"slices"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// appendOutcome says what appending one sample did.
type appendOutcome uint8

const (
	appendedInOrder appendOutcome = iota
	appendedOutOfOrder
	ignoredDuplicate
)

// checkLocked decides where a sample would go without changing the series.
// The caller holds s.mu.
func (s *memSeries) checkLocked(t int64, v float64, oooWindow int64) (appendOutcome, error) {
	if outcome, decided, err := checkAgainstNewest(s.maxT, s.lastV, t, v, oooWindow); decided {
		return outcome, err
	}
	if stored, ok := s.valueAtLocked(t); ok {
		if math.Float64bits(stored) == math.Float64bits(v) {
			return ignoredDuplicate, nil
		}
		return 0, ErrDuplicateSampleForTimestamp
	}
	return appendedOutOfOrder, nil
}

// checkAgainstNewest decides a sample's fate from the newest sample of
// its series (newestT, with value bits newestV) alone. It leaves undecided
// only a sample inside the out-of-order window, which needs a look at the
// stored samples for a duplicate.
func checkAgainstNewest(newestT int64, newestV uint64, t int64, v float64, oooWindow int64) (outcome appendOutcome, decided bool, err error) {
	switch {
	case t > newestT:
		return appendedInOrder, true, nil
	case t == newestT && math.Float64bits(v) == newestV:
		return ignoredDuplicate, true, nil
	case t == newestT:
		return 0, true, ErrDuplicateSampleForTimestamp
	case oooWindow == 0:
		return 0, true, ErrOutOfOrderSample
	case oooWindow != math.MaxInt64 && t < newestT-oooWindow: // MaxInt64: no window (replay)
		return 0, true, ErrTooOldSample
	}
	return appendedOutOfOrder, false, nil
}

// appendLocked adds a sample, checking it first, and accounts the chunks
// and bytes it adds to h. The caller holds s.mu.
func (s *memSeries) appendLocked(t int64, v float64, h *Head) (appendOutcome, error) {
	return s.appendWindowLocked(t, v, h, h.opts.OutOfOrderWindow.Milliseconds())
}

// replayLocked is appendLocked for a sample WAL replay brings back: it was
// acknowledged, so no out-of-order window refuses it. A series record
// that a checkpoint wrote before it stopped (or crashed) may claim a
// newest sample, an out-of-order chunk's, past in-order samples that only
// the WAL still holds (the snapshot that held them was never committed):
// refused as too old, they would be lost. A sample the store holds
// already comes back as an out-of-order duplicate of it, which reads and
// compaction drop.
func (s *memSeries) replayLocked(t int64, v float64, h *Head) (appendOutcome, error) {
	return s.appendWindowLocked(t, v, h, math.MaxInt64)
}

// appendWindowLocked is appendLocked with an out-of-order window of
// oooWindow milliseconds.
func (s *memSeries) appendWindowLocked(t int64, v float64, h *Head, oooWindow int64) (appendOutcome, error) {
	o := &h.opts
	if !s.active {
		h.activateLocked(s) // accepted by Append; a checkpoint deactivated it since
	}
	outcome, err := s.checkLocked(t, v, oooWindow)
	if err != nil {
		return outcome, err
	}
	before := s.chunkBytesLocked()
	switch outcome {
	case appendedInOrder:
		if s.appendInOrderLocked(t, v, o.ChunkSamples, o.ChunkRange.Milliseconds()) {
			h.numChunks.Add(1)
		}
	case appendedOutOfOrder:
		if s.appendOutOfOrderLocked(t, v, o.OutOfOrderCapacity) {
			h.numChunks.Add(1)
		}
	default:
		return outcome, nil
	}
	s.minT = min(s.minT, t)
	if d := s.chunkBytesLocked() - before; d != 0 {
		h.chunkBytes.Add(d)
	}
	return outcome, nil
}

// chunkBytesLocked is the memory the series' samples hold, counted by
// capacity: what the Go heap actually keeps.
func (s *memSeries) chunkBytesLocked() int64 {
	var n int64
	if o := s.outOfOrder(); o != nil {
		n += int64(cap(o.buf))*16 + 48
	}
	if s.head.open() {
		n += int64(s.head.cap) // its writer's state is inline in memSeries
	}
	if s.aside != nil {
		n += chunksAsideSize
	}
	for _, c := range s.closedChunks() {
		n += int64(cap(c.data)) + memChunkSize
	}
	for _, c := range s.outOfOrder().chunks() {
		n += int64(cap(c.data)) + memChunkSize
	}
	return n
}

// memChunkSize is the size of a closed chunk's entry in chunksAside.closed
// and the slice header of its bytes. An open chunk has no such overhead:
// its bytes hang off memSeries directly.
const memChunkSize = 40

// chunksAsideSize is what a series' chunksAside costs besides its closed
// chunks' entries: the slice header and the out-of-order pointer (the
// first entry is inline, counted as memChunkSize).
const chunksAsideSize = 32

// chunkRangeEnd returns the first multiple of r after t.
func chunkRangeEnd(t, r int64) int64 {
	q := t / r
	if t < 0 && t%r != 0 {
		q--
	}
	return (q + 1) * r
}

// Where chunks are cut. A chunk never spans more than one chunk range, and
// each series' ranges are shifted by a phase of its own (chunkPhase): were
// they aligned, every series of a fleet would close its chunk in the same
// scrape at every range boundary, and ten million closed chunks at once
// are a peak of memory the steady state never needs (the 10M scenario
// peaked at 7.4 GB at such a cut). Within its range a series' chunks are
// of even length, about ChunkSamples samples each, as in Prometheus, and
// close on the boundaries of an even division of the range (cutEvenly),
// so that series created together close even their first chunks as
// spread as all later ones.
//
// The store keeps its time buckets aligned (store.bucketOf): the
// checkpoint splits a chunk at the bucket boundary it spans, and
// compaction waits for the oldest open chunk (db_compact.go).

// chunkPhase returns the offset of ref's chunk ranges from the multiples
// of r: a Fibonacci hash of the ref, so that consecutive refs spread over
// [0, r).
func chunkPhase(ref SeriesRef, r int64) int64 {
	hi, _ := bits.Mul64(uint64(ref)*0x9e3779b97f4a7c15, uint64(r))
	return int64(hi)
}

// seriesRangeEnd returns the end of ref's chunk range that holds t. Near
// the ends of int64 it saturates: a range there ends at maxInt64.
func seriesRangeEnd(ref SeriesRef, t, r int64) int64 {
	phase := chunkPhase(ref, r)
	if t-phase > t || t > maxInt64-2*r {
		return maxInt64
	}
	return chunkRangeEnd(t-phase, r) + phase
}

// headFullLocked reports whether the open chunk must close before the
// in-order sample at t. The caller holds s.mu and s.head is open.
func (s *memSeries) headFullLocked(t int64, chunkSamples int, chunkRange int64) bool {
	start := s.headMinTLocked()
	end := seriesRangeEnd(s.ref, start, chunkRange)
	n := xorNumSamples(s.head.bytes())
	switch {
	case t >= end:
		return true
	case uint64(t)-uint64(s.maxT) > math.MaxUint32:
		// The delta would not fit headXOR: ranges shorter than 49 days
		// never get here, but the end saturates near the ends of int64.
		return true
	case n >= maxHeadSamples(chunkSamples):
		return true
	case n < 2 || n < chunkSamples/2:
		// A chunk closes at least half of chunkSamples past its start
		// (cutEvenly): at an even interval no cut comes sooner (after a
		// gap one comes a few samples late), and the arithmetic is
		// skipped for the first half of every chunk.
		return false
	}
	return cutEvenly(start, s.maxT, n, t, end, chunkRange, chunkSamples)
}

// maxHeadSamples bounds an open chunk whatever its samples' spacing: the
// even division aims at chunkSamples at the interval of a chunk's first
// samples, and samples that come faster later must not grow it without
// end.
func maxHeadSamples(chunkSamples int) int { return min(2*chunkSamples, maxXORSamples) }

// cutEvenly reports whether the chunk that started at start, holding n
// samples up to last, closes before the sample at t, its series' range
// of length r ending at end. Counted in slots of the interval its samples
// came at, the whole range is divided into as few equal shares as keep
// each within chunkSamples (half a slot more is let pass, so that jitter
// in the interval does not add a chunk), and chunks close on the
// boundaries of that division: the first at least half a chunk past the
// chunk's start, t starting the next chunk once its slot reaches it,
// rounded. A chunk that starts with its range thus ends on the first
// boundary; one that starts inside it, the first chunk of a new series,
// ends on the next boundary but one if the next is less than half a chunk
// away. Series created together therefore close their first chunks spread
// as evenly as the later ones (over the first 45 minutes at 15 s), not
// piled up before the 30th as dividing only the rest of the range did. A
// chunk never starts in the range's last half slot: a sample that jitter
// puts just before the end joins the chunk instead of making one of its
// own.
func cutEvenly(start, last int64, n int, t, end, r int64, chunkSamples int) bool {
	slot := float64(last-start) / float64(n-1)
	slots := float64(r) / slot
	share := slots / math.Ceil(slots/(float64(chunkSamples)+0.5))
	toEnd := float64(end-start) / slot
	// The chunk's start in whole slots from its range's: the range's
	// first sample comes up to a slot after the range starts, and the
	// division is counted from that sample. An end saturated near the
	// ends of int64 (seriesRangeEnd) counts as a range that starts with
	// the chunk.
	from := math.Floor(max(slots-toEnd, 0))
	cut := math.Ceil((from+float64(chunkSamples)/2)/share)*share - from
	at := float64(t-start) / slot
	return at >= cut-0.5 && at < toEnd-0.5
}

// appendInOrderLocked reports whether it started a new chunk.
func (s *memSeries) appendInOrderLocked(t int64, v float64, chunkSamples int, chunkRange int64) (newChunk bool) {
	if s.head.open() && s.headFullLocked(t, chunkSamples, chunkRange) {
		s.appendClosedLocked(s.closeHeadLocked())
	}
	if !s.head.open() {
		s.head.set(newXORChunk(0))
		s.headXOR = packHeadXOR(newXORState())
		newChunk = true
	}
	// maxT and lastV are the open chunk's last sample: every in-order
	// sample goes to it, and a chunk reopened from a snapshot is kept
	// open only when they agree (reopenHeadLocked).
	x := s.headXOR.state()
	s.head.set(x.append(s.head.bytes(), s.maxT, s.lastV, t, v))
	s.headXOR = packHeadXOR(x)
	s.maxT, s.lastV = t, math.Float64bits(v)
	return newChunk
}

// closeHeadLocked turns the open chunk into an immutable memChunk. The
// bytes move: an open chunk grows a size class at a time
// (appendChunkByte), so its array is already the size class a copy of its
// length would get, and a copy only made one more allocation and left the
// old array as garbage at every cut. (Copying was kept while chunks grew
// by doubling, when a moved chunk held up to half its array idle until
// the checkpoint.) No append reaches the array again: the next sample
// opens a new chunk. The capacity stays, as chunkBytesLocked counts it.
func (s *memSeries) closeHeadLocked() memChunk {
	c := memChunk{data: s.head.bytes(), minT: s.headMinTLocked(), maxT: s.maxT}
	s.head, s.headXOR = openChunk{}, headXOR{}
	return c
}

// appendOutOfOrderLocked reports whether it encoded a new chunk.
func (s *memSeries) appendOutOfOrderLocked(t int64, v float64, capacity int) bool {
	a := s.asideLocked()
	if a.ooo == nil {
		a.ooo = &outOfOrder{}
	}
	o := a.ooo
	i, _ := slices.BinarySearchFunc(o.buf, t, func(x sample, t int64) int { return cmp.Compare(x.t, t) })
	o.buf = slices.Insert(o.buf, i, sample{t: t, v: v})
	if len(o.buf) < capacity {
		return false
	}
	s.spillOutOfOrderLocked()
	return true
}

// spillOutOfOrderLocked encodes the buffered out-of-order samples into a
// chunk.
func (s *memSeries) spillOutOfOrderLocked() {
	o := s.outOfOrder()
	if o == nil || len(o.buf) == 0 {
		return
	}
	o.done = append(o.done, encodeSamples(o.buf))
	o.buf = o.buf[:0]
}

// encodeSamples returns a chunk of samples, which must be sorted by time.
func encodeSamples(samples []sample) memChunk {
	return memChunk{data: slices.Clone(appendXORSamples(nil, samples)), minT: samples[0].t, maxT: samples[len(samples)-1].t}
}

// appendXORSamples appends samples, sorted by time, to dst as an XOR
// chunk. dst is grown once, for the most bytes they can take, rather
// than a size class at a time as the head's chunks grow.
func appendXORSamples(dst []byte, samples []sample) []byte {
	n := len(dst)
	dst = slices.Grow(dst, xorChunkHeader+maxXORSampleBytes*len(samples))
	c, x := append(dst, 0, 0)[n:], newXORState()
	var prevT int64
	var prevV uint64
	for _, smp := range samples {
		c = x.append(c, prevT, prevV, smp.t, smp.v)
		prevT, prevV = smp.t, math.Float64bits(smp.v)
	}
	return append(dst[:n], c...) // c is dst's tail, by the Grow above: a copy onto itself
}

// valueAtLocked finds a stored sample at timestamp t. It decodes chunks,
// so only the rare out-of-order path calls it. The caller holds s.mu.
func (s *memSeries) valueAtLocked(t int64) (float64, bool) {
	buf := s.outOfOrder().samples()
	if i, ok := slices.BinarySearchFunc(buf, t, func(x sample, t int64) int { return cmp.Compare(x.t, t) }); ok {
		return buf[i].v, true
	}
	for _, c := range s.outOfOrder().chunks() {
		if v, ok := chunkValueAt(c, t); ok {
			return v, true
		}
	}
	for i := len(s.closedChunks()) - 1; i >= 0; i-- {
		if v, ok := chunkValueAt(s.closedChunks()[i], t); ok {
			return v, true
		}
	}
	if s.head.open() {
		return chunkValueAt(memChunk{data: s.head.bytes(), minT: s.headMinTLocked(), maxT: s.maxT}, t)
	}
	return 0, false
}

func chunkValueAt(c memChunk, t int64) (float64, bool) {
	if t < c.minT || t > c.maxT {
		return 0, false
	}
	if isIntChunk(c.data) {
		var it intIterator
		for it.reset(c.data); it.next(); {
			if ts, v := it.at(); ts >= t {
				return v, ts == t
			}
		}
		return 0, false
	}
	it := chunkenc.NewXORChunk()
	it.Reset(c.data)
	iter := it.Iterator(nil)
	if iter.Seek(t) == chunkenc.ValNone {
		return 0, false
	}
	ts, v := iter.At()
	return v, ts == t
}
