package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Integer chunks. Most etcd series are counters and histogram buckets:
// float64 values that are whole numbers growing by small steps. The XOR
// of two such values spends most of the mantissa, while the difference
// of the integers takes a few bits. Compaction (db_compact.go) writes a
// window whose values are all integers (intValue) in the form below when
// that is smaller than its XOR form, and so does a checkpoint with each
// closed chunk it moves to the store (intChunker); head chunks, the WAL
// and the head snapshot hold XOR chunks only.
//
// Telling them apart. An XOR chunk starts with its sample count, 2 bytes
// big-endian; an integer chunk starts with the byte intChunkTag (0xFF),
// which an XOR chunk starts with only when it holds 0xFF00 samples or
// more. None does: every XOR chunk etcdgate writes holds at most
// maxXORSamples (0xFEFF) samples: head chunks at most
// maxHeadSamples, out-of-order ones at most
// OutOfOrderCapacity (both validated against it), compaction's pieces cut
// before it, and xorState.append refuses the sample past it (BUG panic).
//
// Format (integers as in encoding/binary: uvarint, zigzag varint):
//
//	tag     0xFF
//	flags   1 byte: bit 0 order (0: values as deltas, 1: as deltas of
//	        deltas), bit 1 zero (a residual 0 takes one bit); others 0
//	width   1 byte w, 0..56: the bits of a residual's field
//	n       uvarint: the number of samples, ≥ 1
//	base    varint: the residual a field of 0 stands for
//	t0      varint: the first timestamp
//	v0      varint: the first value
//	dt1     uvarint: t1 - t0, if n ≥ 2
//	bits    the residual of sample 1, then per sample i ≥ 2 the delta of
//	        its timestamp delta, coded as in XOR chunks (0 | 10 +14 bits |
//	        110 +17 | 1110 +20 | 1111 +64), and its residual; zero bits
//	        pad the last byte.
//
// A value v_i (i ≥ 1) is v_{i-1} + d_i; with order 0 the residual r_i is
// d_i, with order 1 it is d_i - d_{i-1} (d_0 = 0). A residual is coded,
// most significant bit first:
//
//	zero flag set:  0             r = 0
//	                1 field       as below
//	field:          w bits f < 2^w-1: r = base + f
//	                w bits 2^w-1 (all ones; every field when w = 0),
//	                then 6 bits L ≤ 56 and L bits z: r = unzigzag(z)
//
// The encoder chooses order, zero flag, base and w per chunk for the
// fewest bits (intEncoder.encode). Values are less than 2^53 in
// magnitude, so deltas of deltas are less than 2^55 and their zigzag
// form fits 56 bits.
const (
	intChunkTag   = 0xFF
	maxXORSamples = intChunkTag<<8 - 1

	intFlagDoD      = 1 << 0
	intFlagZero     = 1 << 1
	intMaxWidth     = 56
	intEscapeLenBit = 6
	// intChunkHeader is the fewest bytes before the bits: tag, flags,
	// width, n, base, t0, v0.
	intChunkHeader = 7
)

var errIntChunk = errors.New("malformed integer chunk")

// isIntChunk reports whether chunk bytes c are an integer chunk.
func isIntChunk(c []byte) bool { return len(c) > 0 && c[0] == intChunkTag }

// intValue returns v as an integer if it is one that converts back to
// exactly v: not NaN (stale markers included), not ±Inf, not -0, and
// less than 2^53 in magnitude.
func intValue(v float64) (int64, bool) {
	const limit = 1 << 53
	if !(v > -limit && v < limit) || v != math.Trunc(v) || (v == 0 && math.Signbit(v)) {
		return 0, false
	}
	return int64(v), true
}

// intEncoder writes integer chunks; its buffers are reused.
type intEncoder struct {
	vals []int64
	res  []int64
}

// intParams is a choice of coding and the bits it costs.
type intParams struct {
	flags byte
	width uint8
	base  int64
	bits  int
}

