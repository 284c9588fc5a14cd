package evaluator

import (
	"math"
	"slices"
	"strings"
	"sync"

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
// groupState per group and step; longer range queries take the general
// path.
const maxFusedSteps = 64

// partialAggregate is one worker's groups.
type partialAggregate struct {
	groups map[uint64]*fusedGroup
	sb     labels.ScratchBuilder
	buf    []byte
	pts    []FPoint
}

type fusedGroup struct {
	metric labels.Labels
	steps  []groupState
}

// fusedAggregate evaluates op over a range function of a selector in one
// pass, or reports false when the expression is not of that shape.
func (ev *evaluator) fusedAggregate(op string, e *metricsql.AggrFuncExpr, g grouping) (Matrix, bool) {
	if !fusedOps[op] || len(e.Args) != 1 || ev.numSteps() > maxFusedSteps {
		return nil, false
	}
	call, ok := e.Args[0].(*metricsql.FuncExpr)
	if !ok {
		return nil, false
	}
	name := strings.ToLower(call.Name)
	def, ok := rollupFuncs[name]
	if !ok || name == "quantile_over_time" || len(call.Args) == 0 {
		return nil, false
	}
	re, ok := call.Args[0].(*metricsql.RollupExpr)
	if !ok || re.Window == nil || re.ForSubquery() {
		return nil, false
	}
	// With one metric name, dropping it cannot merge series (which
	// Prometheus would refuse); grouping by the name needs the name kept.
	if me, ok := re.Expr.(*metricsql.MetricExpr); !ok || !pinsMetricName(me) ||
		(!def.keepName && !g.without && slices.Contains(g.names, model.MetricNameLabel)) {
		return nil, false
	}
	var params []scalarSteps
	for _, a := range call.Args[1:] {
		params = append(params, scalarOf(ev.eval(a)))
	}
	src := ev.rangeSource(re)
	var mu sync.Mutex
	var partials []*partialAggregate
	src.each(func(int) {}, func(w *seriesWorker, _ int, metric labels.Labels, pts []FPoint) {
		if w.partial == nil {
			w.partial = &partialAggregate{groups: map[uint64]*fusedGroup{}, sb: labels.NewScratchBuilder(8)}
		}
		ev.foldSeries(op, g, src, def.fn, params, w.partial, metric, pts)
	}, func(w *seriesWorker) {
		if w.partial != nil {
			mu.Lock()
			partials = append(partials, w.partial)
			mu.Unlock()
		}
	})
	return ev.mergePartials(op, partials), true
}

// foldSeries rolls one series up and folds its points into p.
func (ev *evaluator) foldSeries(op string, g grouping, src *rangeSource, fn rollupFunc, params []scalarSteps,
	p *partialAggregate, metric labels.Labels, pts []FPoint) {
	p.pts = ev.rollupPoints(src, fn, params, pts, p.pts[:0])
	if len(p.pts) == 0 {
		return
	}
	var h uint64
	h, p.buf = g.key(metric, p.buf)
	grp := p.groups[h]
	if grp == nil {
		grp = &fusedGroup{metric: g.metric(metric, &p.sb), steps: make([]groupState, ev.numSteps())}
		p.groups[h] = grp
	}
	for _, pt := range p.pts {
		accumulate(op, &grp.steps[(pt.T-ev.start)/ev.interval], pt.F)
	}
}

// mergePartials merges the workers' groups and finishes every step.
func (ev *evaluator) mergePartials(op string, partials []*partialAggregate) Matrix {
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
	out := make(Matrix, 0, len(merged))
	for _, grp := range merged {
		var pts []FPoint
		for i := range grp.steps {
			if grp.steps[i].seen {
				pts = append(pts, FPoint{T: ev.stepTime(i), F: finish(op, &grp.steps[i], 0)})
			}
		}
		ev.hold(len(pts))
		out = append(out, Series{Metric: grp.metric, Floats: pts})
	}
	return out
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
	m1, m2 := finish("avg", dst, 0), finish("avg", src, 0)
	dst.mean, dst.c, dst.incremental = m1*(dst.count/total)+m2*(src.count/total), 0, true
}
