package evaluator

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestQueryStats checks the samples a query counts (Prometheus's
// totalQueryableSamples, per step) and the per-query lookback delta over
// two series "up" with a sample every 15 s from 0 to 1485 s.
func TestQueryStats(t *testing.T) {
	head := limitsHead(t, 2, 100)
	e := NewEngine(head, Options{})
	s := func(sec int64) time.Time { return time.Unix(sec, 0) }
	for _, tc := range []struct {
		name       string
		query      string
		start, end time.Time // end zero: an instant query at start
		opts       QueryOpts
		total      int64
		perStep    []StepSamples
		series     int
		read       []StepSamples // samples read per step, checked when set
	}{
		{name: "instant selector", query: "up", start: s(1485), total: 2, series: 2},
		{name: "instant selector per step", query: "up", start: s(1485), opts: QueryOpts{PerStepStats: true},
			total: 2, perStep: []StepSamples{{1485000, 2}}, series: 2},
		{name: "range selector", query: "up[1m]", start: s(1485), opts: QueryOpts{PerStepStats: true},
			total: 8, perStep: []StepSamples{{1485000, 8}}, series: 2},
		{name: "range query", query: "up", start: s(0), end: s(60), opts: QueryOpts{PerStepStats: true},
			total: 10, perStep: []StepSamples{{0, 2}, {15000, 2}, {30000, 2}, {45000, 2}, {60000, 2}}, series: 2},
		{name: "rollup", query: "sum_over_time(up[30s])", start: s(30), end: s(60), opts: QueryOpts{PerStepStats: true},
			total: 12, perStep: []StepSamples{{30000, 4}, {45000, 4}, {60000, 4}}, series: 2,
			read: []StepSamples{{30000, 4}, {45000, 2}, {60000, 2}}},
		{name: "range subquery", query: "max_over_time(up[30s:15s])", start: s(60), end: s(90), opts: QueryOpts{PerStepStats: true},
			total: 12, perStep: []StepSamples{{60000, 4}, {75000, 4}, {90000, 4}}, series: 2,
			read: []StepSamples{{60000, 4}, {75000, 2}, {90000, 2}}},
		{name: "pinned selector", query: "up @ 30", start: s(30), end: s(60), opts: QueryOpts{PerStepStats: true},
			total: 6, perStep: []StepSamples{{30000, 2}, {45000, 2}, {60000, 2}}, series: 2,
			read: []StepSamples{{30000, 2}, {45000, 0}, {60000, 0}}},
		{name: "subquery", query: "max_over_time(up[1m:15s])", start: s(60), opts: QueryOpts{PerStepStats: true},
			total: 8, perStep: []StepSamples{{60000, 8}}, series: 2},
		{name: "aggregation counts its selector", query: "sum(up)", start: s(0), end: s(30), opts: QueryOpts{PerStepStats: true},
			total: 6, perStep: []StepSamples{{0, 2}, {15000, 2}, {30000, 2}}, series: 1},
		{name: "default lookback 5m", query: "up", start: s(1605), total: 2, series: 2},
		{name: "lookback_delta 1m", query: "up", start: s(1605), opts: QueryOpts{LookbackDelta: time.Minute}, total: 0, series: 0},
		{name: "lookback_delta 3m", query: "up", start: s(1605), opts: QueryOpts{LookbackDelta: 3 * time.Minute}, total: 2, series: 2},
		{name: "range query lookback_delta 1m", query: "up", start: s(1500), end: s(1560), opts: QueryOpts{LookbackDelta: time.Minute, PerStepStats: true},
			total: 6, perStep: []StepSamples{{1500000, 2}, {1515000, 2}, {1530000, 2}, {1545000, 0}, {1560000, 0}}, series: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res *Result
			var err error
			if tc.end.IsZero() {
				res, err = e.InstantWith(context.Background(), tc.query, tc.start, tc.opts)
			} else {
				res, err = e.RangeWith(context.Background(), tc.query, tc.start, tc.end, 15*time.Second, tc.opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			st := res.Stats
			if tc.read != nil && !reflect.DeepEqual(st.ReadPerStep, tc.read) {
				t.Errorf("read per step %v, want %v", st.ReadPerStep, tc.read)
			}
			if st.QueryableSamples != tc.total || !reflect.DeepEqual(st.PerStep, tc.perStep) {
				t.Errorf("samples %d per step %v, want %d %v", st.QueryableSamples, st.PerStep, tc.total, tc.perStep)
			}
			var n int
			switch v := res.Value.(type) {
			case Vector:
				n = len(v)
			case Matrix:
				n = len(v)
			}
			if n != tc.series {
				t.Errorf("%d series, want %d: %v", n, tc.series, res.Value)
			}
			if tc.total > 0 && (st.PeakSamples <= 0 || st.SamplesLoaded <= 0 || st.SeriesLoaded != 2) {
				t.Errorf("peak %d, loaded %d samples of %d series", st.PeakSamples, st.SamplesLoaded, st.SeriesLoaded)
			}
			if st.TotalTime <= 0 || st.TotalTime < st.EvalTime {
				t.Errorf("timings %+v", st)
			}
		})
	}
	if _, err := e.InstantWith(context.Background(), "up", s(0), QueryOpts{LookbackDelta: -time.Second}); err == nil {
		t.Error("a negative lookback delta is accepted")
	}
}
