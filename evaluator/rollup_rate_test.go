package evaluator

import (
	"math"
	"math/rand/v2"
	"testing"
)

// prometheusExtrapolatedRate is Prometheus's extrapolatedRate over a
// window's points, written out as it computes it: the reference the
// memoised factor must equal bit for bit.
func prometheusExtrapolatedRate(pts []FPoint, start, end, rangeMs int64, isCounter, isRate bool) (float64, bool) {
	if len(pts) < 2 {
		return 0, false
	}
	first, last := pts[0], pts[len(pts)-1]
	result := last.F - first.F
	if isCounter {
		for i := 1; i < len(pts); i++ {
			if pts[i].F < pts[i-1].F {
				result += pts[i-1].F
			}
		}
	}
	durationToStart := float64(first.T-start) / 1000
	durationToEnd := float64(end-last.T) / 1000
	sampledInterval := float64(last.T-first.T) / 1000
	averageDurationBetweenSamples := sampledInterval / float64(len(pts)-1)
	extrapolationThreshold := averageDurationBetweenSamples * 1.1
	if durationToStart >= extrapolationThreshold {
		durationToStart = averageDurationBetweenSamples / 2
	}
	if isCounter {
		durationToZero := durationToStart
		if result > 0 && first.F >= 0 {
			durationToZero = sampledInterval * (first.F / result)
		}
		if durationToZero < durationToStart {
			durationToStart = durationToZero
		}
	}
	if durationToEnd >= extrapolationThreshold {
		durationToEnd = averageDurationBetweenSamples / 2
	}
	factor := 1.0
	if sampledInterval != 0 {
		factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval
	}
	if isRate {
		factor /= float64(rangeMs) / 1000
	}
	return result * factor, true
}

// rateSeries generates series whose windows put the memo to the test:
// counters that start at or near zero (the zero point shortens the
// extrapolation, sometimes by a hair), values at the edges of the
// floating-point range, and irregular timestamps (a shape per step).
func rateSeries(r *rand.Rand, kind string, n int) []FPoint {
	pts := make([]FPoint, 0, n)
	t, v := int64(1_700_000_000_000), 0.0
	for i := 0; i < n; i++ {
		t += 15000
		if r.IntN(12) == 0 {
			t += int64(r.IntN(4)) * 15000
		}
		switch kind {
		case "from_zero":
			if r.IntN(30) == 0 {
				v = 0
			}
			v += float64(r.IntN(3))
		case "near_cut":
			// Restarts from a value whose zero point lies around the
			// window's start: sampled × first/result near toStart.
			if i%20 == 0 {
				v = 1.5 * r.Float64()
			} else {
				v++
			}
		case "tiny":
			v += math.SmallestNonzeroFloat64 * float64(r.IntN(1<<20))
		case "small":
			v += 0x1p-950 * r.Float64()
		case "huge":
			v = math.MaxFloat64 * r.Float64()
		case "special":
			switch r.IntN(10) {
			case 0:
				v = math.NaN()
			case 1:
				v = math.Inf(1 - 2*r.IntN(2))
			case 2:
				v = -r.Float64()
			default:
				v += r.Float64() * 100
			}
		case "jittered":
			t += int64(r.IntN(9)) - 4
			v += r.Float64() * 1e3
		}
		pts = append(pts, FPoint{T: t, F: v})
	}
	return pts
}

// TestRateMemoMatchesPrometheus slides rate, increase and delta over
// windows of many series with one window value, as a query's worker
// does, so that the memo carries over from step to step and series to
// series, and compares each value with Prometheus's computation bit for
// bit.
func TestRateMemoMatchesPrometheus(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	fns := []struct {
		name              string
		isCounter, isRate bool
	}{{"rate", true, true}, {"increase", true, false}, {"delta", false, false}}
	var w rollupWindow
	memoised, total := 0, 0
	for _, kind := range []string{"from_zero", "near_cut", "tiny", "small", "huge", "special", "jittered"} {
		for _, rangeMs := range []int64{30_000, 120_000, 300_000, 3600_000} {
			pts := rateSeries(r, kind, 800)
			type span struct{ lo, hi int }
			var windows []span
			var ends []int64
			lo, hi := 0, 0
			for ts := pts[0].T - rangeMs/2; ts <= pts[len(pts)-1].T+rangeMs; ts += 15_000 {
				for hi < len(pts) && pts[hi].T <= ts {
					hi++
				}
				for lo < hi && pts[lo].T <= ts-rangeMs {
					lo++
				}
				if lo < hi {
					windows, ends = append(windows, span{lo, hi}), append(ends, ts)
				}
			}
			for _, fn := range fns {
				w = rollupWindow{rangeMs: rangeMs, series: pts, drops: appendDrops(nil, pts), rate: w.rate}
				// Forward as a query's steps go, then backward: the
				// search for resets must not assume the order.
				for pass := range 2 {
					for k := range windows {
						if pass == 1 {
							k = len(windows) - 1 - k
						}
						ts := ends[k]
						w.lo, w.hi, w.start, w.end = windows[k].lo, windows[k].hi, ts-rangeMs, ts
						before := w.rate
						got, ok := extrapolatedRate(&w, fn.isCounter, fn.isRate)
						want, wantOK := prometheusExtrapolatedRate(pts[w.lo:w.hi], ts-rangeMs, ts, rangeMs, fn.isCounter, fn.isRate)
						if ok != wantOK || math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
							t.Fatalf("%s %s range %d at %d (%d points, pass %d): got %v (%v), Prometheus %v (%v)", kind, fn.name, rangeMs, ts, w.hi-w.lo, pass, got, ok, want, wantOK)
						}
						if ok {
							total++
							if before == w.rate {
								memoised++
							}
						}
					}
				}
			}
		}
	}
	// The memo must serve most steps, or it is not what makes rate cheap.
	if memoised < total/2 {
		t.Errorf("the memo served %d of %d steps", memoised, total)
	}
}

// TestRateMemoZeroCut: the zero point of a counter that starts near zero
// shortens the extrapolation to the start, one step with the memo's
// shape and the next with the same shape but a value that does not.
func TestRateMemoZeroCut(t *testing.T) {
	mk := func(first float64) []FPoint {
		return []FPoint{{T: 20_000, F: first}, {T: 35_000, F: first + 10}, {T: 50_000, F: first + 20}}
	}
	var w rollupWindow
	for _, first := range []float64{1000, 0, 0.5, 1000, 0x1p-1060, 1, 1e300} {
		pts := mk(first)
		w = rollupWindow{rangeMs: 60_000, series: pts, lo: 0, hi: len(pts), start: 0, end: 60_000, rate: w.rate}
		got, _ := extrapolatedRate(&w, true, true)
		want, _ := prometheusExtrapolatedRate(pts, 0, 60_000, 60_000, true, true)
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("first sample %v: rate %v, Prometheus %v", first, got, want)
		}
	}
}
