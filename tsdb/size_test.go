package tsdb

import (
	"testing"
	"unsafe"
)

// TestMemSeriesSize guards the struct's size class: a field added
// carelessly costs 16 bytes a series, 160 MB at ten million. It holds the
// open chunk's writer inline in 8 bytes (headXOR), the open chunk in 16
// (openChunk), the symbol refs behind one pointer (seriesSyms) and the
// closed chunks and out-of-order samples behind another.
func TestMemSeriesSize(t *testing.T) {
	if n := unsafe.Sizeof(memSeries{}); n > 96 {
		t.Fatalf("memSeries is %d bytes, more than the 96-byte size class", n)
	}
}
