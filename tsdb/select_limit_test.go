package tsdb

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestSelectSeriesLimit: a select over more series than its context's
// limit fails with ErrTooManySeries; at the limit, or without one, it
// returns every series.
func TestSelectSeriesLimit(t *testing.T) {
	h, err := NewHead(DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := appendOne(t, h, labels.FromStrings("__name__", "up", "pod", fmt.Sprint(i)), 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	q, err := h.Querier(0, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	up := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")
	f := func(limit int, wantErr bool) {
		t.Helper()
		ctx := WithSeriesLimit(context.Background(), limit)
		for name, set := range map[string]SeriesSet{"Select": q.Select(ctx, up), "SelectUnsorted": q.SelectUnsorted(ctx, up)} {
			n := 0
			for set.Next() {
				n++
			}
			if gotErr := errors.Is(set.Err(), ErrTooManySeries); gotErr != wantErr || (!wantErr && n != 100) {
				t.Errorf("%s with limit %d: %d series, err %v", name, limit, n, set.Err())
			}
		}
		_, err := q.LabelValues(ctx, "pod", up)
		if gotErr := errors.Is(err, ErrTooManySeries); gotErr != wantErr {
			t.Errorf("LabelValues with limit %d: err %v", limit, err)
		}
	}
	f(0, false)
	f(100, false)
	f(99, true)
	f(1, true)
}
