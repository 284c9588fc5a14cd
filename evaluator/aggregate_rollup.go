package evaluator

import (
	"math"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// A fleet-wide aggregation of a range function, such as
//
//	sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))
//
// reads millions of series to produce thousands of points. Fused, each
// worker rolls a series up and folds the result straight into the
// aggregation's groups, which all workers share (sharedGroups): no
// per-series result (or label set) outlives the series. Partial groups
// computed elsewhere (other nodes of a ring) merge with them at the end.

// fusedOps are the aggregations whose partial results merge exactly
// (up to floating-point order).
var fusedOps = map[string]bool{"sum": true, "count": true, "avg": true, "min": true, "max": true, "group": true}

// maxFusedSteps bounds the steps of a fused aggregation, whose state is a
// groupState per group and step: the most a range query may have
// (DefaultMaxPointsPerSeries, both ends included).
const maxFusedSteps = DefaultMaxPointsPerSeries + 1

// fusedCellSamples is what one group's state at one step counts against
// max_samples while the aggregation runs: its size in samples (FPoints),
// so that the limit bounds the state's bytes as it bounds held points.
const fusedCellSamples = int((unsafe.Sizeof(groupState{}) + unsafe.Sizeof(FPoint{}) - 1) / unsafe.Sizeof(FPoint{}))

// partialAggregate is a set of groups (a stripe of sharedGroups, or a
// ring node's share), or a worker's scratch for folding into them.
type partialAggregate struct {
	groups map[uint64]*fusedGroup
	sb     labels.ScratchBuilder
	buf    []byte
	pts    []FPoint
	win    rollupWindow // scratch of rollupPoints
	held   int          // samples held for the groups' states
}

type fusedGroup struct {
	metric labels.Labels
	steps  []groupState
}

// fusedShape is an aggregation of the shape fusedAggregate evaluates: op
// over a range function of one selector with one metric name.
type fusedShape struct {
	op   string
	g    grouping
	call *metricsql.FuncExpr
	def  rollupDef
	re   *metricsql.RollupExpr
	me   *metricsql.MetricExpr
}

// fusedShapeOf reports whether e (op, grouped by g) is of the fused
// shape; steps is the number of steps it is evaluated at.
func fusedShapeOf(op string, e *metricsql.AggrFuncExpr, g grouping, steps int) (fusedShape, bool) {
	if !fusedOps[op] || len(e.Args) != 1 || steps > maxFusedSteps {
		return fusedShape{}, false
	}
	call, ok := e.Args[0].(*metricsql.FuncExpr)
	if !ok {
		return fusedShape{}, false
	}
	name := strings.ToLower(call.Name)
	def, ok := rollupFuncs[name]
	if !ok || name == "quantile_over_time" || len(call.Args) == 0 {
		return fusedShape{}, false
	}
	re, ok := call.Args[0].(*metricsql.RollupExpr)
	if !ok || re.Window == nil || re.ForSubquery() {
		return fusedShape{}, false
	}
	// With one metric name, dropping it cannot merge series (which
	// Prometheus would refuse); grouping by the name needs the name kept.
	me, ok := re.Expr.(*metricsql.MetricExpr)
	if !ok || !pinsMetricName(me) ||
		(!def.keepName && !g.without && slices.Contains(g.names, model.MetricNameLabel)) {
		return fusedShape{}, false
	}
	return fusedShape{op: op, g: g, call: call, def: def, re: re, me: me}, true
}

// fusedAggregate evaluates op over a range function of a selector in one
// pass, or reports false when the expression is not of that shape. When
// the store can, the aggregation is pushed down to where the series are
// (pushdown.go) and only the partials and the series left over are
// merged and folded here.
func (ev *evaluator) fusedAggregate(op string, e *metricsql.AggrFuncExpr, g grouping) (Matrix, bool) {
	sh, ok := fusedShapeOf(op, e, g, ev.numSteps())
	if !ok {
		return nil, false
	}
	if partials, ok := ev.pushAggregate(e, sh); ok {
		return ev.mergePartials(op, partials), true
	}
	if m, ok := ev.foldShared(e, sh); ok {
		return m, true
	}
	return ev.mergePartials(op, ev.foldAll(sh, ev.rangeSource(sh.re))), true
}

// rollupParams evaluates the range function's scalar arguments.
func (ev *evaluator) rollupParams(sh fusedShape) []scalarSteps {
	var params []scalarSteps
	for _, a := range sh.call.Args[1:] {
		params = append(params, scalarOf(ev.eval(a)))
	}
	return params
}

// foldAll folds every series of src into one table of groups that all
// workers share, returned as its stripes (disjoint partials).
func (ev *evaluator) foldAll(sh fusedShape, src *rangeSource) []*partialAggregate {
	params := ev.rollupParams(sh)
	groups := newSharedGroups()
	src.each(func(int) {}, func(w *seriesWorker, _ int, metric labels.Labels, pts []FPoint) {
		if w.partial == nil {
			w.partial = newPartialAggregate()
		}
		p := w.partial
		p.pts = ev.rollupPoints(src, sh.def.fn, params, pts, p.pts[:0], &p.win)
		ev.foldInto(groups, sh.op, sh.g, p, metric, p.pts)
	}, nil)
	return groups.partials()
}

func newPartialAggregate() *partialAggregate {
	return &partialAggregate{groups: map[uint64]*fusedGroup{}, sb: labels.NewScratchBuilder(8)}
}

// sharedGroups are one fused aggregation's groups, which every worker
// folds into: one table of groups × steps states a query, not one a
// worker (each is hundreds of megabytes for a fleet-wide range query at a
// million series, counted against max_samples). Groups are striped by
// their hash, each stripe under a lock of its own; a worker rolls a
// series up outside any lock and holds one stripe's only to fold the
// series' points.
type sharedGroups struct {
	stripes [groupStripes]groupStripe
}

// groupStripes spreads the workers of a many-core node over the locks; a
// query of few groups contends little anyway (a fold is ~1 ns a step).
const groupStripes = 16

type groupStripe struct {
	mu sync.Mutex
	p  *partialAggregate // its groups, guarded by mu; no scratch used
	_  [40]byte          // a cache line of its own
}

func newSharedGroups() *sharedGroups {
	sg := &sharedGroups{}
	for i := range sg.stripes {
		sg.stripes[i].p = &partialAggregate{groups: map[uint64]*fusedGroup{}}
	}
	return sg
}

// partials returns the stripes' groups, disjoint, for mergePartials.
func (sg *sharedGroups) partials() []*partialAggregate {
	out := make([]*partialAggregate, 0, groupStripes)
	for i := range sg.stripes {
		if p := sg.stripes[i].p; len(p.groups) > 0 { // a stripe holds only for its groups
			out = append(out, p)
		}
	}
	return out
}

// foldInto folds the rolled-up points of the series metric into its group
// in sg; scratch is the worker's (key and label buffers).
func (ev *evaluator) foldInto(sg *sharedGroups, op string, g grouping, scratch *partialAggregate, metric labels.Labels, pts []FPoint) {
	if len(pts) == 0 {
		return
	}
	var h uint64
	h, scratch.buf = g.key(metric, scratch.buf)
	st := &sg.stripes[h%groupStripes]
	st.mu.Lock()
	defer st.mu.Unlock() // hold raises past max_samples
	grp := st.p.groups[h]
	if grp == nil {
		n := ev.numSteps()
		ev.hold(n * fusedCellSamples)
		st.p.held += n * fusedCellSamples
		grp = &fusedGroup{metric: g.metric(metric, &scratch.sb), steps: make([]groupState, n)}
		st.p.groups[h] = grp
	}
	if op == "sum" {
		sumInto(grp.steps, pts, ev.start, ev.interval)
		return
	}
	for _, pt := range pts {
		accumulate(op, &grp.steps[(pt.T-ev.start)/ev.interval], pt.F)
	}
}

// sumInto is accumulate's sum over a series' rolled-up points, pts at
// steps start + k·interval in rising order: the loop of a fleet-wide
// sum of rates, run for every series at every step. Consecutive points
// are mostly a step apart, which spares the division that finds a
// point's step.
func sumInto(steps []groupState, pts []FPoint, start, interval int64) {
	k, next := int64(0), int64(math.MinInt64)
	for _, pt := range pts {
		if pt.T == next {
			k++
		} else {
			k = (pt.T - start) / interval
		}
		next = pt.T + interval
		gs := &steps[k]
		if !gs.seen {
			*gs = groupState{seen: true, count: 1, value: pt.F, mean: pt.F}
			continue
		}
		gs.count++
		gs.value, gs.c = kahanInc(pt.F, gs.value, gs.c)
	}
}

// mergePartials merges the workers' groups and finishes every step.
func (ev *evaluator) mergePartials(op string, partials []*partialAggregate) Matrix {
	merged := mergeGroups(op, partials)
	defer func() {
		for _, p := range partials {
			ev.release(p.held)
		}
	}()
	out := make(Matrix, 0, len(merged))
	for _, grp := range merged {
		n := 0
		for i := range grp.steps {
			if grp.steps[i].seen {
				n++
			}
		}
		ev.hold(n) // before the points are allocated, at their exact number
		pts := make([]FPoint, 0, n)
		for i := range grp.steps {
			if grp.steps[i].seen {
				pts = append(pts, FPoint{T: ev.stepTime(i), F: finish(op, &grp.steps[i])})
			}
		}
		out = append(out, Series{Metric: grp.metric, Floats: pts})
	}
	return out
}

// mergeGroups merges the groups of partials, unfinished; it reuses the
// groups of the partials.
func mergeGroups(op string, partials []*partialAggregate) map[uint64]*fusedGroup {
	if len(partials) == 1 {
		return partials[0].groups
	}
	merged := map[uint64]*fusedGroup{}
	for _, p := range partials {
		for h, grp := range p.groups {
			dst := merged[h]
			if dst == nil {
				merged[h] = grp
				continue
			}
			for i := range dst.steps {
				mergeGroupState(op, &dst.steps[i], &grp.steps[i])
			}
		}
	}
	return merged
}

// mergeGroupState folds src, a partial state of the same group and step,
// into dst.
func mergeGroupState(op string, dst, src *groupState) {
	if !src.seen {
		return
	}
	if !dst.seen {
		*dst = *src
		return
	}
	switch op {
	case "sum":
		dst.value, dst.c = kahanInc(src.value, dst.value, dst.c)
		dst.c += src.c
	case "avg":
		mergeAvg(dst, src)
	case "max":
		if dst.value < src.value || math.IsNaN(dst.value) {
			dst.value = src.value
		}
	case "min":
		if dst.value > src.value || math.IsNaN(dst.value) {
			dst.value = src.value
		}
	}
	dst.count += src.count
}

// mergeAvg adds src's sum to dst's while it stays finite, and otherwise
// weighs the two means; count is added by the caller.
func mergeAvg(dst, src *groupState) {
	if !dst.incremental && !src.incremental {
		if sum, c := kahanInc(src.value, dst.value, dst.c); !math.IsInf(sum, 0) {
			dst.value, dst.c = sum, c+src.c
			return
		}
	}
	total := dst.count + src.count
	m1, m2 := finish("avg", dst), finish("avg", src)
	dst.mean, dst.c, dst.incremental = m1*(dst.count/total)+m2*(src.count/total), 0, true
}
