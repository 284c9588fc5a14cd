package ingest

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/prometheus/prometheus/model/labels"
)

// appendTimeSeries appends one remote-write 1.0 WriteRequest.timeseries
// entry (field 1) holding lset and samples to dst, without allocating
// beyond dst's growth. A node of a ring builds the bodies it forwards to
// the series' owners with it; concatenated entries form a WriteRequest.
//
// Wire form (prometheus/prompb/types.proto): TimeSeries{1: Label
// {1: name, 2: value}, 2: Sample{1: double value, 2: int64 timestamp}}.
// Both fields of a label and of a sample are always written, which any
// decoder of proto3 accepts.
func appendTimeSeries(dst []byte, lset labels.Labels, samples []Sample) []byte {
	size := 0
	lset.Range(func(l labels.Label) {
		n := labelSize(l)
		size += 1 + uvarintLen(uint64(n)) + n
	})
	for _, s := range samples {
		n := sampleSize(s)
		size += 1 + uvarintLen(uint64(n)) + n
	}
	dst = append(dst, 0x0a)
	dst = binary.AppendUvarint(dst, uint64(size))
	lset.Range(func(l labels.Label) {
		dst = append(dst, 0x0a)
		dst = binary.AppendUvarint(dst, uint64(labelSize(l)))
		dst = appendString(dst, 0x0a, l.Name)
		dst = appendString(dst, 0x12, l.Value)
	})
	for _, s := range samples {
		dst = append(dst, 0x12)
		dst = binary.AppendUvarint(dst, uint64(sampleSize(s)))
		dst = append(dst, 0x09)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Value))
		dst = append(dst, 0x10)
		dst = binary.AppendUvarint(dst, uint64(s.Timestamp))
	}
	return dst
}

func appendString(dst []byte, tag byte, s string) []byte {
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func labelSize(l labels.Label) int {
	return 1 + uvarintLen(uint64(len(l.Name))) + len(l.Name) + 1 + uvarintLen(uint64(len(l.Value))) + len(l.Value)
}

// sampleSize is a Sample message's size: a fixed64 value and a varint
// timestamp (a negative one takes ten bytes, as int64 varints do).
func sampleSize(s Sample) int { return 1 + 8 + 1 + uvarintLen(uint64(s.Timestamp)) }

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }
