package tsdb

import (
	"math"
	"unsafe"
)

// openChunk is an open chunk's bytes in 16 bytes rather than a slice's
// 24: capacity and length fit 32 bits (a chunk holds at most
// maxXORSamples samples of at most 19 bytes), and memSeries, of which
// there are millions, fits a smaller size class by the 8 bytes saved.
// Its zero value is no chunk.
type openChunk struct {
	data     *byte // the first byte of the chunk's array; nil: no chunk
	len, cap uint32
}

// bytes returns the chunk; nil if there is none.
func (c openChunk) bytes() []byte {
	if c.data == nil {
		return nil
	}
	return unsafe.Slice(c.data, c.cap)[:c.len]
}

// open reports whether there is a chunk.
func (c openChunk) open() bool { return c.data != nil }

// set replaces the chunk with b (nil: none).
func (c *openChunk) set(b []byte) {
	if b == nil {
		*c = openChunk{}
		return
	}
	if uint64(cap(b)) > math.MaxUint32 {
		panic("BUG: an open chunk of 4 GiB")
	}
	*c = openChunk{data: unsafe.SliceData(b), len: uint32(len(b)), cap: uint32(cap(b))}
}
