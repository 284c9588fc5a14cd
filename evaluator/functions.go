package evaluator

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
)

// call evaluates a function call.
func (ev *evaluator) call(e *metricsql.FuncExpr) any {
	name := strings.ToLower(e.Name)
	if def, ok := rollupFuncs[name]; ok {
		return ev.callRollup(name, def, e.Args)
	}
	if fn, ok := mathFuncs[name]; ok {
		return ev.mapSeries(vectorOf(ev.eval(e.Args[0])), false, func(_ int, f float64) (float64, bool) { return fn(f), true })
	}
	if fn, ok := dateFuncs[name]; ok {
		return ev.dateFunc(fn, e.Args)
	}
	switch name {
	case "":
		raise("parenthesized lists of expressions are not supported")
	case "time":
		s := ev.newScalarSteps()
		for i := range s {
			s[i] = float64(ev.stepTime(i)) / 1000
		}
		return s
	case "pi":
		return ev.constant(math.Pi)
	case "start":
		return ev.constant(float64(ev.queryStart) / 1000)
	case "end":
		return ev.constant(float64(ev.queryEnd) / 1000)
	case "step":
		return ev.constant(float64(ev.queryStep) / 1000)
	case "vector":
		return ev.vectorFunc(scalarOf(ev.eval(e.Args[0])))
	case "scalar":
		return ev.scalarFunc(vectorOf(ev.eval(e.Args[0])))
	case "round":
		return ev.round(e.Args)
	case "clamp", "clamp_min", "clamp_max":
		return ev.clamp(name, e.Args)
	case "timestamp":
		return ev.timestampFunc(e.Args[0])
	case "absent":
		return ev.absent(e.Args[0])
	case "absent_over_time":
		return ev.absentOverTime(e.Args[0])
	case "sort", "sort_desc":
		return ev.sortByValue(vectorOf(ev.eval(e.Args[0])), name == "sort_desc")
	case "sort_by_label", "sort_by_label_desc":
		return ev.sortByLabel(vectorOf(ev.eval(e.Args[0])), stringArgs(e.Args[1:]), name == "sort_by_label_desc")
	case "label_replace":
		return ev.labelReplace(e.Args)
	case "label_join":
		return ev.labelJoin(e.Args)
	case "histogram_quantile":
		return ev.histogramQuantile(e.Args)
	case "histogram_fraction":
		return ev.histogramFraction(e.Args)
	}
	raise("function %q is not supported", e.Name)
	return nil
}

// callRollup evaluates a range function: its range argument is read
// series by series, its scalar arguments once for all steps.
func (ev *evaluator) callRollup(name string, def rollupDef, args []metricsql.Expr) Matrix {
	rangeArg := 0
	if name == "quantile_over_time" {
		rangeArg = 1
	}
	re, ok := args[rangeArg].(*metricsql.RollupExpr)
	if !ok || (re.Window == nil && !re.ForSubquery()) {
		raise("expected type range vector in call to function %q, got instant vector", name)
	}
	var params []scalarSteps
	for i, a := range args {
		if i != rangeArg {
			params = append(params, scalarOf(ev.eval(a)))
		}
	}
	return ev.rollup(ev.rangeSource(re), def.fn, params, def.keepName)
}

var mathFuncs = map[string]func(float64) float64{
	"abs": math.Abs, "ceil": math.Ceil, "floor": math.Floor, "exp": math.Exp,
	"sqrt": math.Sqrt, "ln": math.Log, "log2": math.Log2, "log10": math.Log10,
	"sin": math.Sin, "cos": math.Cos, "tan": math.Tan, "asin": math.Asin, "acos": math.Acos,
	"atan": math.Atan, "sinh": math.Sinh, "cosh": math.Cosh, "tanh": math.Tanh,
	"asinh": math.Asinh, "acosh": math.Acosh, "atanh": math.Atanh,
	"deg": func(f float64) float64 { return f * (180 / math.Pi) },
	"rad": func(f float64) float64 { return f * (math.Pi / 180) },
	"sgn": func(f float64) float64 {
		switch {
		case f < 0:
			return -1
		case f > 0:
			return 1
		}
		return f // 0 and NaN
	},
}

var dateFuncs = map[string]func(t time.Time) float64{
	"minute":       func(t time.Time) float64 { return float64(t.Minute()) },
	"hour":         func(t time.Time) float64 { return float64(t.Hour()) },
	"day_of_month": func(t time.Time) float64 { return float64(t.Day()) },
	"day_of_week":  func(t time.Time) float64 { return float64(t.Weekday()) },
	"day_of_year":  func(t time.Time) float64 { return float64(t.YearDay()) },
	"days_in_month": func(t time.Time) float64 {
		return float64(32 - time.Date(t.Year(), t.Month(), 32, 0, 0, 0, 0, time.UTC).Day())
	},
	"month": func(t time.Time) float64 { return float64(t.Month()) },
	"year":  func(t time.Time) float64 { return float64(t.Year()) },
}

// dateFunc applies fn to the values of its argument read as Unix seconds,
// or to the step time when called without one.
func (ev *evaluator) dateFunc(fn func(time.Time) float64, args []metricsql.Expr) Matrix {
	at := func(sec float64) float64 {
		if math.IsNaN(sec) || math.IsInf(sec, 0) {
			return sec
		}
		return fn(time.Unix(int64(sec), 0).UTC())
	}
	if len(args) == 0 {
		c := newCollector(ev)
		for i, n := 0, ev.numSteps(); i < n; i++ {
			ts := ev.stepTime(i)
			c.add(labels.EmptyLabels(), ts, at(float64(ts)/1000))
		}
		return c.matrix()
	}
	return ev.mapSeries(vectorOf(ev.eval(args[0])), false, func(_ int, f float64) (float64, bool) { return at(f), true })
}

