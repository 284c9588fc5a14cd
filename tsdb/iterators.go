package tsdb

import "github.com/prometheus/prometheus/tsdb/chunkenc"

// chunksIterator walks non-overlapping in-order chunks, yielding samples
// in [mint, maxt]. A chunk is XOR or integer-encoded (intchunk.go); each
// kind has its iterator, reused from chunk to chunk.
type chunksIterator struct {
	chunks     []memChunk
	mint, maxt int64
	xc         chunkenc.XORChunk
	cur        chunkenc.Iterator // reused iterator over chunks[0] while started and not isInt
	ic         intIterator       // over chunks[0] while started and isInt
	isInt      bool              // chunks[0] is an integer chunk
	started    bool              // cur or ic is positioned inside chunks[0]
	valid      bool              // t, v hold the current sample
	t          int64
	v          float64
	err        error
	// chunkBuf and byteBuf are the buffers chunks and their copied data
	// were read into (readBuffers), reused by the next read through it.
	chunkBuf []memChunk
	byteBuf  []byte
}

func (it *chunksIterator) reset(chunks []memChunk, mint, maxt int64) {
	it.chunks, it.mint, it.maxt, it.err = chunks, mint, maxt, nil
	it.started, it.valid = false, false
}

func (it *chunksIterator) Next() bool {
	it.valid = it.next()
	return it.valid
}

func (it *chunksIterator) next() bool {
	for {
		if !it.started {
			if len(it.chunks) == 0 {
				return false
			}
			it.isInt = isIntChunk(it.chunks[0].data)
			if it.isInt {
				it.ic.reset(it.chunks[0].data)
			} else {
				it.xc.Reset(it.chunks[0].data)
				it.cur = it.xc.Iterator(it.cur) // keeps the allocation for reuse
			}
			it.started = true
		}
		var t int64
		var v float64
		if it.isInt {
			if !it.ic.next() {
				if it.ic.err != nil {
					it.err = it.ic.err
					return false
				}
				it.chunks, it.started = it.chunks[1:], false
				continue
			}
			t, v = it.ic.at()
		} else {
			if it.cur.Next() == chunkenc.ValNone {
				if err := it.cur.Err(); err != nil {
					it.err = err
					return false
				}
				it.chunks, it.started = it.chunks[1:], false
				continue
			}
			t, v = it.cur.At()
		}
		if t < it.mint {
			continue
		}
		if t > it.maxt {
			it.chunks, it.started = nil, false
			return false
		}
		it.t, it.v = t, v
		return true
	}
}

func (it *chunksIterator) SeekTo(t int64) bool {
	if it.valid && it.t >= t {
		return true
	}
	it.mint = max(it.mint, t)
	// Skip whole chunks that end before t without decoding them.
	for len(it.chunks) > 1 && it.chunks[0].maxT < t {
		it.chunks, it.started = it.chunks[1:], false
	}
	return it.Next()
}

func (it *chunksIterator) At() (int64, float64) { return it.t, it.v }
func (it *chunksIterator) Err() error           { return it.err }

// samplesIterator walks a sorted slice of samples.
type samplesIterator struct {
	samples []sample
	i       int
}

func (it *samplesIterator) reset(samples []sample) { it.samples, it.i = samples, -1 }

func (it *samplesIterator) Next() bool {
	if it.i+1 >= len(it.samples) {
		it.i = len(it.samples)
		return false
	}
	it.i++
	return true
}

func (it *samplesIterator) SeekTo(t int64) bool {
	it.i = max(it.i, 0)
	for ; it.i < len(it.samples); it.i++ {
		if it.samples[it.i].t >= t {
			return true
		}
	}
	return false
}

func (it *samplesIterator) At() (int64, float64) { return it.samples[it.i].t, it.samples[it.i].v }
func (it *samplesIterator) Err() error           { return nil }

// errIterator is an exhausted iterator that reports err.
type errIterator struct{ err error }

func (e errIterator) Next() bool           { return false }
func (e errIterator) SeekTo(int64) bool    { return false }
func (e errIterator) At() (int64, float64) { return 0, 0 }
func (e errIterator) Err() error           { return e.err }
