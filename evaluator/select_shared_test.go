package evaluator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
)

// TestRepeatedSelectorsReadOnce: an instant selector named more than once
// in a query is read from the store once per key (steps, modifiers,
// timestamp()), each use gets points of its own to change, and the
// samples count as often as the selector is used, as in Prometheus.
func TestRepeatedSelectorsReadOnce(t *testing.T) {
	head := limitsHead(t, 10, 100) // 10 series of up = 1; 60 steps of them read
	end := time.UnixMilli(99 * 15000)
	e := NewEngine(head, Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		query, unshared string
		series          int64 // read from the store
		queryable       int64
		value           float64 // at every step
	}{
		{`sum(up) + count(up)`, `sum(up) + count(up{instance!=""})`, 10, 1200, 20},
		{`(up * 3) + up`, `(up * 3) + up{instance!=""}`, 10, 1200, 4},
		{`up * up * up + up`, `up * up{instance!=""} * up{instance!~"x"} + up{instance=~".+"}`, 10, 2400, 2},
		{`up + up offset 1m`, `up + up{instance!=""} offset 1m`, 20, 1200, 2},
		{`timestamp(up) - timestamp(up) + up`, `timestamp(up) - timestamp(up{instance!=""}) + up{instance!~"x"}`, 20, 1800, 1},
		{`max_over_time(up[5m:1m]) + up`, `max_over_time(up[5m:1m]) + up{instance!=""}`, 20, 0, 2},
		{`sum(rate(up[5m])) + count(up)`, `sum(rate(up[5m])) + count(up{instance!=""})`, 20, 0, 10},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, err := e.Range(ctx, tc.query, time.UnixMilli(10*60*1000), end, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			want, err := e.Range(ctx, tc.unshared, time.UnixMilli(10*60*1000), end, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if d := compareResults(got, nil, &promql.Result{Value: toPromValue(want.Value)}); d != "" {
				t.Fatalf("shared and unshared differ: %s", d)
			}
			m := got.Value.(Matrix)
			if len(m) == 0 {
				t.Fatal("no result")
			}
			for _, s := range m {
				for _, p := range s.Floats {
					if p.F != tc.value {
						t.Fatalf("%s at %d: %v, want %v", s.Metric, p.T, p.F, tc.value)
					}
				}
			}
			if got.Stats.SeriesLoaded != tc.series {
				t.Errorf("%d series read, want %d", got.Stats.SeriesLoaded, tc.series)
			}
			if got.Stats.QueryableSamples != want.Stats.QueryableSamples {
				t.Errorf("%d samples counted, unshared %d", got.Stats.QueryableSamples, want.Stats.QueryableSamples)
			}
			if tc.queryable > 0 && got.Stats.QueryableSamples != tc.queryable {
				t.Errorf("%d samples counted, want %d", got.Stats.QueryableSamples, tc.queryable)
			}
		})
	}
}

// TestRepeatedSelectorsUnderTheLimit: a kept result gives way to the
// query's own points when max_samples is reached, so that a query needs
// no larger limit than without sharing: up + up + up needs 3,000 (two
// operands and the result), shared or not.
func TestRepeatedSelectorsUnderTheLimit(t *testing.T) {
	head := limitsHead(t, 10, 100) // 10 x 100 points a selector
	end := time.UnixMilli(99 * 15000)
	for _, tc := range []struct {
		max    int64
		series int64 // read from the store; 0: the query fails
	}{
		{100_000, 10}, // kept and used twice
		{3000, 20},    // kept, used once, dropped when the first sum needs room: read again
		{2999, 0},
	} {
		e := NewEngine(head, Options{MaxSamples: tc.max})
		res, err := e.Range(context.Background(), "up + up + up", time.UnixMilli(0), end, 15*time.Second)
		switch {
		case tc.series == 0 && !errors.Is(err, ErrTooManySamples):
			t.Errorf("max %d: %v, want ErrTooManySamples", tc.max, err)
		case tc.series == 0:
		case err != nil:
			t.Errorf("max %d: %v", tc.max, err)
		case res.Stats.SeriesLoaded != tc.series:
			t.Errorf("max %d: %d series read, want %d", tc.max, res.Stats.SeriesLoaded, tc.series)
		}
	}
}
