package tsdb

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// floatOnly completes chunkenc.Iterator for iterators of float samples.
type floatOnly struct{}

func (floatOnly) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	panic("BUG: AtHistogram on a float series")
}

func (floatOnly) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	panic("BUG: AtFloatHistogram on a float series")
}

func (floatOnly) AtST() int64 { return 0 }

// chunksIterator walks non-overlapping in-order chunks, yielding samples
// in [mint, maxt].
type chunksIterator struct {
	floatOnly
	chunks     []memChunk
	mint, maxt int64
	xc         chunkenc.XORChunk
	cur        chunkenc.Iterator // reused iterator over chunks[0] while started
	started    bool              // cur is positioned inside chunks[0]
	valid      bool              // t, v hold the current sample
	t          int64
	v          float64
	err        error
}

func (it *chunksIterator) reset(chunks []memChunk, mint, maxt int64) {
	it.chunks, it.mint, it.maxt, it.err = chunks, mint, maxt, nil
	if it.cur != nil {
		it.cur = it.xc.Iterator(it.cur) // keep the allocation for reuse
	}
	it.started, it.valid = false, false
}

func (it *chunksIterator) Next() chunkenc.ValueType {
	for {
		if !it.started {
			if len(it.chunks) == 0 {
				it.valid = false
				return chunkenc.ValNone
			}
			it.xc.Reset(it.chunks[0].data)
			it.cur = it.xc.Iterator(it.cur)
			it.started = true
		}
		if it.cur.Next() == chunkenc.ValNone {
			if err := it.cur.Err(); err != nil {
				it.err, it.valid = err, false
				return chunkenc.ValNone
			}
			it.chunks = it.chunks[1:]
			it.started = false
			continue
		}
		t, v := it.cur.At()
		if t < it.mint {
			continue
		}
		if t > it.maxt {
			it.chunks = nil
			it.started, it.valid = false, false
			return chunkenc.ValNone
		}
		it.t, it.v, it.valid = t, v, true
		return chunkenc.ValFloat
	}
}

func (it *chunksIterator) Seek(t int64) chunkenc.ValueType {
	if it.valid && it.t >= t {
		return chunkenc.ValFloat
	}
	if t > it.mint {
		it.mint = t
	}
	// Skip whole chunks that end before t without decoding them.
	for len(it.chunks) > 1 && it.chunks[0].maxT < t {
		it.chunks = it.chunks[1:]
		it.started = false
	}
	return it.Next()
}

func (it *chunksIterator) At() (int64, float64) { return it.t, it.v }
func (it *chunksIterator) AtT() int64           { return it.t }
func (it *chunksIterator) Err() error           { return it.err }

// samplesIterator walks a sorted slice of samples.
type samplesIterator struct {
	floatOnly
	samples []sample
	i       int
}

func (it *samplesIterator) reset(samples []sample) { it.samples, it.i = samples, -1 }

func (it *samplesIterator) Next() chunkenc.ValueType {
	if it.i+1 >= len(it.samples) {
		it.i = len(it.samples)
		return chunkenc.ValNone
	}
	it.i++
	return chunkenc.ValFloat
}

func (it *samplesIterator) Seek(t int64) chunkenc.ValueType {
	if it.i < 0 {
		it.i = 0
	}
	for ; it.i < len(it.samples); it.i++ {
		if it.samples[it.i].t >= t {
			return chunkenc.ValFloat
		}
	}
	return chunkenc.ValNone
}

func (it *samplesIterator) At() (int64, float64) { return it.samples[it.i].t, it.samples[it.i].v }
func (it *samplesIterator) AtT() int64           { return it.samples[it.i].t }
func (it *samplesIterator) Err() error           { return nil }

// errIterator is an exhausted iterator that reports err.
type errIterator struct{ err error }

func (e errIterator) Next() chunkenc.ValueType                                       { return chunkenc.ValNone }
func (e errIterator) Seek(int64) chunkenc.ValueType                                  { return chunkenc.ValNone }
func (e errIterator) At() (int64, float64)                                           { return 0, 0 }
func (e errIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) { return 0, nil }
func (e errIterator) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return 0, nil
}
func (e errIterator) AtT() int64  { return 0 }
func (e errIterator) AtST() int64 { return 0 }
func (e errIterator) Err() error  { return e.err }
