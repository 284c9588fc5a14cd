package tsdb

import (
	"encoding/binary"
	"unsafe"
)

// seriesSyms holds a series' symRefs behind one pointer: 8 bytes in
// memSeries where a string's header takes 16 (ten million series fit the
// 96-byte size class by it). The pointer is to a uvarint of the refs'
// length followed by the refs, written once and never changed, so refs
// may hand out a string that aliases them. The zero value is no labels.
type seriesSyms struct{ p *byte }

// packSyms copies refs behind one pointer.
func packSyms[T ~string | ~[]byte](refs T) seriesSyms {
	if len(refs) == 0 {
		return seriesSyms{}
	}
	var prefix [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(prefix[:], uint64(len(refs)))
	b := make([]byte, n+len(refs))
	copy(b, prefix[:n])
	copy(b[n:], refs)
	return seriesSyms{p: &b[0]}
}

// refs returns the symRefs, aliasing the packed bytes.
func (ss seriesSyms) refs() symRefs {
	if ss.p == nil {
		return ""
	}
	var n uint64
	i := 0
	for shift := 0; ; shift += 7 {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(ss.p), i))
		i++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	return symRefs(unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(ss.p), i)), n))
}
