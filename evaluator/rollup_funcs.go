package evaluator

import (
	"math"
	"sort"
)

// rollupDef describes a range function: its computation, the scalar
// parameters it takes before or after the range argument, and whether it
// keeps the metric name.
type rollupDef struct {
	fn       rollupFunc
	keepName bool
}

var rollupFuncs = map[string]rollupDef{
	"avg_over_time":                {fn: avgOverTime},
	"count_over_time":              {fn: func(w *rollupWindow) (float64, bool) { return float64(len(w.window())), true }},
	"sum_over_time":                {fn: sumOverTime},
	"min_over_time":                {fn: compareOverTime(func(cur, m float64) bool { return cur < m || math.IsNaN(m) }, false)},
	"max_over_time":                {fn: compareOverTime(func(cur, m float64) bool { return cur > m || math.IsNaN(m) }, false)},
	"ts_of_min_over_time":          {fn: compareOverTime(func(cur, m float64) bool { return cur <= m || math.IsNaN(m) }, true)},
	"ts_of_max_over_time":          {fn: compareOverTime(func(cur, m float64) bool { return cur >= m || math.IsNaN(m) }, true)},
	"last_over_time":               {fn: func(w *rollupWindow) (float64, bool) { return w.last().F, true }, keepName: true},
	"first_over_time":              {fn: func(w *rollupWindow) (float64, bool) { return w.window()[0].F, true }, keepName: true},
	"ts_of_last_over_time":         {fn: func(w *rollupWindow) (float64, bool) { return float64(w.last().T) / 1000, true }},
	"ts_of_first_over_time":        {fn: func(w *rollupWindow) (float64, bool) { return float64(w.window()[0].T) / 1000, true }},
	"present_over_time":            {fn: func(*rollupWindow) (float64, bool) { return 1, true }},
	"stddev_over_time":             {fn: func(w *rollupWindow) (float64, bool) { return math.Sqrt(varianceOf(w.window())), true }},
	"stdvar_over_time":             {fn: func(w *rollupWindow) (float64, bool) { return varianceOf(w.window()), true }},
	"mad_over_time":                {fn: madOverTime},
	"quantile_over_time":           {fn: quantileOverTime},
	"changes":                      {fn: changes},
	"resets":                       {fn: resets},
	"rate":                         {fn: func(w *rollupWindow) (float64, bool) { return extrapolatedRate(w, true, true) }},
	"increase":                     {fn: func(w *rollupWindow) (float64, bool) { return extrapolatedRate(w, true, false) }},
	"delta":                        {fn: func(w *rollupWindow) (float64, bool) { return extrapolatedRate(w, false, false) }},
	"irate":                        {fn: func(w *rollupWindow) (float64, bool) { return instantDelta(w, true) }},
	"idelta":                       {fn: func(w *rollupWindow) (float64, bool) { return instantDelta(w, false) }},
	"deriv":                        {fn: deriv},
	"predict_linear":               {fn: predictLinear},
	"double_exponential_smoothing": {fn: doubleExponentialSmoothing},
}

// kahanInc adds inc to a Kahan-Neumaier compensated sum.
func kahanInc(inc, sum, c float64) (float64, float64) {
	t := sum + inc
	switch {
	case math.IsInf(t, 0):
		c = 0
	case math.Abs(sum) >= math.Abs(inc):
		c += (sum - t) + inc
	default:
		c += (inc - t) + sum
	}
	return t, c
}

func sumOverTime(w *rollupWindow) (float64, bool) {
	var sum, c float64
	for _, p := range w.window() {
		sum, c = kahanInc(p.F, sum, c)
	}
	if math.IsInf(sum, 0) {
		return sum, true
	}
	return sum + c, true
}

// avgOverTime sums directly while the sum stays finite and switches to an
// incremental mean when it would overflow, as Prometheus does.
func avgOverTime(w *rollupWindow) (float64, bool) {
	pts := w.window()
	sum, count := pts[0].F, 1.0
	var mean, c float64
	incremental := false
	for i, p := range pts[1:] {
		count = float64(i + 2)
		if !incremental {
			ns, nc := kahanInc(p.F, sum, c)
			if !math.IsInf(ns, 0) {
				sum, c = ns, nc
				continue
			}
			incremental = true
			mean = sum / (count - 1)
			c /= count - 1
		}
		q := (count - 1) / count
		mean, c = kahanInc(p.F/count, q*mean, q*c)
	}
	if incremental {
		return mean + c, true
	}
	return sum/count + c/count, true
}

