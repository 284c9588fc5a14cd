package tsdb

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestAppendWALSeriesSymsMatchesLabels holds the WAL's series section
// spelled from symbol refs to the bytes of the one written from label
// sets, with enough symbols that refs take several bytes and values long
// enough that lengths do too.
func TestAppendWALSeriesSymsMatchesLabels(t *testing.T) {
	st := newSymbolTable()
	var series []*memSeries
	var sets []walSeries
	for i := range 400 {
		lset := labels.FromStrings(
			"__name__", fmt.Sprintf("metric_%d", i%7),
			"instance", fmt.Sprintf("10.0.%d.%d:2379", i/256, i%256),
			"long", strings.Repeat("v", 100+i),
		)
		if i%5 == 0 {
			lset = labels.FromStrings("only", fmt.Sprint(i))
		}
		s := newMemSeries(SeriesRef(i*1000+1), st.internSyms(lset))
		if got, want := s.syms.refs().labelCount(), lset.Len(); got != want {
			t.Fatalf("series %d: labelCount %d, want %d", i, got, want)
		}
		series = append(series, s)
		sets = append(sets, walSeries{ref: s.ref, lset: lset})
	}
	got := appendWALSeriesSyms([]byte("prefix"), series, st.load())
	want := appendWALSeries([]byte("prefix"), sets)
	if !bytes.Equal(got, want) {
		t.Fatalf("section from symbol refs differs from the one from label sets (%d vs %d bytes)", len(got), len(want))
	}
	var r walRecordReader
	n := 0
	err := r.decode(got[len("prefix"):], func(ref SeriesRef, lset labels.Labels) error {
		if ref != sets[n].ref || !labels.Equal(lset, sets[n].lset) {
			t.Fatalf("entry %d decodes as %d %s, want %d %s", n, ref, lset, sets[n].ref, sets[n].lset)
		}
		n++
		return nil
	}, nil)
	if err != nil || n != len(sets) {
		t.Fatalf("decoded %d of %d series, err %v", n, len(sets), err)
	}
	if out := appendWALSeriesSyms(nil, nil, st.load()); len(out) != 0 {
		t.Fatalf("no series wrote %d bytes", len(out))
	}
}
