package evaluator

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// The SLO and dashboard latency queries are histogram_quantile over a
// range function of a bucket selector, summed by le or not:
//
//	histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket[5m]))
//	histogram_quantile(0.99, sum by (instance, le) (rate(..._bucket[5m])))
//
// Evaluated node by node, the rate of every bucket series is a series of
// its own (thousands of them, a point per step each), which the histogram
// then walks step by step across all of them. Fused, the bucket series
// are grouped by histogram from their labels before any sample is read,
// and a worker takes a whole histogram at a time: it rolls its bucket
// series up into a scratch table of bucket × step, computes the
// histogram's value at every step from it, and keeps only those points.

// histogramFusion can be turned off by tests, to compare the fused
// evaluation with the node-by-node one.
var histogramFusion = true

// fusedHistogramShape is the bucket argument of a histogram function that
// fusedHistogram evaluates: a range function (call, def) of a selector
// (re, me) with one metric name, optionally summed (sum is set) by g.
type fusedHistogramShape struct {
	call *metricsql.FuncExpr
	def  rollupDef
	re   *metricsql.RollupExpr
	me   *metricsql.MetricExpr
	sum  bool
	g    grouping
}

// fusedHistogramShapeOf reports whether arg, the buckets of a histogram
// function, is of the fused shape.
func (ev *evaluator) fusedHistogramShapeOf(arg metricsql.Expr) (fusedHistogramShape, bool) {
	if !histogramFusion {
		return fusedHistogramShape{}, false
	}
	switch e := arg.(type) {
	case *metricsql.FuncExpr:
		return rollupOfSelector(e)
	case *metricsql.AggrFuncExpr:
		if !strings.EqualFold(e.Name, "sum") {
			return fusedHistogramShape{}, false
		}
		// A store that pushes aggregations down (pushdown.go) sums where
		// the series are: there, reading every bucket series here would
		// cost more than it saves.
		if _, ok := ev.store.(Pushdown); ok {
			return fusedHistogramShape{}, false
		}
		g := newGrouping(e)
		// The sums must keep le, or there are no buckets to fuse (the
		// node-by-node path then warns about the missing label).
		if _, hasLE := slices.BinarySearch(g.names, labels.BucketLabel); hasLE == g.without {
			return fusedHistogramShape{}, false
		}
		sh, ok := fusedShapeOf("sum", e, g, ev.numSteps())
		if !ok {
			return fusedHistogramShape{}, false
		}
		return fusedHistogramShape{call: sh.call, def: sh.def, re: sh.re, me: sh.me, sum: true, g: g}, true
	}
	return fusedHistogramShape{}, false
}

// rollupOfSelector reports whether call is a range function of a range
// selector with one metric name (dropping the name then cannot make two
// bucket series one).
func rollupOfSelector(call *metricsql.FuncExpr) (fusedHistogramShape, bool) {
	name := strings.ToLower(call.Name)
	def, ok := rollupFuncs[name]
	if !ok || name == "quantile_over_time" || len(call.Args) == 0 {
		return fusedHistogramShape{}, false
	}
	re, ok := call.Args[0].(*metricsql.RollupExpr)
	if !ok || re.Window == nil || re.ForSubquery() {
		return fusedHistogramShape{}, false
	}
	me, ok := re.Expr.(*metricsql.MetricExpr)
	if !ok || !pinsMetricName(me) {
		return fusedHistogramShape{}, false
	}
	return fusedHistogramShape{call: call, def: def, re: re, me: me}, true
}

// histBucket is one bucket input of a fused histogram: a bucket series'
// range function, or the sum of those of a sum group.
type histBucket struct {
	upperBound float64
	series     []int // indices into the selection
}

// fusedHist is one histogram: its output labels and its buckets by
// increasing upper bound.
type fusedHist struct {
	metric  labels.Labels
	buckets []histBucket
}

// badBucket is a bucket input without a valid le: it joins no histogram
// and is reported, as the node-by-node path does, when it has points.
type badBucket struct {
	le     string
	series []int
}

