package tsdb

// batchSeries is the set of series an appender's batch has taken, in the
// order it first took them, each with its newest accepted sample. A Go
// map keyed by series did this before: at ten million series its lookup,
// one per sample, was 3% of the node's CPU, mostly cache misses in the
// map's groups, and clearing a map costs its capacity, not its length.
// Here the index is open addressing over the series' refs and holds
// positions in series: 4 bytes a slot, sized for the batch.
type batchSeries struct {
	series []*memSeries
	newest []sample // newest[i] is the newest accepted sample of series[i]
	// index holds 1 + a position in series, 0 in a free slot. Its length
	// is 0 or a power of two at least twice len(series), so that probe
	// runs stay short.
	index []uint32
}

// minBatchIndex is the smallest index: a batch of a few series does not
// grow it step by step.
const minBatchIndex = 256

// find returns the position of s in b.series, or -1.
func (b *batchSeries) find(s *memSeries) int {
	if len(b.index) == 0 {
		return -1
	}
	mask := len(b.index) - 1
	for i := batchSlot(s.ref, mask); ; i = (i + 1) & mask {
		k := b.index[i]
		if k == 0 {
			return -1
		}
		if b.series[k-1] == s {
			return int(k - 1)
		}
	}
}

// add appends s, which find does not know, with its newest sample n.
func (b *batchSeries) add(s *memSeries, n sample) {
	if 2*(len(b.series)+1) > len(b.index) {
		b.grow()
	}
	b.series = append(b.series, s)
	b.newest = append(b.newest, n)
	b.place(len(b.series) - 1)
}

// place enters b.series[pos] in the index.
func (b *batchSeries) place(pos int) {
	mask := len(b.index) - 1
	i := batchSlot(b.series[pos].ref, mask)
	for b.index[i] != 0 {
		i = (i + 1) & mask
	}
	b.index[i] = uint32(pos + 1)
}

// grow doubles the index and enters the series again.
func (b *batchSeries) grow() {
	b.index = make([]uint32, max(minBatchIndex, 2*len(b.index)))
	for pos := range b.series {
		b.place(pos)
	}
}

// batchSlot is the home slot of ref in an index of mask+1 slots: a
// Fibonacci hash, as refs are consecutive integers.
func batchSlot(ref SeriesRef, mask int) int {
	return int((uint64(ref)*0x9e3779b97f4a7c15)>>32) & mask
}

// reset empties b for the next batch, dropping its series so that a
// pooled appender keeps none alive. It keeps the buffers of a batch of
// up to keep series, and lets larger ones go.
func (b *batchSeries) reset(keep int) {
	if cap(b.series) > keep {
		*b = batchSeries{}
		return
	}
	clear(b.series)
	b.series, b.newest = b.series[:0], b.newest[:0]
	clear(b.index)
}
