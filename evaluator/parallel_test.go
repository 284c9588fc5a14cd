package evaluator

import (
	"runtime"
	"testing"
)

// TestParallelismWeighsRangeSteps: an instant query hands out its series
// from minParallelSeries on; a range query's series weigh their steps,
// so that an hour at 15 s over a few hundred series (one histogram
// quantile over a fleet's buckets) is shared by the cores.
func TestParallelismWeighsRangeSteps(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	instant := &evaluator{start: 3600_000, end: 3600_000, interval: 15_000}
	hour := &evaluator{start: 0, end: 3600_000, interval: 15_000} // 241 steps: weight 16
	for _, tc := range []struct {
		ev      *evaluator
		series  int
		workers int
	}{
		{instant, 100, 0}, {instant, 511, 0}, {instant, 1024, 2}, {instant, 1 << 20, 2},
		{hour, 20, 0}, {hour, 32, 1}, {hour, 64, 2}, {hour, 855, 2},
	} {
		if got := tc.ev.parallelism(tc.series); got != tc.workers {
			t.Errorf("%d steps, %d series: %d workers, want %d", tc.ev.numSteps(), tc.series, got, tc.workers)
		}
	}
}
