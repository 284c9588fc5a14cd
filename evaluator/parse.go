package evaluator

import (
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// exprType is PromQL's type of an expression, named as in its errors.
type exprType string

const (
	typeVector exprType = "instant vector"
	typeMatrix exprType = "range vector"
	typeScalar exprType = "scalar"
	typeString exprType = "string"
)

// Parse parses a query and checks it against PromQL's type rules, which
// MetricsQL relaxes: a query PromQL rejects is rejected here too, with a
// bad_data error. The text is first bounded by the default ParseLimits.
func Parse(qs string) (metricsql.Expr, error) {
	return ParseLimited(qs, ParseLimits{})
}

// parseChecked is Parse after CheckQueryText.
func parseChecked(qs string) (metricsql.Expr, error) {
	if strings.TrimSpace(qs) == "" {
		return nil, badQuery("no expression found in input")
	}
	e, err := metricsql.Parse(qs)
	if err != nil {
		return nil, badQuery("%v", err)
	}
	if err := checkExpr(e); err != nil {
		return nil, err
	}
	return e, nil
}

func typeOf(e metricsql.Expr) exprType {
	switch e := e.(type) {
	case *metricsql.NumberExpr, *metricsql.DurationExpr:
		return typeScalar
	case *metricsql.StringExpr:
		return typeString
	case *metricsql.RollupExpr:
		if e.Window != nil || e.ForSubquery() {
			return typeMatrix
		}
		return typeOf(e.Expr)
	case *metricsql.FuncExpr:
		if sig, ok := funcSigs[strings.ToLower(e.Name)]; ok {
			return sig.ret
		}
	case *metricsql.BinaryOpExpr:
		if typeOf(e.Left) == typeScalar && typeOf(e.Right) == typeScalar {
			return typeScalar
		}
	}
	return typeVector
}

// funcSig is a function's argument and return types. Arguments past
// len(args) repeat the last type, up to maxArgs (-1: unbounded).
type funcSig struct {
	args    []exprType
	minArgs int
	maxArgs int
	ret     exprType
}

func sig(ret exprType, minArgs, maxArgs int, args ...exprType) funcSig {
	return funcSig{args: args, minArgs: minArgs, maxArgs: maxArgs, ret: ret}
}

var funcSigs = func() map[string]funcSig {
	m := map[string]funcSig{
		"time":                         sig(typeScalar, 0, 0),
		"pi":                           sig(typeScalar, 0, 0),
		"start":                        sig(typeScalar, 0, 0),
		"end":                          sig(typeScalar, 0, 0),
		"step":                         sig(typeScalar, 0, 0),
		"histogram_fraction":           sig(typeVector, 3, 3, typeScalar, typeScalar, typeVector),
		"scalar":                       sig(typeScalar, 1, 1, typeVector),
		"vector":                       sig(typeVector, 1, 1, typeScalar),
		"round":                        sig(typeVector, 1, 2, typeVector, typeScalar),
		"clamp":                        sig(typeVector, 3, 3, typeVector, typeScalar, typeScalar),
		"clamp_min":                    sig(typeVector, 2, 2, typeVector, typeScalar),
		"clamp_max":                    sig(typeVector, 2, 2, typeVector, typeScalar),
		"timestamp":                    sig(typeVector, 1, 1, typeVector),
		"absent":                       sig(typeVector, 1, 1, typeVector),
		"absent_over_time":             sig(typeVector, 1, 1, typeMatrix),
		"sort":                         sig(typeVector, 1, 1, typeVector),
		"sort_desc":                    sig(typeVector, 1, 1, typeVector),
		"sort_by_label":                sig(typeVector, 1, -1, typeVector, typeString),
		"sort_by_label_desc":           sig(typeVector, 1, -1, typeVector, typeString),
		"label_replace":                sig(typeVector, 5, 5, typeVector, typeString, typeString, typeString, typeString),
		"label_join":                   sig(typeVector, 3, -1, typeVector, typeString, typeString, typeString),
		"histogram_quantile":           sig(typeVector, 2, 2, typeScalar, typeVector),
		"quantile_over_time":           sig(typeVector, 2, 2, typeScalar, typeMatrix),
		"predict_linear":               sig(typeVector, 2, 2, typeMatrix, typeScalar),
		"double_exponential_smoothing": sig(typeVector, 3, 3, typeMatrix, typeScalar, typeScalar),
	}
	for name := range rollupFuncs {
		if _, ok := m[name]; !ok {
			m[name] = sig(typeVector, 1, 1, typeMatrix)
		}
	}
	for name := range mathFuncs {
		m[name] = sig(typeVector, 1, 1, typeVector)
	}
	for name := range dateFuncs {
		m[name] = sig(typeVector, 0, 1, typeVector)
	}
	return m
}()

func checkExpr(e metricsql.Expr) error {
	switch e := e.(type) {
	case *metricsql.MetricExpr:
		return checkSelector(e)
	case *metricsql.RollupExpr:
		return checkRollup(e)
	case *metricsql.FuncExpr:
		return checkCall(e)
	case *metricsql.AggrFuncExpr:
		return checkAggregation(e)
	case *metricsql.BinaryOpExpr:
		return checkBinary(e)
	}
	return nil
}

func checkSelector(me *metricsql.MetricExpr) error {
	for _, lfs := range me.LabelFilterss {
		ms, err := Matchers(lfs)
		if err != nil {
			return badQuery("%v", err)
		}
		nonEmpty := false
		for _, m := range ms {
			if !m.Matches("") {
				nonEmpty = true
			}
		}
		if !nonEmpty {
			return badQuery("vector selector must contain at least one non-empty matcher")
		}
	}
	if len(me.LabelFilterss) == 0 {
		return badQuery("vector selector must contain at least one non-empty matcher")
	}
	return nil
}

func matchType(lf metricsql.LabelFilter) labels.MatchType {
	switch {
	case lf.IsRegexp && lf.IsNegative:
		return labels.MatchNotRegexp
	case lf.IsRegexp:
		return labels.MatchRegexp
	case lf.IsNegative:
		return labels.MatchNotEqual
	}
	return labels.MatchEqual
}

func checkRollup(e *metricsql.RollupExpr) error {
	if err := checkExpr(e.Expr); err != nil {
		return err
	}
	inner := typeOf(e.Expr)
	switch {
	case e.ForSubquery():
		if inner != typeVector {
			return badQuery("subquery is only allowed on instant vector, got %s in %q instead", inner, e.AppendString(nil))
		}
	case e.Window != nil:
		if _, ok := e.Expr.(*metricsql.MetricExpr); !ok {
			return badQuery("ranges only allowed for vector selectors")
		}
	default:
		if _, ok := e.Expr.(*metricsql.MetricExpr); !ok {
			return badQuery("offset and @ modifiers must be preceded by a selector or a subquery, not %s", e.Expr.AppendString(nil))
		}
	}
	if e.At != nil {
		switch a := e.At.(type) {
		case *metricsql.NumberExpr, *metricsql.DurationExpr:
		case *metricsql.FuncExpr:
			if n := strings.ToLower(a.Name); n != "start" && n != "end" {
				return badQuery("@ modifier must be a number, start() or end()")
			}
		default:
			return badQuery("@ modifier must be a number, start() or end()")
		}
	}
	return nil
}

func checkCall(e *metricsql.FuncExpr) error {
	name := strings.ToLower(e.Name)
	s, ok := funcSigs[name]
	if !ok {
		if name == "" {
			return badQuery("unexpected list of expressions %s", e.AppendString(nil))
		}
		return badQuery("unknown function with name %q", e.Name)
	}
	n := len(e.Args)
	if n < s.minArgs || (s.maxArgs >= 0 && n > s.maxArgs) {
		return badQuery("expected %d argument(s) in call to %q, got %d", s.minArgs, e.Name, n)
	}
	for i, a := range e.Args {
		if err := checkExpr(a); err != nil {
			return err
		}
		want := s.args[min(i, len(s.args)-1)]
		if got := typeOf(a); got != want {
			return badQuery("expected type %s in call to function %q, got %s", want, e.Name, got)
		}
	}
	return nil
}

func checkAggregation(e *metricsql.AggrFuncExpr) error {
	for _, a := range e.Args {
		if err := checkExpr(a); err != nil {
			return err
		}
	}
	if len(e.Args) == 0 {
		return badQuery("no arguments for aggregate expression %q provided", e.Name)
	}
	if got := typeOf(e.Args[len(e.Args)-1]); got != typeVector {
		return badQuery("expected type instant vector in aggregation expression, got %s", got)
	}
	if len(e.Args) == 2 {
		want := typeScalar
		if strings.EqualFold(e.Name, "count_values") {
			want = typeString
		}
		if got := typeOf(e.Args[0]); got != want {
			return badQuery("expected type %s in aggregation parameter, got %s", want, got)
		}
	}
	return nil
}

func checkBinary(e *metricsql.BinaryOpExpr) error {
	if err := checkExpr(e.Left); err != nil {
		return err
	}
	if err := checkExpr(e.Right); err != nil {
		return err
	}
	op := strings.ToLower(e.Op)
	lt, rt := typeOf(e.Left), typeOf(e.Right)
	for _, t := range []exprType{lt, rt} {
		if t != typeScalar && t != typeVector {
			return badQuery("binary expression must contain only scalar and instant vector types")
		}
	}
	switch {
	case e.Bool && !isComparison(op):
		return badQuery("bool modifier can only be used on comparison operators")
	case isComparison(op) && lt == typeScalar && rt == typeScalar && !e.Bool:
		return badQuery("comparisons between scalars must use BOOL modifier")
	case isSetOp(op) && (lt != typeVector || rt != typeVector):
		return badQuery("set operator %q not allowed in binary scalar expression", e.Op)
	case isSetOp(op) && e.JoinModifier.Op != "":
		return badQuery("no grouping allowed for %q operation", e.Op)
	case (lt == typeScalar || rt == typeScalar) && (e.GroupModifier.Op != "" || e.JoinModifier.Op != ""):
		return badQuery("vector matching only allowed between instant vectors")
	}
	return nil
}

// isValidLabelName is the project's one label-name rule (see
// ingest.IsValidLabelName): names the engine makes (label_replace,
// label_join, count_values) are names ingest accepts, so a recording rule
// cannot produce a series its own node refuses.
func isValidLabelName(name string) bool { return model.LegacyValidation.IsValidLabelName(name) }