func (ev *evaluator) vectorFunc(s scalarSteps) Matrix {
	ev.hold(len(s))
	pts := make([]FPoint, len(s))
	for i, f := range s {
		pts[i] = FPoint{T: ev.stepTime(i), F: f}
	}
	return Matrix{{Metric: labels.EmptyLabels(), Floats: pts}}
}

// scalarFunc is the single value of a one-element vector, NaN otherwise.
func (ev *evaluator) scalarFunc(m Matrix) scalarSteps {
	out := ev.constant(math.NaN())
	count := make([]int, len(out))
	for _, s := range m {
		for _, p := range s.Floats {
			i := int((p.T - ev.start) / ev.interval)
			count[i]++
			out[i] = p.F
		}
	}
	for i, c := range count {
		if c != 1 {
			out[i] = math.NaN()
		}
	}
	return out
}

func (ev *evaluator) round(args []metricsql.Expr) Matrix {
	m := vectorOf(ev.eval(args[0]))
	toNearest := ev.constant(1)
	if len(args) > 1 {
		toNearest = scalarOf(ev.eval(args[1]))
	}
	return ev.mapSeries(m, false, func(i int, f float64) (float64, bool) {
		inv := 1.0 / toNearest[i]
		return math.Floor(f*inv+0.5) / inv, true
	})
}

func (ev *evaluator) clamp(name string, args []metricsql.Expr) Matrix {
	m := vectorOf(ev.eval(args[0]))
	lo, hi := ev.constant(math.Inf(-1)), ev.constant(math.Inf(1))
	switch name {
	case "clamp":
		lo, hi = scalarOf(ev.eval(args[1])), scalarOf(ev.eval(args[2]))
	case "clamp_min":
		lo = scalarOf(ev.eval(args[1]))
	case "clamp_max":
		hi = scalarOf(ev.eval(args[1]))
	}
	return ev.mapSeries(m, false, func(i int, f float64) (float64, bool) {
		if hi[i] < lo[i] {
			return 0, false
		}
		return math.Max(lo[i], math.Min(hi[i], f)), true
	})
}

// timestampFunc returns the time of each sample; for a selector that is
// the time of the stored sample, not of the step.
func (ev *evaluator) timestampFunc(arg metricsql.Expr) Matrix {
	me, mods, ok := selectorOf(arg)
	if !ok {
		return ev.mapSeries(vectorOf(ev.eval(arg)), false, func(i int, _ float64) (float64, bool) {
			return float64(ev.stepTime(i)) / 1000, true
		})
	}
	m := ev.vectorSelectorTimes(me, ev.resolveMods(mods))
	for k := range m {
		m[k].Metric = dropName(m[k].Metric)
	}
	return ev.mergeSameLabels(m)
}

// selectorOf reports whether e is an instant selector, with its
// modifiers if any.
func selectorOf(e metricsql.Expr) (*metricsql.MetricExpr, *metricsql.RollupExpr, bool) {
	switch e := e.(type) {
	case *metricsql.MetricExpr:
		return e, nil, true
	case *metricsql.RollupExpr:
		if me, ok := e.Expr.(*metricsql.MetricExpr); ok && e.Window == nil && !e.ForSubquery() {
			return me, e, true
		}
	}
	return nil, nil, false
}

func (ev *evaluator) resolveMods(re *metricsql.RollupExpr) selectorMods {
	if re == nil {
		return selectorMods{}
	}
	return ev.modsOf(re)
}

// sortByValue orders an instant query's vector; a range query's result is
// always ordered by labels, so there it does nothing. NaN sorts last.
func (ev *evaluator) sortByValue(m Matrix, desc bool) Matrix {
	if ev.queryStep != 0 {
		ev.annotate(false, sortInRangeQuery)
		return m
	}
	sort.SliceStable(m, func(i, j int) bool {
		a, b := m[i].Floats[0].F, m[j].Floats[0].F
		if math.IsNaN(a) || math.IsNaN(b) {
			return !math.IsNaN(a)
		}
		if desc {
			return a > b
		}
		return a < b
	})
	return m
}

// sortInRangeQuery is Prometheus's warning for sort functions in a range
// query, whose result is ordered by labels whatever the query says.
const sortInRangeQuery = "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"

func (ev *evaluator) sortByLabel(m Matrix, names []string, desc bool) Matrix {
	if ev.queryStep != 0 {
		ev.annotate(false, sortInRangeQuery)
	}
	sort.SliceStable(m, func(i, j int) bool {
		for _, n := range names {
			a, b := m[i].Metric.Get(n), m[j].Metric.Get(n)
			if a != b {
				if desc {
					return naturalLess(b, a)
				}
				return naturalLess(a, b)
			}
		}
		c := labels.Compare(m[i].Metric, m[j].Metric)
		if desc {
			return c > 0
		}
		return c < 0
	})
	return m
}

func stringArgs(args []metricsql.Expr) []string {
	out := make([]string, len(args))
	for i, a := range args {
		s, ok := a.(*metricsql.StringExpr)
		if !ok {
			raise("expected string argument, got %s", a.AppendString(nil))
		}
		out[i] = s.S
	}
	return out
}
