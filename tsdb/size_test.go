package tsdb

import (
	"testing"
	"unsafe"
)

// TestMemSeriesSize guards the struct's size class: a field added
// carelessly costs 16 bytes a series, 160 MB at ten million. It holds the
// open chunk's writer inline and the closed chunks behind a pointer.
func TestMemSeriesSize(t *testing.T) {
	if n := unsafe.Sizeof(memSeries{}); n > 128 {
		t.Fatalf("memSeries is %d bytes, more than the 128-byte size class", n)
	}
}
