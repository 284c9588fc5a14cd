package tsdb

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestHeadBytesLimitCountsLabelBytes: series with large unique label
// values reach max_head_bytes by their labels alone; past it new series
// are refused while existing ones keep ingesting, and removing series
// gives the bytes back.
func TestHeadBytesLimitCountsLabelBytes(t *testing.T) {
	const valueLen, maxBytes = 4096, 1 << 20
	h := newTestHead(t, func(o *HeadOptions) { o.Limits.MaxBytes = maxBytes })
	empty := h.Bytes()
	series := func(i int) labels.Labels {
		return labels.FromStrings("__name__", "up", "pod", fmt.Sprintf("%05d-%s", i, strings.Repeat("x", valueLen)))
	}
	accepted := 0
	var refused error
	for i := range 10_000 {
		if err := appendOne(t, h, series(i), 1000, 1); err != nil {
			refused = err
			break
		}
		accepted++
	}
	if !errors.Is(refused, ErrHeadBytesLimit) {
		t.Fatalf("after %d series: %v, want the head bytes limit", accepted, refused)
	}
	// Label bytes alone allow maxBytes/valueLen = 256 series; without them
	// in the figure, a series costs ~400 bytes and ~2,600 would pass.
	if accepted > maxBytes/valueLen {
		t.Fatalf("%d series of %d-byte values accepted under a %d-byte ceiling", accepted, valueLen, maxBytes)
	}
	if b := h.Bytes(); b < int64(accepted*valueLen) {
		t.Fatalf("head accounts %d bytes for %d values of %d bytes", b, accepted, valueLen)
	}
	for i := range accepted {
		if err := appendOne(t, h, series(i), 2000, 2); err != nil {
			t.Fatalf("existing series %d refused at the ceiling: %v", i, err)
		}
	}
	var gone []*memSeries
	for ref := range SeriesRef(accepted) {
		s := h.series.getByRef(ref + 1)
		s.mu.Lock()
		h.deactivateLocked(s) // as a checkpoint does once the samples are stored
		s.mu.Unlock()
		gone = append(gone, s)
	}
	h.removeSeries(gone)
	if b := h.Bytes(); b != empty {
		t.Fatalf("head accounts %d bytes after removing every series, %d when empty", b, empty)
	}
	if err := appendOne(t, h, series(accepted), 1000, 1); err != nil {
		t.Fatalf("new series refused after the others left: %v", err)
	}
}
