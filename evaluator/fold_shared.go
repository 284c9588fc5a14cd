package evaluator

import (
	"slices"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// An error-ratio SLO such as
//
//	sum without (grpc_code) (rate(grpc_server_handled_total{job="etcd",grpc_code=~"Unavailable|Internal"}[5m]))
//	  / sum without (grpc_code) (rate(grpc_server_handled_total{job="etcd"}[5m]))
//
// folds the same range function of one metric twice, over a selector and
// over a narrower one: the narrower's series are read, decoded and rolled
// up twice. Fused aggregations (aggregate_rollup.go) of one shape whose
// selectors differ only by matchers that one of them lacks are folded
// together: that one's series (the widest selection) are rolled up once,
// and each series' result is folded into every aggregation whose extra
// matchers its labels satisfy. The first of them to be evaluated computes
// them all; the others take the results kept for them.

// foldPlan is a set of fused aggregations of one shape folded together.
// It is computed at parse time and read only.
type foldPlan struct {
	// members[0] has the widest selector: its label filters are a subset
	// of every other member's.
	members []*metricsql.AggrFuncExpr
	// extra are, per member, the matchers it has beyond members[0]'s
	// (none for members[0]).
	extra [][]*labels.Matcher
}

// maxFoldMembers bounds the aggregations of one shape planned together
// (the first met; the others are evaluated on their own): a fold holds
// a table of groups × steps per member at once, where evaluations one
// after the other hold one, and planning compares members pairwise.
const maxFoldMembers = 8

// foldKey is a member's result at an evaluator's steps: a subquery
// evaluates at steps of its own.
type foldKey struct {
	e                    *metricsql.AggrFuncExpr
	start, end, interval int64
}

// foldPlans finds the fused aggregations of expr that can be folded
// together, by member. Aggregations inside a subquery are left out: they
// are evaluated at the subquery's steps, once per evaluation of it.
func foldPlans(expr metricsql.Expr) map[*metricsql.AggrFuncExpr]*foldPlan {
	byShape := map[string][]*metricsql.AggrFuncExpr{}
	var order []string
	var walk func(e metricsql.Expr)
	walk = func(e metricsql.Expr) {
		switch e := e.(type) {
		case *metricsql.AggrFuncExpr:
			if key, ok := foldShapeKey(e); ok {
				if _, seen := byShape[key]; !seen {
					order = append(order, key)
				}
				if len(byShape[key]) < maxFoldMembers {
					byShape[key] = append(byShape[key], e)
				}
				return
			}
			for _, a := range e.Args {
				walk(a)
			}
		case *metricsql.FuncExpr:
			for _, a := range e.Args {
				walk(a)
			}
		case *metricsql.BinaryOpExpr:
			walk(e.Left)
			walk(e.Right)
		case *metricsql.RollupExpr:
			if !e.ForSubquery() {
				walk(e.Expr)
			}
		}
	}
	walk(expr)
	var plans map[*metricsql.AggrFuncExpr]*foldPlan
	for _, key := range order {
		plan := newFoldPlan(byShape[key])
		if plan == nil {
			continue
		}
		if plans == nil {
			plans = map[*metricsql.AggrFuncExpr]*foldPlan{}
		}
		for _, m := range plan.members {
			plans[m] = plan
		}
	}
	return plans
}

// foldShapeKey describes e without its selector's label filters (but with
// its metric name), when e is of the fused shape: aggregations with equal
// keys differ only by those filters.
func foldShapeKey(e *metricsql.AggrFuncExpr) (string, bool) {
	op := strings.ToLower(e.Name)
	if _, ok := fusedShapeOf(op, e, newGrouping(e), 0); !ok || e.Limit != 0 {
		return "", false
	}
	call := e.Args[0].(*metricsql.FuncExpr)
	re := call.Args[0].(*metricsql.RollupExpr)
	me := re.Expr.(*metricsql.MetricExpr)
	b := append([]byte(op), 0)
	b = e.Modifier.AppendString(b)
	b = append(b, 0)
	b = append(b, strings.ToLower(call.Name)...)
	b = strconv.AppendBool(append(b, 0), call.KeepMetricNames)
	for _, a := range call.Args[1:] {
		b = a.AppendString(append(b, 0))
	}
	b = re.Window.AppendString(append(b, 0))
	if re.Offset != nil {
		b = re.Offset.AppendString(append(b, 0, 'o'))
	}
	if re.At != nil {
		b = re.At.AppendString(append(b, 0, '@'))
	}
	b = append(b, 0)
	b = append(b, metricName(me)...)
	return string(b), true
}

// metricName is the name a selector that pins one (pinsMetricName)
// selects.
func metricName(me *metricsql.MetricExpr) string {
	for _, lf := range me.LabelFilterss[0] {
		if lf.Label == model.MetricNameLabel {
			return lf.Value
		}
	}
	return ""
}

// newFoldPlan returns the plan of aggregations of one shape, or nil when
// there is one, or none has a selector whose filters all the others
// have, or an extra filter does not compile (its evaluation reports it).
func newFoldPlan(members []*metricsql.AggrFuncExpr) *foldPlan {
	if len(members) < 2 {
		return nil
	}
	filters := func(e *metricsql.AggrFuncExpr) []metricsql.LabelFilter {
		re := e.Args[0].(*metricsql.FuncExpr).Args[0].(*metricsql.RollupExpr)
		return re.Expr.(*metricsql.MetricExpr).LabelFilterss[0]
	}
	widest := slices.IndexFunc(members, func(w *metricsql.AggrFuncExpr) bool {
		return !slices.ContainsFunc(members, func(m *metricsql.AggrFuncExpr) bool {
			return !isSubsetOf(filters(w), filters(m))
		})
	})
	if widest < 0 {
		return nil
	}
	members = slices.Clone(members)
	members[0], members[widest] = members[widest], members[0]
	plan := &foldPlan{members: members, extra: make([][]*labels.Matcher, len(members))}
	base := filters(members[0])
	for i, m := range members[1:] {
		var extra []metricsql.LabelFilter
		for _, lf := range filters(m) {
			if !slices.Contains(base, lf) {
				extra = append(extra, lf)
			}
		}
		ms, err := Matchers(extra)
		if err != nil {
			return nil
		}
		plan.extra[i+1] = ms
	}
	return plan
}

// isSubsetOf reports whether every filter of a is in b.
func isSubsetOf(a, b []metricsql.LabelFilter) bool {
	for _, lf := range a {
		if !slices.Contains(b, lf) {
			return false
		}
	}
	return true
}

// matchesAll reports whether lset satisfies every matcher.
func matchesAll(ms []*labels.Matcher, lset labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// foldShared evaluates e (of shape sh) through its fold plan: the result
// kept for it, or every member's by one fold of the widest selection. It
// reports false when e has no plan or the store pushes aggregations down
// (where each member is pushed on its own). foldMu is not held while the
// fold runs: the range function's arguments may hold aggregations too.
func (ev *evaluator) foldShared(e *metricsql.AggrFuncExpr, sh fusedShape) (Matrix, bool) {
	plan := ev.folds[e]
	if plan == nil {
		return nil, false
	}
	if _, isPD := ev.store.(Pushdown); isPD {
		return nil, false
	}
	key := foldKey{e: e, start: ev.start, end: ev.end, interval: ev.interval}
	ev.foldMu.Lock()
	m, ok := ev.foldKept[key]
	delete(ev.foldKept, key)
	ev.foldMu.Unlock()
	if ok {
		return m, true
	}
	results := ev.foldMembers(plan, sh)
	ev.foldMu.Lock()
	defer ev.foldMu.Unlock()
	for i, member := range plan.members {
		if member == e {
			m = results[i]
			continue
		}
		k := key
		k.e = member
		if old, ok := ev.foldKept[k]; ok {
			ev.release(old.points()) // evaluated again at these steps: not kept twice
		}
		if ev.foldKept == nil {
			ev.foldKept = map[foldKey]Matrix{}
		}
		ev.foldKept[k] = results[i]
	}
	return m, true
}

// foldMembers folds the widest member's series into every member whose
// extra matchers they satisfy; sh is the shape of one member (all share
// it but for the selector). Each series is rolled up once and its samples
// count once per member that selects it, as separate evaluations would
// count them.
func (ev *evaluator) foldMembers(plan *foldPlan, sh fusedShape) []Matrix {
	widest, _ := fusedShapeOf(sh.op, plan.members[0], sh.g, ev.numSteps())
	params := ev.rollupParams(sh)
	n := len(plan.members)
	groups := make([]*sharedGroups, n)
	for i := range groups {
		groups[i] = newSharedGroups()
	}
	src := ev.rangeSource(widest.re)
	src.each(func(int) {}, func(w *seriesWorker, _ int, metric labels.Labels, pts []FPoint) {
		if w.partial == nil {
			w.partial = newPartialAggregate()
		}
		w.matched = w.matched[:0]
		for i := 1; i < n; i++ {
			if matchesAll(plan.extra[i], metric) {
				w.matched = append(w.matched, i)
			}
		}
		p := w.partial
		p.pts = ev.rollupPointsCounted(src, sh.def.fn, params, pts, p.pts[:0], &p.win, int64(1+len(w.matched)))
		ev.foldInto(groups[0], sh.op, sh.g, p, metric, p.pts)
		for _, i := range w.matched {
			ev.foldInto(groups[i], sh.op, sh.g, p, metric, p.pts)
		}
	}, nil)
	results := make([]Matrix, n)
	for i := range results {
		results[i] = ev.mergePartials(sh.op, groups[i].partials())
	}
	return results
}