func compareOverTime(better func(cur, best float64) bool, timestamp bool) rollupFunc {
	return func(w *rollupWindow) (float64, bool) {
		pts := w.window()
		best, at := pts[0].F, pts[0].T
		for _, p := range pts {
			if better(p.F, best) {
				best, at = p.F, p.T
			}
		}
		if timestamp {
			return float64(at) / 1000, true
		}
		return best, true
	}
}

// varianceOf is the population variance by Welford's method with Kahan
// compensation.
func varianceOf(pts []FPoint) float64 {
	var count, mean, cMean, aux, cAux float64
	for _, p := range pts {
		count++
		delta := p.F - (mean + cMean)
		mean, cMean = kahanInc(delta/count, mean, cMean)
		aux, cAux = kahanInc(delta*(p.F-(mean+cMean)), aux, cAux)
	}
	return (aux + cAux) / count
}

func madOverTime(w *rollupWindow) (float64, bool) {
	pts := w.window()
	vals := make([]float64, len(pts))
	for i, p := range pts {
		if math.IsNaN(p.F) {
			return math.NaN(), true
		}
		vals[i] = p.F
	}
	median := quantileOf(0.5, vals)
	for i := range vals {
		vals[i] = math.Abs(vals[i] - median)
	}
	return quantileOf(0.5, vals), true
}

func quantileOverTime(w *rollupWindow) (float64, bool) {
	q := w.params[0]
	if math.IsNaN(q) || q < 0 || q > 1 {
		w.ev.annotate(false, quantileWarning(q))
	}
	pts := w.window()
	vals := make([]float64, len(pts))
	for i, p := range pts {
		vals[i] = p.F
	}
	return quantileOf(q, vals), true
}

// quantileOf is Prometheus's quantile: linear interpolation between the
// closest ranks, -Inf below 0 and +Inf above 1. It sorts vals.
func quantileOf(q float64, vals []float64) float64 {
	if len(vals) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(+1)
	}
	sort.Float64s(vals)
	n := float64(len(vals))
	rank := q * (n - 1)
	lower := math.Max(0, math.Floor(rank))
	upper := math.Min(n-1, lower+1)
	weight := rank - math.Floor(rank)
	if weight == 0 {
		return vals[int(lower)] // and not an interpolation with ±Inf
	}
	return vals[int(lower)]*(1-weight) + vals[int(upper)]*weight
}

func changes(w *rollupWindow) (float64, bool) {
	n := 0
	pts := w.window()
	prev := pts[0].F
	for _, p := range pts[1:] {
		if p.F != prev && !(math.IsNaN(p.F) && math.IsNaN(prev)) {
			n++
		}
		prev = p.F
	}
	return float64(n), true
}

func resets(w *rollupWindow) (float64, bool) {
	n := 0
	pts := w.window()
	prev := pts[0].F
	for _, p := range pts[1:] {
		if p.F < prev {
			n++
		}
		prev = p.F
	}
	return float64(n), true
}

// extrapolatedRate is Prometheus's rate, increase and delta: the change
// over the window, corrected for counter resets, extrapolated to the
// window's edges unless the series starts or ends inside it.
func extrapolatedRate(w *rollupWindow, isCounter, isRate bool) (float64, bool) {
	pts := w.window()
	if len(pts) < 2 {
		return 0, false
	}
	first, last := pts[0], pts[len(pts)-1]
	result := last.F - first.F
	if isCounter && len(w.drops) > 0 {
		result = w.addResets(result)
	}
	m := &w.rate
	toFirst, fromLast, span := first.T-w.start, w.end-last.T, last.T-first.T
	if m.toFirst != toFirst || m.fromLast != fromLast || m.span != span || m.n != len(pts) || m.rangeMs != w.rangeMs || m.isRate != isRate {
		m.set(toFirst, fromLast, span, len(pts), w.rangeMs, isRate)
	}
	if isCounter && result > 0 && first.F >= 0 && m.zeroBeforeStart(first.F, result) {
		toStart := m.toStart
		if toZero := m.sampled * (first.F / result); toZero < toStart {
			toStart = toZero // a counter does not extrapolate to before it was zero
		}
		return result * extrapolationFactor(toStart, m.toEnd, m.sampled, w.rangeMs, isRate), true
	}
	return result * m.factor, true
}

// rateMemo keeps what extrapolatedRate derives from the last window
// shape it saw: where the window's first and last samples lie in it and
// how many it holds. The steps of a range query over a series scraped at
// a steady interval mostly see one shape, and the divisions were a third
// of such a query. The factor is the one for a window whose counter's
// zero point does not shorten the extrapolation to the start, which
// zeroBeforeStart rules out from the values.
type rateMemo struct {
	toFirst, fromLast, span, rangeMs int64 // milliseconds
	n                                int   // samples; 0: no shape yet
	isRate                           bool
	toStart, toEnd, sampled          float64 // seconds, as Prometheus derives them
	factor                           float64
}

