package tsdb

import (
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// LabelPairsHash returns labels.New(ls...).Hash() for ls sorted by name
// and free of duplicates, without building the label set: the hash by
// which the head finds a series (Appender.Lookup), for label pairs as a
// request decoded them or a series record spells them. It encodes ls
// into buf as a labels.Labels holds it (each string preceded by its
// length, one byte below 255, else 255 and three bytes little-endian) and
// hashes that. The encoding is the labels package's, built without tags;
// TestLabelPairsHashIsLabelsHash holds the two equal. It returns buf for
// reuse.
func LabelPairsHash(ls []labels.Label, buf []byte) (uint64, []byte) {
	buf = buf[:0]
	for _, l := range ls {
		buf = appendLabelString(buf, l.Name)
		buf = appendLabelString(buf, l.Value)
	}
	return xxhash.Sum64(buf), buf
}

func appendLabelString(buf []byte, s string) []byte {
	if n := len(s); n < 255 {
		buf = append(buf, byte(n))
	} else {
		buf = append(buf, 255, byte(n), byte(n>>8), byte(n>>16))
	}
	return append(buf, s...)
}