// fusedHistogram evaluates a histogram function whose buckets argument is
// of sh's shape: fn is called, from several workers at once, with the
// buckets of one histogram at one step, ordered by upper bound. It
// reports false, having read no samples, when the histograms are too
// few for the workers: one histogram is one worker's, so a fleet-wide
// sum by (le) would take one core where the node-by-node path (a fused
// aggregation, histogram_quantile after) takes all.
func (ev *evaluator) fusedHistogram(sh fusedHistogramShape, fn func(step int, buckets []bucket) (float64, bool)) (Matrix, bool) {
	var params []scalarSteps
	for _, a := range sh.call.Args[1:] {
		params = append(params, scalarOf(ev.eval(a)))
	}
	src := ev.rangeSource(sh.re) // checks the window; reads nothing
	first, last := src.mods.refTime(ev.start), src.mods.refTime(ev.end)
	q, err := ev.store.Querier(first-src.rangeMs+1, last)
	if err != nil {
		raiseErr(err)
	}
	defer q.Close() // after the workers: iterators read through it
	series := ev.selectAll(q, sh.me)
	lsets := make([]labels.Labels, len(series))
	for i, s := range series {
		lsets[i] = s.Labels()
	}
	hists, bad := histogramsOf(lsets, sh)
	// Whether to fuse is judged by the series alone, as for an instant
	// query: a range query over a few histograms of few series runs
	// faster fused, even on fewer cores, than node by node.
	if !balanced(hists, len(series), workersFor(len(series))) {
		return nil, false
	}
	ev.seriesLoaded.Add(int64(len(series)))

	n := ev.numSteps()
	out := make(Matrix, len(hists))
	// rollUp folds the range function of the bucket's series into vals
	// and seen, a row of n steps; sum is the scratch of a summed bucket.
	rollUp := func(w *seriesWorker, b histBucket, vals []float64, seen []bool, sum []groupState) {
		if sh.sum {
			clear(sum)
		}
		for _, k := range b.series {
			w.it = series[k].Iterator(w.it)
			w.buf = ev.load(w.it, w.buf[:0], true)
			w.pts = ev.rollupPoints(src, sh.def.fn, params, w.buf, w.pts[:0], &w.win)
			ev.release(len(w.buf))
			for _, p := range w.pts {
				i := (p.T - ev.start) / ev.interval
				if sh.sum {
					accumulate("sum", &sum[i], p.F)
				} else {
					vals[i], seen[i] = p.F, true
				}
			}
		}
		if sh.sum {
			for i := range sum {
				if sum[i].seen {
					vals[i], seen[i] = finish("sum", &sum[i]), true
				}
			}
		}
	}
	ev.parallelBatches(len(hists), len(series), 1, func(w *seriesWorker, h int) {
		ev.checkContext()
		hist := &hists[h]
		// The table of bucket × step counts against max_samples while
		// the histogram is computed (a summed bucket's states too).
		cells := len(hist.buckets) * n
		if sh.sum {
			cells += n * fusedCellSamples
		}
		ev.hold(cells)
		defer ev.release(cells)
		t := w.histTable(len(hist.buckets), n, sh.sum)
		for j, b := range hist.buckets {
			rollUp(w, b, t.vals[j*n:(j+1)*n], t.seen[j*n:(j+1)*n], t.sum)
		}
		out[h] = Series{Metric: hist.metric, Floats: ev.histogramPoints(hist, t, n, fn)}
	}, nil)
	// Buckets without a valid le are reported in the order of the
	// selection, when they have points, as eachClassicHistogram does.
	w := &seriesWorker{}
	for _, b := range bad {
		for _, k := range b.series {
			w.it = series[k].Iterator(w.it)
			w.buf = ev.load(w.it, w.buf[:0], true)
			w.pts = ev.rollupPoints(src, sh.def.fn, params, w.buf, w.pts[:0], &w.win)
			ev.release(len(w.buf))
			if len(w.pts) > 0 {
				ev.annotate(false, fmt.Sprintf("PromQL warning: bucket label %q is missing or has a malformed value of %q", labels.BucketLabel, b.le))
				break
			}
		}
	}
	return ev.mergeSameLabels(compact(out)), true
}

// balanced reports whether workers sharing series series can share
// hists evenly enough: no histogram holds more than half of a worker's
// share.
func balanced(hists []fusedHist, series, workers int) bool {
	if workers <= 1 {
		return true
	}
	for _, h := range hists {
		n := 0
		for _, b := range h.buckets {
			n += len(b.series)
		}
		if n*2*workers > series {
			return false
		}
	}
	return true
}

