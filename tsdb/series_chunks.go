package tsdb

import (
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// Chunk is a run of a series' samples as the store keeps them: the bytes
// of a chunkenc.XORChunk and the times of its first and last sample.
// Chunks that compaction wrote integer-encoded (intchunk.go) are handed
// out re-encoded as XOR, so that readers outside the package know one
// encoding only.
type Chunk struct {
	MinT, MaxT int64
	Data       []byte
}

// ChunkSeries is a Series that can hand out its samples as the chunks
// the store holds, so that a reader that only passes them on (the ring's
// internal select) need not decode them.
type ChunkSeries interface {
	Series
	// Chunks appends to dst the series' chunks that overlap the
	// querier's range, in time order and not overlapping each other;
	// they may hold samples outside the range, which the reader drops.
	// The chunk still being appended to is copied into buf (appended),
	// and integer chunks re-encoded as XOR into it; the others' Data is
	// valid until the querier is closed, buf's until the caller reuses
	// buf. ok is false when the samples are not
	// such a list (out-of-order samples, chunks that overlap while a
	// checkpoint is under way, a series evicted to the store): then the
	// reader uses Iterator.
	Chunks(dst []Chunk, buf []byte) (chunks []Chunk, bufOut []byte, ok bool, err error)
}

var _ ChunkSeries = (*headSeries)(nil)

func (hs *headSeries) Chunks(dst []Chunk, buf []byte) ([]Chunk, []byte, bool, error) {
	s := hs.s
	if s == nil {
		return dst, buf, false, nil
	}
	start := len(dst)
	s.mu.Lock()
	if !s.outOfOrder().empty() {
		s.mu.Unlock()
		return dst, buf, false, nil
	}
	for _, c := range s.closedChunks() {
		if c.maxT >= hs.mint && c.minT <= hs.maxt {
			dst = append(dst, Chunk{MinT: c.minT, MaxT: c.maxT, Data: c.data})
		}
	}
	if s.head.open() && s.maxT >= hs.mint && s.headMinTLocked() <= hs.maxt {
		n := len(buf)
		buf = append(buf, s.head.bytes()...) // a copy: later appends rewrite the last byte
		dst = append(dst, Chunk{MinT: s.headMinTLocked(), MaxT: s.maxT, Data: buf[n:len(buf):len(buf)]})
	}
	persistedMaxT, minT := s.persistedMaxT, s.minT
	var chain journalPos
	if hs.store != nil {
		chain = hs.q.head.series.refs.chain(s.ref)
	}
	s.mu.Unlock()
	if hs.store != nil && hs.mint <= persistedMaxT {
		persisted, _, err := hs.q.storeFor().read(nil, nil, s.ref, chain, max(hs.mint, minT), min(hs.maxt, persistedMaxT), hs.bulk)
		if err != nil {
			return dst[:start], buf, false, err
		}
		mem := slices.Clone(dst[start:])
		dst = dst[:start]
		for _, c := range persisted {
			data := c.data
			if isIntChunk(data) {
				n := len(buf)
				if buf, err = appendIntAsXOR(buf, data); err != nil {
					return dst[:start], buf[:n], false, err
				}
				data = buf[n:len(buf):len(buf)]
			}
			dst = append(dst, Chunk{MinT: c.minT, MaxT: c.maxT, Data: data})
		}
		dst = append(dst, mem...)
	}
	for i := start + 1; i < len(dst); i++ {
		if dst[i].MinT <= dst[i-1].MaxT {
			return dst[:start], buf, false, nil
		}
	}
	return dst, buf, true, nil
}

// LabelAppender is a Series that appends its label pairs to a buffer
// without building a label set: a reader that only copies labels out
// (the ring's internal select) allocates nothing for them. enc appends
// one pair; pairs come in label order; n is their number.
type LabelAppender interface {
	AppendLabels(dst []byte, enc func(dst []byte, name, value string) []byte) (out []byte, n int)
}

var _ LabelAppender = (*headSeries)(nil)

func (hs *headSeries) AppendLabels(dst []byte, enc func(dst []byte, name, value string) []byte) ([]byte, int) {
	if !hs.lset.IsEmpty() || hs.s == nil {
		n := 0
		hs.Labels().Range(func(l labels.Label) {
			dst = enc(dst, l.Name, l.Value)
			n++
		})
		return dst, n
	}
	strs := hs.symbols.load()
	refs := hs.s.syms.refs()
	n := 0
	for i := 0; i < len(refs); n++ {
		var name, value uint32
		name, i = refs.next(i)
		value, i = refs.next(i)
		dst = enc(dst, strs[name], strs[value])
	}
	return dst, n
}
