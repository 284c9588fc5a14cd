package tsdb

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// xorState is what an XOR chunk writer must remember besides the chunk's
// bytes and its previous sample, kept inline in memSeries so that an open
// chunk costs no objects of its own: chunkenc's XORChunk and its appender
// cost a series two pointer-holding objects (~80 bytes) for the collector
// to scan. The bytes written are those of chunkenc.XORChunk and its
// Appender, bit for bit (xor_append_test.go checks it): a 2-byte
// big-endian sample count, the first timestamp as a varint and value as 64
// bits, the second timestamp's delta as a uvarint, then per sample the
// delta of the timestamp delta in a prefix-coded bucket and the XOR of the
// value with the previous one (Gorilla).
//
// The previous sample's timestamp and value are not kept here: the caller
// passes them in (memSeries.maxT and lastV).
type xorState struct {
	tDelta   uint64 // the previous sample's timestamp minus the one before it
	free     uint8  // bits not yet written at the right of the last byte, 0..7
	leading  uint8  // leading zeros of the current XOR window; 0xff before the first
	trailing uint8  // trailing zeros of the current XOR window
}

// headXOR is xorState in 8 bytes rather than 16, for the open chunks of
// millions of series: the head cuts a chunk before a sample more than
// math.MaxUint32 ms (49 days) after its last (headFullLocked), so the
// delta it keeps fits 32 bits.
type headXOR struct {
	tDelta                  uint32
	free, leading, trailing uint8
}

// state returns the writer h keeps.
func (h headXOR) state() xorState {
	return xorState{tDelta: uint64(h.tDelta), free: h.free, leading: h.leading, trailing: h.trailing}
}

// fitsHeadXOR reports whether x fits a headXOR.
func fitsHeadXOR(x xorState) bool { return x.tDelta <= math.MaxUint32 }

// packHeadXOR returns x in 8 bytes; x must fit (fitsHeadXOR).
func packHeadXOR(x xorState) headXOR {
	if !fitsHeadXOR(x) {
		panic("BUG: an open chunk's timestamp delta past 32 bits")
	}
	return headXOR{tDelta: uint32(x.tDelta), free: x.free, leading: x.leading, trailing: x.trailing}
}

// newXORState is the state of an empty chunk.
func newXORState() xorState { return xorState{leading: 0xff} }

// xorChunkHeader is the size of the sample count that starts a chunk.
const xorChunkHeader = 2

// newXORChunk returns an empty chunk with room for size bytes. chunkenc's
// NewXORChunk reserves 128 bytes, while a chunk of a series scraped every
// 15 s holds ~40 bytes after ten samples: at a million series the
// difference is ~90 MB. The chunk grows by append as samples arrive.
func newXORChunk(size int) []byte {
	return make([]byte, xorChunkHeader, max(size, 32))
}

// xorNumSamples is the number of samples in chunk c.
func xorNumSamples(c []byte) int { return int(binary.BigEndian.Uint16(c)) }

// append adds the sample (t, v) to chunk c, which must have been written
// by x alone (or restored by restoreXOR), and returns the chunk, grown by
// append. prevT and prevV (the value's bits) are the chunk's last sample;
// they are unused while it is empty. Bytes written before the last one do
// not change; the last one may gain bits, so a reader must copy the chunk
// under the lock that guards appends.
func (x *xorState) append(c []byte, prevT int64, prevV uint64, t int64, v float64) []byte {
	num := binary.BigEndian.Uint16(c)
	var tDelta uint64
	switch num {
	case 0: // at a byte boundary: only the header precedes
		c = binary.AppendVarint(c, t)
		c = x.writeBits(c, math.Float64bits(v), 64)
	case 1: // at a byte boundary: a varint and 64 bits precede
		tDelta = uint64(t - prevT)
		c = binary.AppendUvarint(c, tDelta)
		c = x.writeValue(c, prevV, math.Float64bits(v))
	case maxXORSamples:
		// More would start the chunk with integer chunks' tag (intchunk.go).
		panic("BUG: XOR chunk holds maxXORSamples samples")
	default:
		tDelta = uint64(t - prevT)
		dod := int64(tDelta - x.tDelta)
		switch {
		case dod == 0:
			c = x.writeBits(c, 0, 1)
		case bitRange(dod, 14):
			c = x.writeBits(c, 0b10<<14|uint64(dod)&(1<<14-1), 2+14)
		case bitRange(dod, 17):
			c = x.writeBits(c, 0b110<<17|uint64(dod)&(1<<17-1), 3+17)
		case bitRange(dod, 20):
			c = x.writeBits(c, 0b1110<<20|uint64(dod)&(1<<20-1), 4+20)
		default:
			c = x.writeBits(c, 0b1111, 4)
			c = x.writeBits(c, uint64(dod), 64)
		}
		c = x.writeValue(c, prevV, math.Float64bits(v))
	}
	binary.BigEndian.PutUint16(c, num+1)
	x.tDelta = tDelta
	return c
}

// bitRange reports whether x fits the nbits bucket of a timestamp's
// delta of delta, as chunkenc decides it (one more positive value than
// two's complement holds; the reader sign-extends it back).
func bitRange(x int64, nbits uint8) bool {
	return -((1<<(nbits-1))-1) <= x && x <= 1<<(nbits-1)
}

