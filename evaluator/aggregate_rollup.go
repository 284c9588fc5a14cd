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
// worker rolls a series up and folds the result straight into its own
// partial groups: no per-series result (or label set) outlives the
// series, and the partials merge at the end.

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

// partialAggregate is one worker's groups.
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

// foldAll folds every series of src into partials, one per worker.
func (ev *evaluator) foldAll(sh fusedShape, src *rangeSource) []*partialAggregate {
	params := ev.rollupParams(sh)
	var mu sync.Mutex
	var partials []*partialAggregate
	src.each(func(int) {}, func(w *seriesWorker, _ int, metric labels.Labels, pts []FPoint) {
		if w.partial == nil {
			w.partial = newPartialAggregate()
		}
		ev.foldSeries(sh.op, sh.g, src, sh.def.fn, params, w.partial, metric, pts)
	}, func(w *seriesWorker) {
		if w.partial != nil {
			mu.Lock()
			partials = append(partials, w.partial)
			mu.Unlock()
		}
	})
	return partials
}

func newPartialAggregate() *partialAggregate {
	return &partialAggregate{groups: map[uint64]*fusedGroup{}, sb: labels.NewScratchBuilder(8)}
}

// foldSeries rolls one series up and folds its points into p.
func (ev *evaluator) foldSeries(op string, g grouping, src *rangeSource, fn rollupFunc, params []scalarSteps,
	p *partialAggregate, metric labels.Labels, pts []FPoint) {
	p.pts = ev.rollupPoints(src, fn, params, pts, p.pts[:0], &p.win)
	ev.foldPoints(op, g, p, metric, p.pts)
}

// foldPoints folds the rolled-up points of the series metric into p.
func (ev *evaluator) foldPoints(op string, g grouping, p *partialAggregate, metric labels.Labels, pts []FPoint) {
	if len(pts) == 0 {
		return
	}
	var h uint64
	h, p.buf = g.key(metric, p.buf)
	grp := p.groups[h]
	if grp == nil {
		n := ev.numSteps()
		ev.hold(n * fusedCellSamples)
		p.held += n * fusedCellSamples
		grp = &fusedGroup{metric: g.metric(metric, &p.sb), steps: make([]groupState, n)}
		p.groups[h] = grp
	}
	for _, pt := range pts {
		accumulate(op, &grp.steps[(pt.T-ev.start)/ev.interval], pt.F)
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
