package tsdb

import (
	"testing"
	"unsafe"
)

// TestMemSeriesSize guards the struct's size class: a field added
// carelessly costs 16 bytes a series, 16 MB a million.
func TestMemSeriesSize(t *testing.T) {
	if n := unsafe.Sizeof(memSeries{}); n > 128 {
		t.Fatalf("memSeries is %d bytes, more than the 128-byte size class", n)
	}
}