// encode returns samples (sorted by time, at least one) as an integer
// chunk appended to dst, or false when a value is not an integer.
func (e *intEncoder) encode(dst []byte, samples []sample) ([]byte, bool) {
	e.vals = e.vals[:0]
	for _, s := range samples {
		iv, ok := intValue(s.v)
		if !ok {
			return dst, false
		}
		e.vals = append(e.vals, iv)
	}
	best := intParams{bits: math.MaxInt}
	for _, order := range []byte{0, intFlagDoD} {
		e.residuals(order)
		if p := chooseIntParams(e.res, order); p.bits < best.bits {
			best = p
		}
	}
	e.residuals(best.flags & intFlagDoD)
	dst = append(dst, intChunkTag, best.flags, best.width)
	dst = binary.AppendUvarint(dst, uint64(len(samples)))
	dst = binary.AppendVarint(dst, best.base)
	dst = binary.AppendVarint(dst, samples[0].t)
	dst = binary.AppendVarint(dst, e.vals[0])
	if len(samples) == 1 {
		return dst, true
	}
	dst = binary.AppendUvarint(dst, uint64(samples[1].t-samples[0].t))
	w := xorState{} // its bit writer
	tDelta := uint64(samples[1].t - samples[0].t)
	for i := 1; i < len(samples); i++ {
		if i >= 2 {
			d := uint64(samples[i].t - samples[i-1].t)
			dst = w.writeDoD(dst, int64(d-tDelta))
			tDelta = d
		}
		dst = w.writeResidual(dst, e.res[i-1], best)
	}
	return dst, true
}

// residuals sets e.res to the residuals of samples 1.. under order.
func (e *intEncoder) residuals(order byte) {
	e.res = e.res[:0]
	var prevD int64
	for i := 1; i < len(e.vals); i++ {
		d := e.vals[i] - e.vals[i-1]
		r := d
		if order == intFlagDoD {
			r = d - prevD
		}
		prevD = d
		e.res = append(e.res, r)
	}
}

// chooseIntParams returns the cheapest coding of residuals res under
// order. The bases tried are 0, the least residual, and the least of
// those no more than two bits longer than the median (so that a few
// outliers, such as a gauge's jump or a counter's reset, do not set it).
// For a base, one pass sorts each residual by the width its field needs
// (65: none, below the base) and what its escape costs; every width is
// then priced from those sums.
func chooseIntParams(res []int64, order byte) intParams {
	best := intParams{flags: order, bits: math.MaxInt}
	if len(res) == 0 {
		return best
	}
	var lenHist [65]int
	lo := res[0]
	for _, r := range res {
		lo = min(lo, r)
		lenHist[bits.Len64(zigzag(r))]++
	}
	median, seen := 0, 0
	for median < 64 && seen+lenHist[median] <= len(res)/2 {
		seen += lenHist[median]
		median++
	}
	trimmed := int64(0)
	first := true
	for _, r := range res {
		if bits.Len64(zigzag(r)) <= median+2 && (first || r < trimmed) {
			trimmed, first = r, false
		}
	}
	bases := [...]int64{0, lo, trimmed}
	for i, base := range bases {
		if slices.Contains(bases[:i], base) {
			continue // priced already: the same costs
		}
		// Per field width k (1..65: never) a residual needs, the bits of
		// escaping those that need it; residuals 0 apart (the zero flag's
		// case), all needing zeroK.
		var escape [66]int
		zeros, zeroK := 0, 65
		if base <= 0 {
			zeroK = bits.Len64(uint64(-base) + 1)
		}
		for _, r := range res {
			if r == 0 {
				zeros++
				continue
			}
			k := 65
			if r >= base {
				k = bits.Len64(uint64(r-base) + 1)
			}
			escape[k] += intEscapeLenBit + bits.Len64(zigzag(r))
		}
		for _, zero := range []bool{false, true} {
			esc := escape // by value
			fields, flagBits := len(res), 0
			if zero {
				fields, flagBits = len(res)-zeros, len(res)
			} else {
				esc[zeroK] += zeros * intEscapeLenBit
			}
			// Escapes of residuals that need more than w bits, for w
			// from the widest any residual needs down: a wider field
			// only costs more.
			top := intMaxWidth
			for top > 0 && esc[top] == 0 {
				top--
			}
			over := 0
			for k := top + 1; k <= 65; k++ {
				over += esc[k]
			}
			for w := top; w >= 0; w-- {
				cost := flagBits + fields*w + over
				if cost < best.bits || (cost == best.bits && w < int(best.width)) {
					best = intParams{flags: order, width: uint8(w), base: base, bits: cost}
					if zero {
						best.flags |= intFlagZero
					}
				}
				over += esc[w]
			}
		}
	}
	return best
}

