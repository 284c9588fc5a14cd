package evaluator

import (
	"math"
	"testing"
)

// TestSumIntoMatchesAccumulate: the fold's sum loop leaves every step's
// state as accumulate("sum") does, for points a step apart, points with
// gaps between them (a series absent at some steps), a first point past
// the first step, and values whose sum needs Kahan's compensation or
// overflows.
func TestSumIntoMatchesAccumulate(t *testing.T) {
	const start, interval, steps = 1000, 15, 12
	series := [][]FPoint{
		{{T: 1000, F: 1}, {T: 1015, F: 1e100}, {T: 1030, F: 3}, {T: 1045, F: 4}},
		{{T: 1015, F: 1}, {T: 1030, F: -1e100}, {T: 1090, F: 0.1}, {T: 1105, F: 0.2}, {T: 1165, F: 7}},
		{{T: 1030, F: math.MaxFloat64}, {T: 1045, F: math.NaN()}, {T: 1060, F: 0.3}, {T: 1165, F: math.Inf(-1)}},
		{{T: 1030, F: math.MaxFloat64}, {T: 1075, F: math.Copysign(0, -1)}, {T: 1090, F: 1e-300}},
	}
	want := make([]groupState, steps)
	got := make([]groupState, steps)
	for _, pts := range series {
		for _, pt := range pts {
			accumulate("sum", &want[(pt.T-start)/interval], pt.F)
		}
		sumInto(got, pts, start, interval)
	}
	for k := range want {
		w, g := want[k], got[k]
		if w.seen != g.seen || w.count != g.count || !sameFloat(w.value, g.value) || !sameFloat(w.c, g.c) || !sameFloat(w.mean, g.mean) {
			t.Errorf("step %d: sumInto %+v, accumulate %+v", k, g, w)
		}
		if w.seen && !sameFloat(finish("sum", &w), finish("sum", &g)) {
			t.Errorf("step %d: sum %v, want %v", k, finish("sum", &g), finish("sum", &w))
		}
	}
}

func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// BenchmarkFoldSum folds the rolled-up points of 1,000 series at 241
// steps (a 1 h range at 15 s) into 40 groups, with accumulate point by
// point and with sumInto.
func BenchmarkFoldSum(b *testing.B) {
	const steps, series, groups = 241, 1000, 40
	pts := make([]FPoint, steps)
	for i := range pts {
		pts[i] = FPoint{T: int64(i) * 15000, F: float64(i%13) * 0.37}
	}
	tables := make([][]groupState, groups)
	for i := range tables {
		tables[i] = make([]groupState, steps)
	}
	b.Run("accumulate", func(b *testing.B) {
		for b.Loop() {
			for s := range series {
				st := tables[s%groups]
				for _, pt := range pts {
					accumulate("sum", &st[pt.T/15000], pt.F)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series*steps), "ns/point")
	})
	b.Run("sumInto", func(b *testing.B) {
		for b.Loop() {
			for s := range series {
				sumInto(tables[s%groups], pts, 0, 15000)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series*steps), "ns/point")
	})
}