// histTable is a worker's scratch for one histogram: per bucket a row of
// values and their presence, and a summed bucket's states.
type histTable struct {
	vals []float64
	seen []bool
	sum  []groupState
	buf  []bucket
}

// histTable returns w's table cleared for buckets × n cells.
func (w *seriesWorker) histTable(buckets, n int, sum bool) *histTable {
	t := &w.hist
	cells := buckets * n
	if cap(t.vals) < cells {
		t.vals, t.seen = make([]float64, cells), make([]bool, cells)
	}
	t.vals, t.seen = t.vals[:cells], t.seen[:cells]
	clear(t.seen)
	if sum && len(t.sum) != n {
		t.sum = make([]groupState, n)
	}
	return t
}

// histogramPoints computes fn at every step with a bucket, from t.
func (ev *evaluator) histogramPoints(hist *fusedHist, t *histTable, n int, fn func(int, []bucket) (float64, bool)) []FPoint {
	var pts []FPoint
	reserved := 0
	defer func() { ev.release(reserved - len(pts)) }() // what was held and not kept
	for i := range n {
		t.buf = t.buf[:0]
		for j, b := range hist.buckets {
			if t.seen[j*n+i] {
				t.buf = append(t.buf, bucket{b.upperBound, t.vals[j*n+i]})
			}
		}
		if len(t.buf) == 0 {
			continue
		}
		f, ok := fn(i, t.buf)
		if !ok {
			continue
		}
		if pts == nil {
			// Held before they are allocated: at most a point a step.
			ev.hold(n - i)
			reserved = n - i
			pts = make([]FPoint, 0, n-i)
		}
		pts = append(pts, FPoint{T: ev.stepTime(i), F: f})
	}
	return pts
}

// histogramsOf groups the selected series lsets into histograms: by
// their labels without le (and the metric name) or, summed, by the sums'
// labels without le. A histogram's buckets are in increasing order of
// upper bound, in the order of the selection among equal bounds.
func histogramsOf(lsets []labels.Labels, sh fusedHistogramShape) (hists []fusedHist, bad []badBucket) {
	histIndex := map[string]int{}
	var keyBuf []byte
	// addBucket adds a bucket of labels lset (those of the rollup's or
	// the sum's result), without series yet, and returns where it is: in
	// hists[h].buckets[j], or bad[j] when h is -1.
	addBucket := func(lset labels.Labels) (h, j int) {
		le := lset.Get(labels.BucketLabel)
		ub, err := strconv.ParseFloat(le, 64)
		if err != nil || math.IsNaN(ub) {
			bad = append(bad, badBucket{le: le})
			return -1, len(bad) - 1
		}
		keyBuf = lset.BytesWithoutLabels(keyBuf, model.MetricNameLabel, labels.BucketLabel)
		h, ok := histIndex[string(keyBuf)]
		if !ok {
			h = len(hists)
			histIndex[string(keyBuf)] = h
			hists = append(hists, fusedHist{metric: labels.NewBuilder(lset).Del(model.MetricNameLabel, labels.BucketLabel).Labels()})
		}
		hists[h].buckets = append(hists[h].buckets, histBucket{upperBound: ub})
		return h, len(hists[h].buckets) - 1
	}
	if !sh.sum {
		// A bucket is one series: the lists share one array.
		all := make([]int, len(lsets))
		for i, lset := range lsets {
			all[i] = i
			h, j := addBucket(lset)
			if h >= 0 {
				hists[h].buckets[j].series = all[i : i+1 : i+1]
			} else {
				bad[j].series = all[i : i+1 : i+1]
			}
		}
	} else {
		type at struct{ h, j int }
		sums := map[uint64]at{}
		sb := labels.NewScratchBuilder(8)
		var buf []byte
		for i, lset := range lsets {
			var k uint64
			k, buf = sh.g.key(lset, buf)
			a, ok := sums[k]
			if !ok {
				h, j := addBucket(sh.g.metric(lset, &sb))
				a = at{h, j}
				sums[k] = a
			}
			if a.h < 0 {
				bad[a.j].series = append(bad[a.j].series, i)
			} else {
				b := &hists[a.h].buckets[a.j]
				b.series = append(b.series, i)
			}
		}
	}
	for _, h := range hists {
		slices.SortStableFunc(h.buckets, func(a, b histBucket) int { return cmp.Compare(a.upperBound, b.upperBound) })
	}
	return hists, bad
}
