package tsdb

import (
	"math"
	"math/bits"
	"slices"
)

// appendCompact adds the sample (t, v) to chunk c as append does, but
// chooses each value's XOR window for size: where the XOR fits the
// current window, append (like chunkenc) always reuses it, and a window
// widened once by a large change then costs every later sample its
// width; appendCompact starts a new window whenever that is cheaper (13
// bits of header against the unused bits of the old one). The result is
// a valid chunkenc XOR chunk, read by chunkenc's iterator; it is not what
// chunkenc's appender would write, so only chunks that are never appended
// to again (compaction's, db_compact.go) are written so.
func (x *xorState) appendCompact(c []byte, prevT int64, prevV uint64, t int64, v float64) []byte {
	if n := xorNumSamples(c); n < 2 {
		return x.append(c, prevT, prevV, t, v)
	}
	// The timestamp as append writes it, then the value with the cheaper window.
	vb := math.Float64bits(v)
	delta := vb ^ prevV
	if delta == 0 || x.leading == 0xff {
		return x.append(c, prevT, prevV, t, v)
	}
	leading := uint8(bits.LeadingZeros64(delta))
	trailing := uint8(bits.TrailingZeros64(delta))
	if leading >= 32 {
		leading = 31
	}
	sig := 64 - int(leading) - int(trailing)
	if leading < x.leading || trailing < x.trailing || 64-int(x.leading)-int(x.trailing) <= sig+11 {
		return x.append(c, prevT, prevV, t, v)
	}
	// A new window is cheaper: forget the old one, so that append opens
	// one of exactly this XOR's width.
	x.leading = 0xff
	return x.append(c, prevT, prevV, t, v)
}

// compactWiden is how many bits a window opened by encodeCompact may
// reach higher than the XOR that opens it: a window that the next
// samples' carries still fit costs less than opening narrower ones again
// and again. On the etcd fleet of BenchmarkDiskBytesPerSample: 11.6 value
// bits a sample, against 12.8 for appendCompact's choice and 11.5 when
// windows may also reach lower (five times the paths to follow).
const compactWiden = 4

// windowNode is a window opened at sample i, and the node of the window
// open before it (-1: none).
type windowNode struct {
	i      int32
	parent int32
	l, t   uint8
}

// windowPath is a state of the search: the window in use, the bits spent
// so far, and the node that opened the window.
type windowPath struct {
	cost int
	node int32
	l, t uint8
}

// The bits of a window besides its width: opening one writes the control
// bits 11, 5 bits of leading zeros and 6 of width; reusing one writes 10.
const (
	xorWindowOpen  = 2 + 5 + 6
	xorWindowReuse = 2
)

// compactEncoder writes chunks with encode; its buffers are reused.
type compactEncoder struct {
	nodes       []windowNode
	paths, next []windowPath
	opens       []int32 // per sample: the node of the window it opens, or -1
}

// encode returns samples (sorted by time, at most maxXORSamples) as a chunkenc
// XOR chunk whose value windows are chosen to minimise its size: a
// shortest path over the windows the writer could hold after each sample,
// where a window opened at a sample is its XOR's or reaches up to
// compactWiden bits higher. A path that costs at least the best one's
// plus the bits of opening a window less those of reusing one can never
// win: the best path may open that same window at the next sample for no
// more. The timestamps are written as chunkenc writes them.
func (e *compactEncoder) encode(samples []sample) []byte {
	e.nodes, e.paths = e.nodes[:0], e.paths[:0]
	for i := 1; i < len(samples); i++ {
		d := math.Float64bits(samples[i].v) ^ math.Float64bits(samples[i-1].v)
		if d == 0 {
			for j := range e.paths {
				e.paths[j].cost++
			}
			continue
		}
		e.step(int32(i), d)
	}
	e.opens = slices.Grow(e.opens[:0], len(samples))[:len(samples)]
	for i := range e.opens {
		e.opens[i] = -1
	}
	if len(e.paths) > 0 {
		bp := e.paths[0]
		for _, p := range e.paths[1:] {
			if p.cost < bp.cost {
				bp = p
			}
		}
		for n := bp.node; n >= 0; n = e.nodes[n].parent {
			e.opens[e.nodes[n].i] = n
		}
	}
	return e.write(samples)
}

