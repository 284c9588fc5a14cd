package ingest

import "github.com/cespare/xxhash/v2"

// storedHash returns labels.New(ls...).Hash() for ls sorted and free of
// duplicates, without building the label set: the hash by which the
// head finds a stored series, for the series of a request that are looked
// up as sent. It encodes ls into buf as a labels.Labels holds it (each
// string preceded by its length, one byte below 255, else 255 and three
// bytes little-endian) and hashes that. The encoding is the labels
// package's, built without tags; TestStoredHashIsLabelsHash holds the two
// equal. It returns buf for reuse.
func storedHash(ls []Label, buf []byte) (uint64, []byte) {
	buf = buf[:0]
	for _, l := range ls {
		buf = appendStoredString(buf, l.Name)
		buf = appendStoredString(buf, l.Value)
	}
	return xxhash.Sum64(buf), buf
}

func appendStoredString(buf []byte, s string) []byte {
	if n := len(s); n < 255 {
		buf = append(buf, byte(n))
	} else {
		buf = append(buf, 255, byte(n), byte(n>>8), byte(n>>16))
	}
	return append(buf, s...)
}
