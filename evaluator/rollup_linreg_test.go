package evaluator

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// slideWindows calls fn at every step of a range query over pts, as
// rollupPoints moves the window, with the window's own bounds.
func slideWindows(pts []FPoint, rangeMs, step, start, end int64, params []float64, fn rollupFunc, check func(w *rollupWindow, got float64, ok bool)) {
	w := rollupWindow{rangeMs: rangeMs, series: pts, params: params}
	lo, hi := 0, 0
	for ts := start; ts <= end; ts += step {
		for hi < len(pts) && pts[hi].T <= ts {
			hi++
		}
		for lo < hi && pts[lo].T <= ts-rangeMs {
			lo++
		}
		if lo == hi {
			continue
		}
		w.lo, w.hi, w.ts, w.start, w.end = lo, hi, ts, ts-rangeMs, ts
		f, ok := fn(&w)
		check(&w, f, ok)
	}
}

// linregSeries generates a series of a kind: each a case the sliding fit
// must get right or hand to the direct fit.
func linregSeries(r *rand.Rand, kind string, n int) []FPoint {
	pts := make([]FPoint, 0, n)
	t, v := int64(1_700_000_000_000), 1e9*r.Float64()
	for i := 0; i < n; i++ {
		t += 15000
		if r.IntN(10) == 0 {
			t += int64(r.IntN(5)) * 15000 // gaps: missed scrapes, empty windows
		}
		if kind != "jittered" {
			t -= t % 1000
		} else {
			t += int64(r.IntN(7)) - 3
		}
		switch kind {
		case "linear":
			v = 1e9 + 1234.5*float64(i)
		case "growing", "jittered":
			v += 1e4 * r.Float64()
		case "counter_resets":
			v += 100 * r.Float64()
			if r.IntN(40) == 0 {
				v = 0
			}
		case "noise":
			v = r.NormFloat64()
		case "huge_offset":
			v = 1e15 + r.Float64()
		case "flat_runs":
			if r.IntN(8) == 0 {
				v = float64(r.IntN(3))
			}
		case "special":
			switch r.IntN(12) {
			case 0:
				v = math.NaN()
			case 1:
				v = math.Inf(1 - 2*r.IntN(2))
			case 2:
				v = 1e300
			default:
				v = r.NormFloat64() * 1e6
			}
		case "jumps":
			v = float64(r.IntN(2)) * 1e12 * r.Float64()
		}
		pts = append(pts, FPoint{T: t, F: v})
	}
	return pts
}

// TestSlidingFitMatchesDirectFit compares deriv and predict_linear over
// sliding windows with the direct fit of each window (Prometheus's
// computation): equal within 1e-10 of the value (bit for bit where the
// sliding fit hands over), NaN where it is NaN; and the sliding fit must
// really slide on well-conditioned data.
func TestSlidingFitMatchesDirectFit(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, kind := range []string{"linear", "growing", "jittered", "counter_resets", "noise", "huge_offset", "flat_runs", "special", "jumps"} {
		for _, c := range []struct {
			rangeMs, step int64
		}{{60_000, 15_000}, {300_000, 15_000}, {4 * 3600_000, 15_000}, {600_000, 60_000}, {1_800_000, 7_000}, {30_000, 15_000}} {
			pts := linregSeries(r, kind, 1500)
			start, end := pts[0].T-c.rangeMs/2, pts[len(pts)-1].T+c.rangeMs
			var slid, total int
			check := func(direct func(w *rollupWindow) float64) func(*rollupWindow, float64, bool) {
				return func(w *rollupWindow, got float64, ok bool) {
					if len(w.window()) < 2 {
						if ok {
							t.Fatalf("%s: a value for a window of %d points", kind, len(w.window()))
						}
						return
					}
					total++
					if w.lin != nil && w.lin.ops > 0 {
						slid++
					}
					want := direct(w)
					if !ok || !(got == want || math.IsNaN(got) && math.IsNaN(want) || almostEqual(got, want, 1e-10)) {
						t.Fatalf("%s range %d step %d at %d (%d points): got %v (%v), direct fit %v", kind, c.rangeMs, c.step, w.ts, len(w.window()), got, ok, want)
					}
				}
			}
			slideWindows(pts, c.rangeMs, c.step, start, end, nil, deriv, check(func(w *rollupWindow) float64 {
				s, _ := linearRegression(w.window(), w.window()[0].T)
				return s
			}))
			for _, dur := range []float64{0, 3600, -600, 4 * 3600} {
				slideWindows(pts, c.rangeMs, c.step, start, end, []float64{dur}, predictLinear, check(func(w *rollupWindow) float64 {
					s, i := linearRegression(w.window(), w.ts)
					return s*dur + i
				}))
			}
			if kind == "linear" || kind == "growing" || kind == "jittered" {
				if c.rangeMs > c.step && slid < total/2 {
					t.Errorf("%s range %d step %d: the fit slid at %d of %d steps", kind, c.rangeMs, c.step, slid, total)
				}
			}
		}
	}
}

