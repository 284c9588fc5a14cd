package evaluator

import (
	"context"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestPairBinopBuildsEachSeriesOnce: a one-to-one vector operation over
// unique pairs allocates each output series' points once (no per-point
// label lookup or regrowth), keeps only the points both sides have, and
// holds exactly the points it returns.
func TestPairBinopBuildsEachSeriesOnce(t *testing.T) {
	const series, steps = 100, 240
	lm, rm := make(Matrix, series), make(Matrix, series)
	pairs := make([]seriesPair, series)
	for k := range series {
		lset := labels.FromStrings("k", strconv.Itoa(k))
		lm[k], rm[k] = Series{Metric: lset}, Series{Metric: lset}
		for i := range steps {
			lm[k].Floats = append(lm[k].Floats, FPoint{T: int64(i) * 1000, F: float64(i)})
			if i%2 == 0 || k%3 == 0 {
				rm[k].Floats = append(rm[k].Floats, FPoint{T: int64(i) * 1000, F: 2})
			}
		}
		pairs[k] = seriesPair{l: k, r: k, metric: lset}
	}
	ev := &evaluator{queryState: &queryState{ctx: context.Background(), maxSamples: 1 << 40}, start: 0, end: steps * 1000, interval: 1000}
	var out Matrix
	allocs := testing.AllocsPerRun(5, func() {
		ev.held.Store(0)
		out = ev.pairBinop(binaryOps[">"], lm, rm, pairs, false, false)
	})
	if allocs > series+8 {
		t.Errorf("%.0f allocations for %d output series", allocs, series)
	}
	points := 0
	for k, s := range out {
		for _, p := range s.Floats {
			if p.F <= 2 || (k%3 != 0 && p.T/1000%2 != 0) {
				t.Fatalf("series %d: point %v should have been dropped", k, p)
			}
		}
		points += len(s.Floats)
	}
	if len(out) != series || int64(points) != ev.held.Load() {
		t.Errorf("%d series, %d points, %d held", len(out), points, ev.held.Load())
	}
}
