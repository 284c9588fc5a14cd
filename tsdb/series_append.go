package tsdb

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"

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
	case t < newestT-oooWindow:
		return 0, true, ErrTooOldSample
	}
	return appendedOutOfOrder, false, nil
}

// appendLocked adds a sample, checking it first, and counts chunks it
// creates in chunks. The caller holds s.mu.
func (s *memSeries) appendLocked(t int64, v float64, o *HeadOptions, chunks *atomic.Int64) (appendOutcome, error) {
	outcome, err := s.checkLocked(t, v, o.OutOfOrderWindow.Milliseconds())
	if err != nil {
		return outcome, err
	}
	switch outcome {
	case appendedInOrder:
		if s.appendInOrderLocked(t, v, o.ChunkSamples) {
			chunks.Add(1)
		}
	case appendedOutOfOrder:
		if s.appendOutOfOrderLocked(t, v, o.OutOfOrderCapacity) {
			chunks.Add(1)
		}
	}
	s.minT = min(s.minT, t)
	return outcome, nil
}

// appendInOrderLocked reports whether it started a new chunk.
func (s *memSeries) appendInOrderLocked(t int64, v float64, chunkSamples int) (newChunk bool) {
	if s.head != nil && s.head.NumSamples() >= chunkSamples {
		s.closed = append(s.closed, s.closeHeadLocked())
	}
	if s.head == nil {
		s.head = chunkenc.NewXORChunk()
		app, err := s.head.Appender()
		if err != nil {
			panic("BUG: appender of an empty XOR chunk: " + err.Error())
		}
		s.app = app
		s.headMinT = t
		newChunk = true
	}
	s.app.Append(0, t, v)
	s.maxT, s.lastV = t, math.Float64bits(v)
	return newChunk
}

// closeHeadLocked turns the open chunk into an immutable memChunk holding
// a right-sized copy of its bytes.
func (s *memSeries) closeHeadLocked() memChunk {
	c := memChunk{data: slices.Clone(s.head.Bytes()), minT: s.headMinT, maxT: s.maxT}
	s.head, s.app = nil, nil
	return c
}

// appendOutOfOrderLocked reports whether it encoded a new chunk.
func (s *memSeries) appendOutOfOrderLocked(t int64, v float64, capacity int) bool {
	i, _ := slices.BinarySearchFunc(s.ooo, t, func(x sample, t int64) int { return cmp.Compare(x.t, t) })
	s.ooo = slices.Insert(s.ooo, i, sample{t: t, v: v})
	if len(s.ooo) < capacity {
		return false
	}
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		panic("BUG: appender of an empty XOR chunk: " + err.Error())
	}
	for _, smp := range s.ooo {
		app.Append(0, smp.t, smp.v)
	}
	s.oooDone = append(s.oooDone, memChunk{data: slices.Clone(c.Bytes()), minT: s.ooo[0].t, maxT: s.ooo[len(s.ooo)-1].t})
	s.ooo = s.ooo[:0]
	return true
}

// valueAtLocked finds a stored sample at timestamp t. It decodes chunks,
// so only the rare out-of-order path calls it. The caller holds s.mu.
func (s *memSeries) valueAtLocked(t int64) (float64, bool) {
	if i, ok := slices.BinarySearchFunc(s.ooo, t, func(x sample, t int64) int { return cmp.Compare(x.t, t) }); ok {
		return s.ooo[i].v, true
	}
	for _, c := range s.oooDone {
		if v, ok := chunkValueAt(c, t); ok {
			return v, true
		}
	}
	for i := len(s.closed) - 1; i >= 0; i-- {
		if v, ok := chunkValueAt(s.closed[i], t); ok {
			return v, true
		}
	}
	if s.head != nil {
		return chunkValueAt(memChunk{data: s.head.Bytes(), minT: s.headMinT, maxT: s.maxT}, t)
	}
	return 0, false
}

func chunkValueAt(c memChunk, t int64) (float64, bool) {
	if t < c.minT || t > c.maxT {
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
