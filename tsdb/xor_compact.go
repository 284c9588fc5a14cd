package tsdb

import (
	"math"
	"math/bits"
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
