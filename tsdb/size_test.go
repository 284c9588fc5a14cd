package tsdb

import (
	"testing"
	"unsafe"
)

// TestMemSeriesSize guards the struct's size class: a field added
// carelessly costs 16 bytes a series, 16 MB a million. It holds the open
// chunk's writer inline (144 bytes instead of 128 plus an XORChunk of 32
// and an appender of 48).
func TestMemSeriesSize(t *testing.T) {
	if n := unsafe.Sizeof(memSeries{}); n > 144 {
		t.Fatalf("memSeries is %d bytes, more than the 144-byte size class", n)
	}
}