// TestSlidingFitEdgeCases: windows of 0, 1 and 2 points, equal values,
// and a huge value that leaves the window.
func TestSlidingFitEdgeCases(t *testing.T) {
	pts := []FPoint{{T: 1000, F: 5}, {T: 16000, F: 5}, {T: 31000, F: 5}, {T: 46000, F: 1e250}, {T: 61000, F: 7}, {T: 76000, F: 8}, {T: 91000, F: 9}, {T: 400000, F: 10}, {T: 415000, F: 12}}
	for _, rangeMs := range []int64{15000, 16000, 30000, 45000, 100000} {
		slideWindows(pts, rangeMs, 1000, 0, 500000, []float64{60}, predictLinear, func(w *rollupWindow, got float64, ok bool) {
			if len(w.window()) < 2 {
				if ok {
					t.Fatalf("value for %d points", len(w.window()))
				}
				return
			}
			s, i := linearRegression(w.window(), w.ts)
			if want := s*60 + i; !ok || !(got == want || almostEqual(got, want, 1e-10)) {
				t.Fatalf("range %d at %d: got %v, want %v", rangeMs, w.ts, got, want)
			}
		})
	}
}

// TestRollupWindowReused: rollupPoints reuses the caller's window from
// series to series, and a reused window starts each series afresh (no
// sliding-fit state carried over from the previous series).
func TestRollupWindowReused(t *testing.T) {
	ev := &evaluator{queryState: &queryState{ctx: context.Background(), maxSamples: 1 << 40}, start: 600_000, end: 1_800_000, interval: 15_000}
	ev.counts = newStepCounts(ev.numSteps(), false)
	src := &rangeSource{rangeMs: 300_000}
	// a's last fit is of its points [38, 40); b starts 18 scrapes
	// earlier, so that its first window is [39, 59): state left over from
	// a would slide on instead of starting afresh.
	var a, b []FPoint
	for i := range 150 {
		if i < 40 {
			a = append(a, FPoint{T: int64(i) * 15000, F: 1e6 + float64(i*i)})
		}
		b = append(b, FPoint{T: int64(i-18) * 15000, F: 5 + 3*float64(i)})
	}
	params := []scalarSteps{make(scalarSteps, ev.numSteps())}
	for i := range params[0] {
		params[0][i] = 600
	}
	var win rollupWindow
	want := ev.rollupPoints(src, predictLinear, params, b, nil, &rollupWindow{})
	ev.rollupPoints(src, predictLinear, params, a, nil, &win)
	if got := ev.rollupPoints(src, predictLinear, params, b, nil, &win); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after another series the window answers\n%v\nwant\n%v", got, want)
	}
	dst := make([]FPoint, 0, ev.numSteps())
	if allocs := testing.AllocsPerRun(10, func() {
		ev.rollupPoints(src, rollupFuncs["rate"].fn, nil, a, dst[:0], &win)
	}); allocs != 0 {
		t.Errorf("rate over a series allocates %.0f times with a reused window and result", allocs)
	}
}
