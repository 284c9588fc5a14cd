package tsdb

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// memSeries is one series known to the store. An active series holds its
// recent samples in memory and counts toward the head's limits; an
// inactive one (no samples for the staleness period, or loaded from the
// store at start) keeps only its labels and time range, so that queries
// still find its persisted chunks.
//
// ref and syms are immutable after creation; logged is atomic.
// Everything else is guarded by mu.
type memSeries struct {
	ref  SeriesRef
	syms seriesSyms // label names and values as symbol refs, in label order

	mu sync.Mutex
	// logged: the series' record is in the WAL or the store, so a WAL
	// record may refer to it by ref alone. It shares a word with the
	// flags below: the struct is sized to fit 96 bytes, a size class
	// that ten million series notice (the open chunk's writer is inline,
	// in 8 bytes, which saved its two objects of 32 and 48 bytes; the
	// closed chunks and out-of-order samples share one pointer, the open
	// chunk takes 16 bytes, not a slice's 24, and the symbol refs 8, not
	// a string's 16: 128 bytes before).
	logged         atomic.Bool
	active         bool         // holds sample state and counts toward head limits
	deleted        bool         // removed from the index; appenders must look up again
	indexPersisted bool         // the series index file holds the series record
	pins           uint8        // uncommitted appenders holding it; retention keeps it (pinLocked)
	persistedMaxT  int64        // newest timestamp in the store's chunks; math.MinInt64 if none
	aside          *chunksAside // nil while the series has no closed chunk and no out-of-order sample
	head           openChunk    // open in-order chunk (chunkenc's XOR bytes), none before the first sample
	headXOR        headXOR      // writer of head; its last sample is maxT, lastV
	maxT           int64        // newest in-order timestamp; math.MinInt64 if none
	lastV          uint64       // bits of the value at maxT
	minT           int64        // oldest timestamp of any sample; math.MaxInt64 if none
}

// headMinTLocked is the first timestamp of the open chunk, read from the
// chunk itself (an XOR chunk starts with it as a varint after its 2-byte
// header) rather than kept in a field. The caller holds s.mu and s.head
// is open.
func (s *memSeries) headMinTLocked() int64 {
	t, n := binary.Varint(s.head.bytes()[xorChunkHeader:])
	if n <= 0 {
		panic("BUG: open chunk without a first timestamp")
	}
	return t
}

// chunksAside is what a series holds besides its open chunk: its closed
// chunks, full in-order chunks, oldest first, each immutable, until a
// checkpoint writes them to the store and releases them, and its
// out-of-order samples. Most series have neither most of the time, so
// they share one pointer: inline, the closed chunks' slice header would
// cost every series 24 bytes, and two pointers took memSeries past the
// 112-byte size class.
type chunksAside struct {
	closed []memChunk
	// first is closed's array while it holds one chunk, as it does
	// between a cut and the next checkpoint: one object of 80 bytes costs
	// less than a holder and an array (32 + 48).
	first [1]memChunk
	ooo   *outOfOrder // nil while the series has no out-of-order samples
}

// asideLocked returns the series' chunksAside, allocating it. The caller
// holds s.mu.
func (s *memSeries) asideLocked() *chunksAside {
	if s.aside == nil {
		s.aside = &chunksAside{}
		s.aside.closed = s.aside.first[:0:1]
	}
	return s.aside
}

// dropAsideIfEmptyLocked frees the chunksAside that holds nothing. The
// caller holds s.mu.
func (s *memSeries) dropAsideIfEmptyLocked() {
	if a := s.aside; a != nil && len(a.closed) == 0 && a.ooo == nil {
		s.aside = nil
	}
}

// closedChunks returns the closed chunks; the caller holds s.mu.
func (s *memSeries) closedChunks() []memChunk {
	if s.aside == nil {
		return nil
	}
	return s.aside.closed
}

// outOfOrder returns the out-of-order samples, nil if none; the caller
// holds s.mu.
func (s *memSeries) outOfOrder() *outOfOrder {
	if s.aside == nil {
		return nil
	}
	return s.aside.ooo
}

// appendClosedLocked appends a closed chunk. The caller holds s.mu.
func (s *memSeries) appendClosedLocked(c memChunk) {
	a := s.asideLocked()
	a.closed = append(a.closed, c)
}

// dropClosedLocked drops the n oldest closed chunks, and the holder of
// nothing. The caller holds s.mu.
func (s *memSeries) dropClosedLocked(n int) {
	if s.aside == nil {
		return
	}
	s.aside.closed = slices.Delete(s.aside.closed, 0, n)
	s.dropAsideIfEmptyLocked()
}

// outOfOrder holds a series' out-of-order samples. It sits behind a
// pointer because few series ever have any: inline, its two slice
// headers would cost every series 48 bytes.
type outOfOrder struct {
	buf  []sample   // not yet in a chunk, sorted by t
	done []memChunk // encoded; may overlap anything
}

// empty reports whether o holds nothing; o may be nil.
func (o *outOfOrder) empty() bool { return o == nil || len(o.buf) == 0 && len(o.done) == 0 }

// chunks returns the encoded chunks; o may be nil.
func (o *outOfOrder) chunks() []memChunk {
	if o == nil {
		return nil
	}
	return o.done
}

// samples returns the buffered samples; o may be nil.
func (o *outOfOrder) samples() []sample {
	if o == nil {
		return nil
	}
	return o.buf
}

// memChunk is a closed XOR chunk and the time range it covers.
type memChunk struct {
	data       []byte
	minT, maxT int64
}

type sample struct {
	t int64
	v float64
}

func newMemSeries(ref SeriesRef, syms seriesSyms) *memSeries {
	return &memSeries{ref: ref, syms: syms, maxT: math.MinInt64, minT: math.MaxInt64, persistedMaxT: math.MinInt64}
}

// overlaps reports whether the series has samples in [mint, maxt]. The
// caller holds s.mu.
func (s *memSeries) overlapsLocked(mint, maxt int64) bool {
	if s.minT == math.MaxInt64 {
		return false
	}
	newest := s.maxT
	if buf := s.outOfOrder().samples(); len(buf) > 0 && buf[len(buf)-1].t > newest {
		newest = buf[len(buf)-1].t
	}
	return s.minT <= maxt && newest >= mint
}