// set computes the durations and the factor of a shape operation for
// operation as Prometheus's extrapolatedRate does, so that results are
// bit-identical.
func (m *rateMemo) set(toFirst, fromLast, span int64, n int, rangeMs int64, isRate bool) {
	*m = rateMemo{toFirst: toFirst, fromLast: fromLast, span: span, rangeMs: rangeMs, n: n, isRate: isRate}
	m.toStart = float64(toFirst) / 1000
	m.toEnd = float64(fromLast) / 1000
	m.sampled = float64(span) / 1000
	avgStep := m.sampled / float64(n-1)
	threshold := avgStep * 1.1
	if m.toStart >= threshold {
		m.toStart = avgStep / 2
	}
	if m.toEnd >= threshold {
		m.toEnd = avgStep / 2
	}
	m.factor = extrapolationFactor(m.toStart, m.toEnd, m.sampled, rangeMs, isRate)
}

// zeroBeforeStart reports whether a counter's extrapolation to zero,
// sampled × (first / result), may fall short of toStart. It answers
// false only when first × sampled > 2 × toStart × result in floating
// point: rounding is monotonic, so then the exact products compare so
// too, and the quotient's two roundings lose far less than the factor of
// two. An infinite result answers true.
func (m *rateMemo) zeroBeforeStart(first, result float64) bool {
	if m.toStart == 0 {
		return false // toZero ≥ 0 when first ≥ 0 and result > 0
	}
	return !(first*m.sampled > 2*m.toStart*result)
}

// extrapolationFactor is what a window's change is multiplied by.
func extrapolationFactor(toStart, toEnd, sampled float64, rangeMs int64, isRate bool) float64 {
	factor := 1.0
	if sampled != 0 {
		factor = (sampled + toStart + toEnd) / sampled
	}
	if isRate {
		factor /= float64(rangeMs) / 1000
	}
	return factor
}

// instantDelta is irate and idelta: from the last two samples.
func instantDelta(w *rollupWindow, isRate bool) (float64, bool) {
	pts := w.window()
	if len(pts) < 2 {
		return 0, false
	}
	prev, last := pts[len(pts)-2], pts[len(pts)-1]
	d := last.F - prev.F
	if isRate && last.F < prev.F {
		d = last.F // counter reset
	}
	if !isRate {
		return d, true
	}
	dt := last.T - prev.T
	if dt == 0 {
		return 0, false
	}
	return d / (float64(dt) / 1000), true
}

// linearRegression fits the points by least squares with x in seconds
// from interceptTime.
func linearRegression(pts []FPoint, interceptTime int64) (slope, intercept float64) {
	var n, sumX, cX, sumY, cY, sumXY, cXY, sumX2, cX2 float64
	initY, constY := pts[0].F, true
	for i, p := range pts {
		if constY && i > 0 && p.F != initY {
			constY = false
		}
		n++
		x := float64(p.T-interceptTime) / 1e3
		sumX, cX = kahanInc(x, sumX, cX)
		sumY, cY = kahanInc(p.F, sumY, cY)
		sumXY, cXY = kahanInc(x*p.F, sumXY, cXY)
		sumX2, cX2 = kahanInc(x*x, sumX2, cX2)
	}
	if constY {
		if math.IsInf(initY, 0) {
			return math.NaN(), math.NaN()
		}
		return 0, initY
	}
	sumX, sumY, sumXY, sumX2 = sumX+cX, sumY+cY, sumXY+cXY, sumX2+cX2
	covXY := sumXY - sumX*sumY/n
	varX := sumX2 - sumX*sumX/n
	slope = covXY / varX
	return slope, sumY/n - slope*sumX/n
}

func doubleExponentialSmoothing(w *rollupWindow) (float64, bool) {
	sf, tf := w.params[0], w.params[1]
	if sf <= 0 || sf >= 1 {
		raise("invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf)
	}
	if tf <= 0 || tf >= 1 {
		raise("invalid trend factor. Expected: 0 < tf < 1, got: %f", tf)
	}
	pts := w.window()
	if len(pts) < 2 {
		return 0, false
	}
	var s0, s1, b float64
	s1 = pts[0].F
	b = pts[1].F - pts[0].F
	for i := 1; i < len(pts); i++ {
		x := sf * pts[i].F
		if i > 1 {
			b = tf*(s1-s0) + (1-tf)*b
		}
		y := (1 - sf) * (s1 + b)
		s0, s1 = s1, x+y
	}
	return s1, true
}

func quantileWarning(q float64) string {
	return "PromQL warning: quantile value should be between 0 and 1, got " + formatFloat(q)
}