// writeValue writes value v after prev (both as bits): a 0 bit when equal;
// otherwise 1 and the XOR's significant bits, inside the current window of
// leading and trailing zeros when they fit it (control 0), else with a new
// window (control 1, 5 bits of leading zeros, 6 of length).
func (x *xorState) writeValue(c []byte, prev, v uint64) []byte {
	delta := v ^ prev
	if delta == 0 {
		return x.writeBits(c, 0, 1)
	}
	leading := uint8(bits.LeadingZeros64(delta))
	trailing := uint8(bits.TrailingZeros64(delta))
	if leading >= 32 {
		leading = 31 // 5 bits hold no more
	}
	if x.leading != 0xff && leading >= x.leading && trailing >= x.trailing {
		c = x.writeBits(c, 0b10, 2)
		return x.writeBits(c, delta>>x.trailing, 64-int(x.leading)-int(x.trailing))
	}
	x.leading, x.trailing = leading, trailing
	sig := 64 - int(leading) - int(trailing) // 64 is written as 0: a window is never empty
	c = x.writeBits(c, 0b11<<11|uint64(leading)<<6|uint64(sig)&(1<<6-1), 2+5+6)
	return x.writeBits(c, delta>>trailing, sig)
}

// writeBits writes the low n bits of u (n <= 64), most significant first.
// The free bits of the last byte are zero: appended bytes start so.
func (x *xorState) writeBits(c []byte, u uint64, n int) []byte {
	if n < 64 {
		u &= 1<<n - 1
	}
	if x.free > 0 {
		k := min(n, int(x.free))
		n -= k
		c[len(c)-1] |= byte(u>>n) << (int(x.free) - k)
		x.free -= uint8(k)
	}
	for n >= 8 {
		n -= 8
		c = appendChunkByte(c, byte(u>>n))
	}
	if n > 0 {
		c = appendChunkByte(c, byte(u<<(8-n)))
		x.free = uint8(8 - n)
	}
	return c
}

// appendChunkByte appends b to the open chunk c, growing c one size class
// at a time. append doubles a small slice: an open chunk that had just
// outgrown 128 bytes held 256, and the open chunks of an etcd fleet
// (BenchmarkOpenChunkCapacity) kept 30-60% more than their length. Size
// classes below 256 bytes are 16 apart, so a chunk now holds at most 15
// bytes more than it needs; its growth costs a copy per class, a few
// hundred bytes of garbage for a chunk of 120 samples.
func appendChunkByte(c []byte, b byte) []byte {
	if len(c) == cap(c) {
		c = growChunk(c)
	}
	return append(c, b)
}

// growChunk returns a copy of c whose capacity is the next size class up.
func growChunk(c []byte) []byte {
	// append to nil allocates exactly the size class that holds len(c)+1
	// and reports it as the capacity.
	g := append([]byte(nil), make([]byte, len(c)+1)...)
	return g[:copy(g, c)]
}

// xorReader is a chunk and its iterator, reused: a restart restores ten
// million open chunks, and an iterator apiece was a gigabyte of garbage.
type xorReader struct {
	chunk chunkenc.XORChunk
	it    chunkenc.Iterator
}

var xorReaders = sync.Pool{New: func() any { return new(xorReader) }}

// valid reports whether x could be the state of a writer: a bit position
// within a byte, and a window of leading and trailing zeros within 64
// bits (leading 0xff before the first value XOR).
func (x xorState) valid() bool {
	return x.free <= 7 && (x.leading == 0xff || x.leading < 64 && x.trailing < 64 && int(x.leading)+int(x.trailing) <= 64)
}

// restoreChunk returns the snapshot's open chunk as a chunk of the head's
// with its writer and last sample: a copy of the bytes with the writer the
// snapshot recorded, once the chunk decodes to as many samples as its
// header says and ends with the snapshot's newest one. Otherwise, and for
// a snapshot of version 1, which records no writer, the samples are
// appended again (restoreXOR).
func (h headSnapshot) restoreChunk() (c []byte, x xorState, lastT int64, lastV uint64, err error) {
	if !h.hasXOR || len(h.chunk) < xorChunkHeader || !xorEndsWith(h.chunk, h.maxT, h.lastV) {
		return restoreXOR(h.chunk)
	}
	c = append(newXORChunk(len(h.chunk))[:0], h.chunk...)
	return c, h.xor, h.maxT, h.lastV, nil
}

// xorEndsWith reports whether chunk data decodes whole, to the number of
// samples its header says, the last of which is (t, v).
func xorEndsWith(data []byte, t int64, v uint64) bool {
	r := xorReaders.Get().(*xorReader)
	defer xorReaders.Put(r)
	r.chunk.Reset(data)
	r.it = r.chunk.Iterator(r.it)
	n, lastT, lastV := 0, int64(0), uint64(0)
	for r.it.Next() == chunkenc.ValFloat {
		tt, vv := r.it.At()
		n, lastT, lastV = n+1, tt, math.Float64bits(vv)
	}
	return r.it.Err() == nil && n > 0 && n == xorNumSamples(data) && lastT == t && lastV == v
}

// restoreXOR rebuilds a writer for the chunk data, whose bytes only are
// known (a head snapshot's open chunk): chunkenc's own Appender on such
// bytes starts at a byte boundary, since the bit position within the last
// byte is lost. It decodes the samples and writes them anew into a chunk
// of the same size, which gives the bytes and state of the writer that
// wrote them, and returns the chunk, the state and the last sample.
func restoreXOR(data []byte) (c []byte, x xorState, lastT int64, lastV uint64, err error) {
	if len(data) < xorChunkHeader {
		return nil, xorState{}, 0, 0, errBadSnapshot
	}
	r := xorReaders.Get().(*xorReader)
	defer xorReaders.Put(r)
	r.chunk.Reset(data)
	r.it = r.chunk.Iterator(r.it)
	it := r.it
	c, x = newXORChunk(len(data)), newXORState()
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		c = x.append(c, lastT, lastV, t, v)
		lastT, lastV = t, math.Float64bits(v)
	}
	if err := it.Err(); err != nil {
		return nil, xorState{}, 0, 0, err
	}
	return c, x, lastT, lastV, nil
}
