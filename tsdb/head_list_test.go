package tsdb

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func TestListSeries(t *testing.T) {
	head, err := NewHead(DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := head.Appender()
	for i := range 3000 {
		lset := labels.FromStrings("__name__", "up", "instance", fmt.Sprint(i), "odd", fmt.Sprint(i%2))
		if err := app.Append(lset, 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	odd := labels.MustNewMatcher(labels.MatchEqual, "odd", "1")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name       string
		mint, maxt int64
		ctx        context.Context
		stopAt     int // fn returns false on this call; 0: never
		want       int
		wantErr    bool
	}{
		{name: "all odd", mint: 0, maxt: 2000, want: 1500},
		{name: "stops when told", mint: 0, maxt: 2000, stopAt: 10, want: 10},
		{name: "out of range", mint: 2000, maxt: 3000, want: 0},
		{name: "canceled", mint: 0, maxt: 2000, ctx: canceled, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := head.Querier(tc.mint, tc.maxt)
			defer q.Close()
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			n := 0
			err := q.(SeriesLister).ListSeries(ctx, func(l labels.Labels) bool {
				n++
				if l.Get("odd") != "1" || l.Get("__name__") != "up" {
					t.Fatalf("listed %s", l)
				}
				return n != tc.stopAt
			}, odd)
			if (err != nil) != tc.wantErr || n != tc.want {
				t.Fatalf("listed %d, err %v; want %d, error %v", n, err, tc.want, tc.wantErr)
			}
		})
	}
}
