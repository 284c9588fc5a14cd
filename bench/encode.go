package bench

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/golang/snappy"
)

// The remote-write 1.0 messages the batch encodes, field by field:
//
//	message WriteRequest { repeated TimeSeries timeseries = 1; }
//	message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	message Label        { string name = 1; string value = 2; }
//	message Sample       { double value = 1; int64 timestamp = 2; }
//
// Labels are pre-encoded (layout parts and member slots); a sample only
// adds its value and timestamp.

// batch accumulates the samples of one request. It is owned by one
// sender and reused for every request it sends.
type batch struct {
	pb      []byte // the WriteRequest being built
	body    []byte // pb snappy-compressed, valid until the next compress
	samples int
}

func (b *batch) reset() {
	b.pb = b.pb[:0]
	b.samples = 0
}

// appendSample adds one series of member m with one sample.
func (b *batch) appendSample(s *spec, m *member, value float64, ts int64) {
	sampleLen := 1 + 8 + 1 + uvarintLen(uint64(ts))
	seriesLen := s.fixedLen + m.labelsLen + 1 + 1 + sampleLen
	b.pb = append(b.pb, 0x0a)
	b.pb = binary.AppendUvarint(b.pb, uint64(seriesLen))
	for _, p := range s.parts {
		if p.lit != nil {
			b.pb = append(b.pb, p.lit...)
		} else {
			b.pb = append(b.pb, m.slots[p.slot]...)
		}
	}
	b.pb = append(b.pb, 0x12, byte(sampleLen), 0x09)
	b.pb = binary.LittleEndian.AppendUint64(b.pb, math.Float64bits(value))
	b.pb = append(b.pb, 0x10)
	b.pb = binary.AppendUvarint(b.pb, uint64(ts))
	b.samples++
}

// compress snappy-encodes the request (block format, as remote write
// requires) into the reused body buffer and returns it.
func (b *batch) compress() []byte {
	if n := snappy.MaxEncodedLen(len(b.pb)); cap(b.body) < n {
		b.body = make([]byte, n)
	}
	b.body = snappy.Encode(b.body[:cap(b.body)], b.pb)
	return b.body
}

// appendLabel appends a Label as a TimeSeries labels field.
func appendLabel(dst []byte, name, value string) []byte {
	n := 1 + uvarintLen(uint64(len(name))) + len(name) + 1 + uvarintLen(uint64(len(value))) + len(value)
	dst = append(dst, 0x0a)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = appendString(dst, 0x0a, name)
	return appendString(dst, 0x12, value)
}

// appendString appends a length-delimited field with the given tag.
func appendString(dst []byte, tag byte, s string) []byte {
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }
