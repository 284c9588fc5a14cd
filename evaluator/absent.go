package evaluator

import (
	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// absent is 1 at the steps where its argument has no sample, with the
// labels its selector pins by equality.
func (ev *evaluator) absent(arg metricsql.Expr) Matrix {
	m := vectorOf(ev.eval(arg))
	defer ev.release(m.points()) // consumed
	present := make([]bool, ev.numSteps())
	for _, s := range m {
		for _, p := range s.Floats {
			present[(p.T-ev.start)/ev.interval] = true
		}
	}
	return ev.absentAt(present, absentLabels(arg))
}

// absentOverTime is 1 at the steps where no series of its range argument
// has a sample in the window.
func (ev *evaluator) absentOverTime(arg metricsql.Expr) Matrix {
	re, ok := arg.(*metricsql.RollupExpr)
	if !ok || (re.Window == nil && !re.ForSubquery()) {
		raise("expected type range vector in call to function \"absent_over_time\", got instant vector")
	}
	m := ev.rollup(ev.rangeSource(re), func(*rollupWindow) (float64, bool) { return 1, true }, nil, true)
	defer ev.release(m.points()) // consumed
	present := make([]bool, ev.numSteps())
	for _, s := range m {
		for _, p := range s.Floats {
			present[(p.T-ev.start)/ev.interval] = true
		}
	}
	var lset labels.Labels // a subquery gives no labels, as in Prometheus
	if !re.ForSubquery() {
		lset = absentLabels(re.Expr)
	}
	return ev.absentAt(present, lset)
}

func (ev *evaluator) absentAt(present []bool, lset labels.Labels) Matrix {
	var pts []FPoint
	for i, p := range present {
		if !p {
			pts = append(pts, FPoint{T: ev.stepTime(i), F: 1})
		}
	}
	if len(pts) == 0 {
		return nil
	}
	ev.hold(len(pts))
	return Matrix{{Metric: lset, Floats: pts}}
}

// absentLabels are the labels an absent series is given: those the
// selector matches by equality, except the metric name and labels with
// more than one matcher.
func absentLabels(e metricsql.Expr) labels.Labels {
	me, _, ok := selectorOf(e)
	if !ok || len(me.LabelFilterss) != 1 {
		return labels.EmptyLabels()
	}
	b := labels.NewBuilder(labels.EmptyLabels())
	seen := map[string]int{}
	for _, lf := range me.LabelFilterss[0] {
		if lf.Label == model.MetricNameLabel {
			continue
		}
		seen[lf.Label]++
		if !lf.IsRegexp && !lf.IsNegative {
			b.Set(lf.Label, lf.Value)
		}
	}
	for name, n := range seen {
		if n > 1 {
			b.Del(name)
		}
	}
	return b.Labels()
}
