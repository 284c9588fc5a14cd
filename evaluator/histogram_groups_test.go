package evaluator

import (
	"context"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestEachClassicHistogramGroupsOnce: buckets listed out of order, a
// bucket missing at a step, two histograms and a malformed le. Each
// step must see its group's buckets present at that step, sorted by
// upper bound.
func TestEachClassicHistogramGroupsOnce(t *testing.T) {
	b := func(inst, le string, pts ...FPoint) Series {
		return Series{Metric: labels.FromStrings("__name__", "x_bucket", "instance", inst, "le", le), Floats: pts}
	}
	p := func(t int64, f float64) FPoint { return FPoint{T: t, F: f} }
	m := Matrix{
		b("a", "+Inf", p(0, 10), p(1000, 20), p(2000, 30)),
		b("b", "1", p(0, 1), p(2000, 3)),
		b("a", "0.5", p(0, 2), p(2000, 6)), // missing at 1000
		b("a", "bad", p(0, 99)),
		b("b", "+Inf", p(0, 4), p(1000, 5), p(2000, 6)),
		b("a", "1", p(0, 5), p(1000, 15), p(2000, 25)),
	}
	ev := &evaluator{queryState: &queryState{ctx: context.Background(), maxSamples: 1000}, start: 0, end: 2000, interval: 1000}
	var seen []string
	got := ev.eachClassicHistogram(m, func(step int, bs []bucket) (float64, bool) {
		s := ""
		for _, x := range bs {
			s += formatFloat(x.upperBound) + ":" + formatFloat(x.count) + " "
		}
		seen = append(seen, s)
		return float64(len(bs)), true
	})
	want := []string{
		"0.5:2 1:5 +Inf:10 ", "1:1 +Inf:4 ",
		"1:15 +Inf:20 ", "+Inf:5 ",
		"0.5:6 1:25 +Inf:30 ", "1:3 +Inf:6 ",
	}
	if len(seen) != len(want) {
		t.Fatalf("steps saw %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("call %d saw %q, want %q", i, seen[i], want[i])
		}
	}
	if len(got) != 2 || got[0].Metric.String() != `{instance="a"}` || got[1].Metric.String() != `{instance="b"}` ||
		len(got[0].Floats) != 3 || got[0].Floats[1] != (FPoint{T: 1000, F: 2}) {
		t.Errorf("result %v", got)
	}
	if len(ev.annos) == 0 {
		t.Error("no warning for the malformed le")
	}
	if q, _ := bucketQuantile(0.5, []bucket{{1, 5}, {0.5, 2}, {math.Inf(1), 10}}); q != 1 {
		t.Errorf("unsorted buckets: median %v, want 1", q)
	}
}
