package ingest

import (
	"errors"
	"testing"
	"time"
)

// TestPushValidatesLikeWrite checks that in-process series take the
// remote-write rules: valid ones are stored, invalid ones are refused and
// named, and neither affects the other.
func TestPushValidatesLikeWrite(t *testing.T) {
	in, head, _ := newTestIngester(t, DefaultLimits())
	ts := testNow.Add(-time.Second).UnixMilli()
	series := []TimeSeries{
		{Labels: []Label{{"__name__", "etcdgate_inspection_success"}, {"cluster", "a"}}, Samples: []Sample{{1, ts}}},
		{Labels: []Label{{"__name__", "bad-name"}}, Samples: []Sample{{1, ts}}},
		{Labels: []Label{{"__name__", "etcdgate_inspection_success"}, {"cluster", "b"}}, Samples: []Sample{{0, ts}, {1, ts + 1}}},
	}
	res, err := in.Push(series)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 4 || res.Accepted != 3 || res.RefusedSeries != 1 {
		t.Fatalf("result %+v", res)
	}
	if !errors.Is(res.Err(), ErrInvalidSeries) {
		t.Fatalf("err %v, want ErrInvalidSeries", res.Err())
	}
	if head.NumSeries() != 2 {
		t.Fatalf("head has %d series, want 2", head.NumSeries())
	}
}
