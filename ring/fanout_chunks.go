package ring

import (
	"bytes"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/etcdgate/etcdgate/tsdb"
)

// add merges one node's copy of the series into m. Copies whose chunks
// are byte for byte the same (replicas that received the same samples:
// the common case) are taken once and stay undecoded, for the query
// engine to decode once; copies that differ are decoded to samples in
// [mint, maxt] and merged by timestamp.
func (m *mergedSeries) add(s *SelectedSeries, mint, maxt int64) error {
	m.copies++
	if m.copies == 1 {
		m.samples, m.chunks = s.Samples, s.Chunks
		return nil
	}
	if m.chunks != nil && s.Chunks != nil && sameChunks(m.chunks, s.Chunks) {
		return nil
	}
	a, err := m.decoded(mint, maxt)
	if err != nil {
		return err
	}
	b := s.Samples
	if s.Chunks != nil {
		if b, err = chunkSamples(nil, s.Chunks, mint, maxt); err != nil {
			return err
		}
	}
	m.samples, m.chunks = mergeSamples(a, b), nil
	return nil
}

// decoded returns m's samples in [mint, maxt], decoding its chunks.
func (m *mergedSeries) decoded(mint, maxt int64) ([]Sample, error) {
	if m.chunks == nil {
		return m.samples, nil
	}
	return chunkSamples(nil, m.chunks, mint, maxt)
}

func sameChunks(a, b []tsdb.Chunk) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].MinT != b[i].MinT || a[i].MaxT != b[i].MaxT || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// chunkSamples appends to dst the samples of chunks in [mint, maxt].
func chunkSamples(dst []Sample, chunks []tsdb.Chunk, mint, maxt int64) ([]Sample, error) {
	it := &chunkIterator{}
	it.reset(chunks, mint, maxt)
	for it.Next() {
		t, v := it.At()
		dst = append(dst, Sample{T: t, V: v})
	}
	return dst, it.Err()
}

// chunkIterator walks the samples of in-order XOR chunks that lie in
// [mint, maxt]. Chunks come from other nodes: a chunk that does not
// decode, or timestamps that do not increase, end the walk with an
// error rather than a wrong answer.
type chunkIterator struct {
	chunks     []tsdb.Chunk
	mint, maxt int64
	xc         chunkenc.XORChunk
	cur        chunkenc.Iterator
	started    bool // cur walks chunks[0]
	valid      bool // t, v hold the current sample
	t          int64
	v          float64
	last       int64 // the previous sample's time, across chunks
	err        error
}

func (it *chunkIterator) reset(chunks []tsdb.Chunk, mint, maxt int64) {
	it.chunks, it.mint, it.maxt = chunks, mint, maxt
	it.started, it.valid, it.last, it.err = false, false, math.MinInt64, nil
}

func (it *chunkIterator) Next() bool {
	it.valid = it.next()
	return it.valid
}

func (it *chunkIterator) next() bool {
	for it.err == nil {
		if !it.started {
			// Chunks wholly before the range are skipped undecoded.
			for len(it.chunks) > 0 && it.chunks[0].MaxT < it.mint {
				it.chunks = it.chunks[1:]
			}
			if len(it.chunks) == 0 || it.chunks[0].MinT > it.maxt {
				it.chunks = nil
				return false
			}
			it.xc.Reset(it.chunks[0].Data)
			it.cur = it.xc.Iterator(it.cur)
			it.started = true
		}
		if it.cur.Next() == chunkenc.ValNone {
			if err := it.cur.Err(); err != nil {
				it.err = fmt.Errorf("%w: a chunk does not decode: %w", ErrBadSelectStream, err)
				return false
			}
			it.chunks, it.started = it.chunks[1:], false
			continue
		}
		t, v := it.cur.At()
		if t <= it.last {
			it.err = fmt.Errorf("%w: chunk timestamps do not increase", ErrBadSelectStream)
			return false
		}
		it.last = t
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
	return false
}

// SeekTo advances to the first sample at or after t, unless the current
// one already is. Chunks that end before t are skipped undecoded.
func (it *chunkIterator) SeekTo(t int64) bool {
	if it.valid && it.t >= t {
		return true
	}
	if it.err != nil {
		return false
	}
	for len(it.chunks) > 0 && it.chunks[0].MaxT < t {
		it.chunks, it.started = it.chunks[1:], false
	}
	for it.Next() {
		if it.t >= t {
			return true
		}
	}
	return false
}

func (it *chunkIterator) At() (int64, float64) { return it.t, it.v }
func (it *chunkIterator) Err() error           { return it.err }