// step moves the search over sample i, whose value XOR is d != 0.
func (e *compactEncoder) step(i int32, d uint64) {
	l, t := xorWindow(d)
	best, bestNode := 0, int32(-1)
	if len(e.paths) > 0 {
		best = math.MaxInt
		for _, p := range e.paths {
			if p.cost < best {
				best, bestNode = p.cost, p.node
			}
		}
	}
	next := e.next[:0]
	for _, p := range e.paths {
		if l >= p.l && t >= p.t {
			p.cost += xorWindowReuse + 64 - int(p.l) - int(p.t)
			next = append(next, p)
		}
	}
	for wl := int(l); wl >= max(0, int(l)-compactWiden); wl-- {
		cost := best + xorWindowOpen + 64 - wl - int(t)
		j := indexOfWindow(next, uint8(wl), t)
		if j >= 0 && next[j].cost <= cost {
			continue
		}
		e.nodes = append(e.nodes, windowNode{i: i, parent: bestNode, l: uint8(wl), t: t})
		p := windowPath{cost: cost, node: int32(len(e.nodes) - 1), l: uint8(wl), t: t}
		if j >= 0 {
			next[j] = p
		} else {
			next = append(next, p)
		}
	}
	nb := math.MaxInt
	for _, p := range next {
		nb = min(nb, p.cost)
	}
	e.paths = e.paths[:0]
	for _, p := range next {
		if p.cost < nb+xorWindowOpen-xorWindowReuse {
			e.paths = append(e.paths, p)
		}
	}
	e.next = next
}

// xorWindow returns the leading and trailing zeros of a value XOR d != 0
// as chunkenc records them (leading at most 31, its 5 bits).
func xorWindow(d uint64) (l, t uint8) {
	return uint8(min(bits.LeadingZeros64(d), 31)), uint8(bits.TrailingZeros64(d))
}

func indexOfWindow(ps []windowPath, l, t uint8) int {
	for j, p := range ps {
		if p.l == l && p.t == t {
			return j
		}
	}
	return -1
}

// write writes samples as an XOR chunk, opening the windows of e.opens at
// their samples and reusing the window in use at the others.
func (e *compactEncoder) write(samples []sample) []byte {
	c, x := newXORChunk(mergedChunkBytes), newXORState()
	for i, s := range samples {
		if i == 0 {
			c = x.append(c, 0, 0, s.t, s.v)
			continue
		}
		prev := samples[i-1]
		prevV := math.Float64bits(prev.v)
		d := math.Float64bits(s.v) ^ prevV
		if d == 0 || e.opens[i] < 0 {
			// append reuses the window in use: the path fits d in it.
			c = x.append(c, prev.t, prevV, s.t, s.v)
			continue
		}
		// The timestamp as append writes it, with the previous value
		// again (one 0 bit), which is taken back and the value written
		// with the chosen window.
		w := e.nodes[e.opens[i]]
		c = x.unwriteZero(x.append(c, prev.t, prevV, s.t, prev.v))
		sig := 64 - int(w.l) - int(w.t)
		c = x.writeBits(c, 0b11<<11|uint64(w.l)<<6|uint64(sig)&(1<<6-1), 2+5+6)
		c = x.writeBits(c, d>>w.t, sig)
		x.leading, x.trailing = w.l, w.t
	}
	return c
}

// unwriteZero takes back the last bit written, a 0.
func (x *xorState) unwriteZero(c []byte) []byte {
	if x.free == 7 { // the bit was alone in the last byte
		x.free = 0
		return c[:len(c)-1]
	}
	x.free++
	return c
}
