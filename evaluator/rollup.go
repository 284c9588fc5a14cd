package evaluator

import (
	"fmt"
	"math"
	"slices"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// stepsPerContextCheck is how many steps of one series a rollup
// computes between checks of the query's context.
const stepsPerContextCheck = 1024

// maxRangeMs bounds a range or subquery window, 2^53 ms (285,000
// years), far past any data, so that window arithmetic cannot overflow.
const maxRangeMs = 1 << 53

// rangeSource is a range-vector argument: a range selector or a subquery.
// each tells start the number of series, then hands every series' points
// (sorted, without staleness markers) to fn, with the series' position:
// a rollup over a range selector holds only one series' raw samples per
// worker at a time.
type rangeSource struct {
	rangeMs int64
	mods    selectorMods
	// oneName: every series has the same metric name, so dropping it
	// cannot make two label sets equal.
	oneName bool
	// subquery: the points are a subquery's results, whose samples the
	// subquery counted.
	subquery bool
	each     func(start func(n int), fn func(w *seriesWorker, i int, metric labels.Labels, pts []FPoint), done func(w *seriesWorker))
}

func (ev *evaluator) rangeSource(e *metricsql.RollupExpr) *rangeSource {
	mods := ev.modsOf(e)
	rng := e.Window.Duration(ev.interval)
	if rng <= 0 {
		raise("range must be positive, got %s", e.Window.AppendString(nil))
	}
	if rng > maxRangeMs {
		raiseErr(badQuery("range %s is longer than %d years", e.Window.AppendString(nil), maxRangeMs/(365*24*3600*1000)))
	}
	src := &rangeSource{rangeMs: rng, mods: mods}
	if e.ForSubquery() {
		m := ev.subquery(e, mods, rng)
		src.subquery = true
		src.each = func(start func(int), fn func(*seriesWorker, int, labels.Labels, []FPoint), done func(*seriesWorker)) {
			start(len(m))
			ev.parallelWorkers(len(m), func(w *seriesWorker, i int) { fn(w, i, m[i].Metric, m[i].Floats) }, done)
			ev.release(m.points()) // consumed: what fn keeps, it holds anew
		}
		return src
	}
	me, ok := e.Expr.(*metricsql.MetricExpr)
	if !ok {
		raise("ranges are only allowed for vector selectors, not %s", e.Expr.AppendString(nil))
	}
	first, last := mods.refTime(ev.start), mods.refTime(ev.end)
	src.oneName = pinsMetricName(me)
	src.each = func(start func(int), fn func(*seriesWorker, int, labels.Labels, []FPoint), done func(*seriesWorker)) {
		ev.forSeriesWorkers(me, first-rng+1, last, true, start, fn, done)
	}
	return src
}

// subquery evaluates e.Expr at the subquery's own steps: multiples of its
// step (aligned to 0, as Prometheus aligns them) inside every window the
// outer steps read.
func (ev *evaluator) subquery(e *metricsql.RollupExpr, mods selectorMods, rng int64) Matrix {
	step := e.Step.Duration(ev.interval)
	if step <= 0 {
		step = ev.defaultSubqueryStep
	}
	first, last := mods.refTime(ev.start), mods.refTime(ev.end)
	if rng > maxRangeMs || first < math.MinInt64/4 || last > math.MaxInt64/4 {
		raiseErr(badQuery("subquery range %s reaches beyond the representable time", e.Window.AppendString(nil)))
	}
	start := step * ((first - rng) / step)
	if start <= first-rng {
		start += step
	}
	if start > last {
		return nil
	}
	// Checked before anything is allocated: every series of the
	// subquery has a point per step.
	if steps := (last-start)/step + 1; steps > ev.maxSubquerySteps || steps > ev.maxSamples-ev.held.Load() {
		raiseErr(fmt.Errorf("%w: subquery %s would evaluate %d steps per series, more than the limit of %d "+
			"(query.max_subquery_steps) or than the samples the query may still hold; use a larger step",
			ErrTooManySteps, e.AppendString(nil), steps, min(ev.maxSubquerySteps, ev.maxSamples-ev.held.Load())))
	}
	// The subquery counts its samples per step (one counter a step, fewer
	// than the points it holds): each outer step counts those of the
	// subquery steps in its window.
	sub := &evaluator{queryState: ev.queryState, start: start, end: last, interval: step}
	sub.counts = newStepCounts(sub.numSteps(), true)
	defer ev.countSubquery(sub, mods, rng)
	switch v := sub.eval(e.Expr).(type) {
	case Matrix:
		return v
	case scalarSteps:
		sub.hold(len(v)) // released with the matrix by rangeSource
		pts := make([]FPoint, len(v))
		for i, f := range v {
			pts[i] = FPoint{T: sub.stepTime(i), F: f}
		}
		return Matrix{{Metric: labels.EmptyLabels(), Floats: pts}}
	}
	raise("subquery is only allowed on instant vectors, not %s", e.Expr.AppendString(nil))
	return nil
}

// rollupWindow is what a range function sees at one step: the points of
// one series in (start, end] (window) and the step's scalar arguments.
//
// The window is series[lo:hi], not a slice field set at every step: the
// window lives on the heap (callers keep it as scratch), and storing a
// slice there at every step of every series costs a write barrier each
// while the GC marks — 14% of rollupPoints over a million series.
type rollupWindow struct {
	start, end int64 // milliseconds; start is exclusive
	ts         int64 // the step's evaluation time
	rangeMs    int64
	params     []float64
	ev         *evaluator
	// drops are the indexes of the series' points that are below the
	// point before them (counter resets), ascending; set by reset. A
	// counter function visits the few in its window instead of looking
	// at every point of it at every step.
	drops  []int
	dropAt int // the first of drops after lo, as the last addResets found it
	// series holds all the series' points; lin is the sliding fit of
	// deriv and predict_linear, nil for a new series (allocated by the
	// first fit: other functions do not pay for it).
	series []FPoint
	lo, hi int
	lin    *linState
	// rate is extrapolatedRate's memo; kept across series, whose
	// samples share the scrape interval.
	rate rateMemo
}

// window returns the step's points, oldest first; never empty when a
// range function is called.
func (w *rollupWindow) window() []FPoint { return w.series[w.lo:w.hi] }

// last returns the newest point of the step's window.
func (w *rollupWindow) last() FPoint { return w.series[w.hi-1] }

// reset makes w the window of a new series, keeping its allocations.
func (w *rollupWindow) reset(src *rangeSource, ev *evaluator, pts []FPoint, params int) {
	lin, ps, drops := w.lin, w.params, appendDrops(w.drops[:0], pts)
	if lin != nil {
		*lin = linState{}
	}
	if cap(ps) < params {
		ps = make([]float64, params)
	}
	*w = rollupWindow{rangeMs: src.rangeMs, ev: ev, drops: drops, series: pts, lin: lin, params: ps[:params], rate: w.rate}
}

// appendDrops appends to dst the indexes of the points below the point
// before them, with the comparison a counter reset is detected by (NaN
// is never below).
func appendDrops(dst []int, pts []FPoint) []int {
	for i := 1; i < len(pts); i++ {
		if pts[i].F < pts[i-1].F {
			dst = append(dst, i)
		}
	}
	return dst
}

// addResets adds to a counter's change over the window the value before
// each reset in it, in order, as Prometheus's loop over the window does.
// Windows move forward through a series, and so does the search.
func (w *rollupWindow) addResets(result float64) float64 {
	k := w.dropAt
	if k > 0 && w.drops[k-1] > w.lo {
		k, _ = slices.BinarySearch(w.drops, w.lo+1) // a window behind the last one
	}
	for k < len(w.drops) && w.drops[k] <= w.lo {
		k++
	}
	w.dropAt = k
	for ; k < len(w.drops) && w.drops[k] < w.hi; k++ {
		result += w.series[w.drops[k]-1].F
	}
	return result
}

// rollupFunc computes a range function over a window; ok false means no
// result for this series at this step.
type rollupFunc func(w *rollupWindow) (f float64, ok bool)

// rollup applies fn to every series of src at every step.
func (ev *evaluator) rollup(src *rangeSource, fn rollupFunc, params []scalarSteps, keepName bool) Matrix {
	var out Matrix
	src.each(func(count int) { out = make(Matrix, count) }, func(sw *seriesWorker, si int, metric labels.Labels, pts []FPoint) {
		res := ev.rollupPoints(src, fn, params, pts, nil, &sw.win)
		if len(res) == 0 {
			return
		}
		ev.hold(len(res))
		if !keepName {
			metric = dropName(metric)
		}
		out[si] = Series{Metric: metric, Floats: res}
	}, nil)
	out = compact(out)
	if !keepName && !src.oneName {
		out = ev.mergeSameLabels(out)
	}
	return out
}

// rollupPoints computes fn over one series' points at every step and
// appends the results (at step times) to dst. w is the caller's scratch
// window, reused from series to series (fn gets it by pointer, which
// would otherwise put a window on the heap per series).
func (ev *evaluator) rollupPoints(src *rangeSource, fn rollupFunc, params []scalarSteps, pts, dst []FPoint, w *rollupWindow) []FPoint {
	return ev.rollupPointsCounted(src, fn, params, pts, dst, w, 1)
}

// rollupPointsCounted is rollupPoints for a series that selectors read
// times times (fold_shared.go): its samples count that many times.
func (ev *evaluator) rollupPointsCounted(src *rangeSource, fn rollupFunc, params []scalarSteps, pts, dst []FPoint, w *rollupWindow, times int64) []FPoint {
	n := ev.numSteps()
	w.reset(src, ev, pts, len(params))
	// The samples of every window count once the series is done: one
	// atomic add per series, not per step (per step only when asked).
	var counted, read int64
	defer func() {
		ev.counts.total.Add(counted * times)
		ev.counts.read.Add(read * times)
	}()
	perStep, readByStep := ev.counts.perStep, ev.counts.readByStep
	lo, hi, prevHi := 0, 0, 0
	for i := 0; i < n; i++ {
		if i%stepsPerContextCheck == stepsPerContextCheck-1 {
			// A window of millions of samples at every step of a long
			// range is slow even when it fits in memory.
			ev.checkContext()
		}
		ts := ev.stepTime(i)
		ref := src.mods.refTime(ts)
		for hi < len(pts) && pts[hi].T <= ref {
			hi++
		}
		for lo < hi && pts[lo].T <= ref-src.rangeMs {
			lo++
		}
		if lo == hi {
			prevHi = hi
			continue
		}
		if !src.subquery {
			counted += int64(hi - lo)
			fresh := int64(hi - max(lo, prevHi)) // newer than the previous step's window
			if i == 0 {
				fresh = int64(hi - lo)
			}
			read += fresh
			if perStep != nil {
				perStep[i].Add(int64(hi-lo) * times)
				readByStep[i].Add(fresh * times)
			}
		}
		prevHi = hi
		w.start, w.end, w.ts = ref-src.rangeMs, ref, ts
		w.lo, w.hi = lo, hi
		for k, p := range params {
			w.params[k] = p[i]
		}
		if f, ok := fn(w); ok {
			if dst == nil {
				dst = make([]FPoint, 0, n-i)
			}
			dst = append(dst, FPoint{T: ts, F: f})
		}
	}
	return dst
}

// pinsMetricName reports whether me selects a single metric name.
func pinsMetricName(me *metricsql.MetricExpr) bool {
	if len(me.LabelFilterss) != 1 {
		return false
	}
	for _, lf := range me.LabelFilterss[0] {
		if lf.Label == model.MetricNameLabel && !lf.IsRegexp && !lf.IsNegative {
			return true
		}
	}
	return false
}

// mergeSameLabels joins series whose label sets became equal (after the
// metric name was dropped) when their points do not overlap, and fails
// the query as Prometheus does when they do.
func (ev *evaluator) mergeSameLabels(m Matrix) Matrix {
	if len(m) < 2 {
		return m
	}
	index := make(map[uint64]int, len(m))
	out := m[:0]
	for _, s := range m {
		h := s.Metric.Hash()
		i, dup := index[h]
		if !dup {
			index[h] = len(out)
			out = append(out, s)
			continue
		}
		out[i].Floats = mergePoints(out[i].Floats, s.Floats, s.Metric)
	}
	return out
}

func mergePoints(a, b []FPoint, metric labels.Labels) []FPoint {
	res := make([]FPoint, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].T < b[j].T):
			res = append(res, a[i])
			i++
		case i == len(a) || b[j].T < a[i].T:
			res = append(res, b[j])
			j++
		default:
			raise("vector cannot contain metrics with the same labelset")
		}
	}
	return res
}