func zigzag(r int64) uint64 { return uint64(r<<1) ^ uint64(r>>63) }

func unzigzag(z uint64) int64 { return int64(z>>1) ^ -int64(z&1) }

// writeDoD writes a timestamp's delta of delta as XOR chunks do.
func (x *xorState) writeDoD(c []byte, dod int64) []byte {
	switch {
	case dod == 0:
		return x.writeBits(c, 0, 1)
	case bitRange(dod, 14):
		return x.writeBits(c, 0b10<<14|uint64(dod)&(1<<14-1), 2+14)
	case bitRange(dod, 17):
		return x.writeBits(c, 0b110<<17|uint64(dod)&(1<<17-1), 3+17)
	case bitRange(dod, 20):
		return x.writeBits(c, 0b1110<<20|uint64(dod)&(1<<20-1), 4+20)
	}
	c = x.writeBits(c, 0b1111, 4)
	return x.writeBits(c, uint64(dod), 64)
}

// writeResidual writes residual r with the coding p.
func (x *xorState) writeResidual(c []byte, r int64, p intParams) []byte {
	if p.flags&intFlagZero != 0 {
		if r == 0 {
			return x.writeBits(c, 0, 1)
		}
		c = x.writeBits(c, 1, 1)
	}
	allOnes := uint64(1)<<p.width - 1
	if r >= p.base && uint64(r-p.base) < allOnes {
		return x.writeBits(c, uint64(r-p.base), int(p.width))
	}
	z := zigzag(r)
	c = x.writeBits(c, allOnes, int(p.width))
	c = x.writeBits(c, uint64(bits.Len64(z)), intEscapeLenBit)
	return x.writeBits(c, z, bits.Len64(z))
}

// intBitReader reads bits most significant first; buf holds n of them,
// left-aligned, and b[i:] the rest.
type intBitReader struct {
	b   []byte
	i   int
	buf uint64
	n   uint
}

// fill tops buf up to at least 57 bits, or to all that are left.
func (r *intBitReader) fill() {
	if r.i+8 <= len(r.b) {
		v := binary.BigEndian.Uint64(r.b[r.i:])
		r.buf |= v >> r.n
		k := (63 - r.n) / 8
		r.i += int(k)
		r.n += k * 8
		return
	}
	for r.n <= 56 && r.i < len(r.b) {
		r.buf |= uint64(r.b[r.i]) << (56 - r.n)
		r.n += 8
		r.i++
	}
}

// read returns the next k ≤ 56 bits.
func (r *intBitReader) read(k uint) (uint64, bool) {
	if r.n < k {
		r.fill()
		if r.n < k {
			return 0, false
		}
	}
	v := r.buf >> (64 - k) // 0 for k = 0
	r.buf <<= k
	r.n -= k
	return v, true
}

// intIterator reads an integer chunk. Its zero value is empty.
type intIterator struct {
	br        intBitReader
	left      int // samples not yet read
	i         int // samples read
	flags     byte
	width     uint
	base      int64
	t, tDelta int64
	v, d      int64
	err       error
}

