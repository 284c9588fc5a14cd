package tsdb

import (
	"testing"
	"unsafe"
)

// TestMemSeriesSize guards the struct's size class: a field added
// carelessly costs 16 bytes a series, 160 MB at ten million. It holds the
// open chunk's writer inline, the open chunk in 16 bytes (openChunk) and
// the closed chunks and out-of-order samples behind one pointer.
func TestMemSeriesSize(t *testing.T) {
	if n := unsafe.Sizeof(memSeries{}); n > 112 {
		t.Fatalf("memSeries is %d bytes, more than the 112-byte size class", n)
	}
}