// reset starts reading integer chunk c. A declared sample count larger
// than its bits could hold is an error: each sample after the first
// takes at least two bits.
func (it *intIterator) reset(c []byte) {
	*it = intIterator{}
	if len(c) < intChunkHeader || c[0] != intChunkTag {
		it.err = fmt.Errorf("%w: header of %d bytes", errIntChunk, len(c))
		return
	}
	it.flags, it.width = c[1], uint(c[2])
	if it.flags&^(intFlagDoD|intFlagZero) != 0 || it.width > intMaxWidth {
		it.err = fmt.Errorf("%w: flags %#x, width %d", errIntChunk, it.flags, it.width)
		return
	}
	b := c[3:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 {
		it.err = fmt.Errorf("%w: sample count", errIntChunk)
		return
	}
	b = b[k:]
	var ok bool
	if it.base, b, ok = varint(b); !ok {
		it.err = fmt.Errorf("%w: base", errIntChunk)
		return
	}
	if it.t, b, ok = varint(b); !ok {
		it.err = fmt.Errorf("%w: first timestamp", errIntChunk)
		return
	}
	if it.v, b, ok = varint(b); !ok {
		it.err = fmt.Errorf("%w: first value", errIntChunk)
		return
	}
	if n > 1 {
		dt, k := binary.Uvarint(b)
		if k <= 0 {
			it.err = fmt.Errorf("%w: second timestamp", errIntChunk)
			return
		}
		b = b[k:]
		it.tDelta = int64(dt)
	}
	if n-1 > uint64(len(b))*4 {
		it.err = fmt.Errorf("%w: %d samples in %d bytes", errIntChunk, n, len(b))
		return
	}
	it.left = int(n)
	it.br = intBitReader{b: b}
}

func varint(b []byte) (int64, []byte, bool) {
	v, k := binary.Varint(b)
	if k <= 0 {
		return 0, b, false
	}
	return v, b[k:], true
}

// next moves to the next sample. The common case (a timestamp delta of
// delta of 0, a residual in its field) is read here from the buffer,
// filled once; the others take readDoD and readEscape.
func (it *intIterator) next() bool {
	if it.left == 0 {
		return false
	}
	r := &it.br
	switch it.i {
	case 0: // read by reset
		it.left--
		it.i++
		return true
	case 1: // its timestamp delta was read by reset
	default:
		if r.n < 57 {
			r.fill()
		}
		if r.n > 0 && r.buf>>63 == 0 {
			r.buf <<= 1
			r.n--
		} else {
			dod, ok := it.readDoD()
			if !ok {
				return false
			}
			it.tDelta += dod
		}
	}
	it.t += it.tDelta
	var res int64
	zero := false
	if it.flags&intFlagZero != 0 {
		if r.n == 0 {
			if r.fill(); r.n == 0 {
				return it.fail("value")
			}
		}
		zero = r.buf>>63 == 0
		r.buf <<= 1
		r.n--
	}
	if !zero {
		if r.n < it.width {
			if r.fill(); r.n < it.width {
				return it.fail("value")
			}
		}
		f := r.buf >> (64 - it.width) // 0 for width 0
		r.buf <<= it.width
		r.n -= it.width
		if f != 1<<it.width-1 {
			res = it.base + int64(f)
		} else if res, zero = it.readEscape(); !zero {
			return false
		}
	}
	if it.flags&intFlagDoD != 0 {
		it.d += res
	} else {
		it.d = res
	}
	it.v += it.d
	it.left--
	it.i++
	return true
}

// readEscape reads an escaped residual: its length and zigzag bits.
func (it *intIterator) readEscape() (int64, bool) {
	r := &it.br
	l, ok := r.read(intEscapeLenBit)
	if !ok || l > intMaxWidth {
		return 0, it.fail("value")
	}
	z, ok := r.read(uint(l))
	if !ok {
		return 0, it.fail("value")
	}
	return unzigzag(z), true
}

// readDoD reads a timestamp's delta of delta.
func (it *intIterator) readDoD() (int64, bool) {
	r := &it.br
	if r.n < 4 {
		r.fill()
	}
	var nbits uint
	switch {
	case r.n >= 1 && r.buf>>63 == 0:
		r.buf <<= 1
		r.n--
		return 0, true
	case r.n >= 2 && r.buf>>62 == 0b10:
		nbits = 14
		r.buf, r.n = r.buf<<2, r.n-2
	case r.n >= 3 && r.buf>>61 == 0b110:
		nbits = 17
		r.buf, r.n = r.buf<<3, r.n-3
	case r.n >= 4 && r.buf>>60 == 0b1110:
		nbits = 20
		r.buf, r.n = r.buf<<4, r.n-4
	case r.n >= 4:
		r.buf, r.n = r.buf<<4, r.n-4
		hi, ok1 := r.read(32)
		lo, ok2 := r.read(32)
		if !ok1 || !ok2 {
			return 0, it.fail("timestamp")
		}
		return int64(hi<<32 | lo), true
	default:
		return 0, it.fail("timestamp")
	}
	u, ok := r.read(nbits)
	if !ok {
		return 0, it.fail("timestamp")
	}
	// As chunkenc: one more positive value than two's complement holds.
	if u > 1<<(nbits-1) {
		return int64(u) - 1<<nbits, true
	}
	return int64(u), true
}

func (it *intIterator) fail(what string) bool {
	it.err = fmt.Errorf("%w: %s of sample %d: out of bits", errIntChunk, what, it.i)
	it.left = 0
	return false
}

func (it *intIterator) at() (int64, float64) { return it.t, float64(it.v) }

// rest reports whether the bits not read are only the last byte's zero
// padding.
func (it *intIterator) rest() bool {
	r := &it.br
	return r.i == len(r.b) && r.n < 8 && r.buf == 0
}

// appendIntAsXOR appends integer chunk c's samples to dst as an XOR
// chunk, written as chunkenc's appender writes it.
func appendIntAsXOR(dst, c []byte) ([]byte, error) {
	var it intIterator
	it.reset(c)
	if it.left > maxXORSamples {
		return dst, fmt.Errorf("%w: %d samples, more than an XOR chunk holds", errIntChunk, it.left)
	}
	n := len(dst)
	// The most an XOR chunk takes: maxXORSampleBytes a sample besides the
	// header. reset bounds the count by c's bytes.
	dst = slices.Grow(dst, xorChunkHeader+maxXORSampleBytes*it.left)
	dst = append(dst, 0, 0)
	x := newXORState()
	var prevT int64
	var prevV uint64
	for it.next() {
		t, v := it.at()
		xc := x.append(dst[n:], prevT, prevV, t, v)
		if len(xc) > 0 && &xc[0] != &dst[n] { // grown elsewhere: never, by the Grow above
			dst = append(dst[:n], xc...)
		} else {
			dst = dst[:n+len(xc)]
		}
		prevT, prevV = t, math.Float64bits(v)
	}
	if it.err != nil {
		return dst[:n], it.err
	}
	return dst, nil
}

// intChunker rewrites closed head chunks as a checkpoint moves them to
// the store (the chunk journal, or badger for a late chunk): in integer
// form where that is smaller. Until compaction merges a bucket, the
// journal holds a series' samples as the head's chunks; written as XOR,
// they cost half again what compaction's integer chunks do. Its buffers
// are reused.
type intChunker struct {
	enc     intEncoder
	it      chunksIterator
	one     [1]memChunk // the chunk it reads; kept, as it is, until the next call
	samples []sample
	buf     []byte
}

// smaller returns c as an integer chunk when its values are all integers
// and that is smaller than c; else c itself. An integer chunk's bytes are
// the chunker's until the next call. A chunk that does not decode to
// exactly what it declares (its sample count, minT and maxT, times
// strictly rising) is returned as it is: the rewrite never drops or
// invents a sample.
func (ic *intChunker) smaller(c memChunk) memChunk {
	if len(c.data) < xorChunkHeader || isIntChunk(c.data) {
		return c
	}
	ic.one[0] = c
	ic.samples = ic.samples[:0]
	for ic.it.reset(ic.one[:], minInt64, maxInt64); ic.it.Next(); {
		t, v := ic.it.At()
		if _, ok := intValue(v); !ok {
			return c // most gauges: no need to decode the rest
		}
		ic.samples = append(ic.samples, sample{t: t, v: v})
	}
	n := len(ic.samples)
	if n == 0 || n != xorNumSamples(c.data) || ic.samples[0].t != c.minT || ic.samples[n-1].t != c.maxT {
		return c
	}
	for i := 1; i < n; i++ {
		if ic.samples[i].t <= ic.samples[i-1].t {
			return c
		}
	}
	data, ok := ic.enc.encode(ic.buf[:0], ic.samples)
	ic.buf = data
	if !ok || len(data) >= len(c.data) {
		return c
	}
	c.data = data
	return c
}
