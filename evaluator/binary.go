package evaluator

import (
	"math"
	"slices"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// binary evaluates a binary operator between scalars and vectors.
func (ev *evaluator) binary(e *metricsql.BinaryOpExpr) any {
	op := strings.ToLower(e.Op)
	if _, ok := binaryOps[op]; !ok && !isSetOp(op) {
		raise("binary operator %q is not supported", e.Op)
	}
	lhs, rhs := ev.eval(e.Left), ev.eval(e.Right)
	ls, lScalar := lhs.(scalarSteps)
	rs, rScalar := rhs.(scalarSteps)
	switch {
	case lScalar && rScalar:
		return scalarBinop(op, ls, rs, e.Bool)
	case lScalar:
		return ev.vectorScalarBinop(op, vectorOf(rhs), ls, true, e.Bool)
	case rScalar:
		return ev.vectorScalarBinop(op, vectorOf(lhs), rs, false, e.Bool)
	}
	match := newMatching(e)
	// Both operands are consumed: the result is a new matrix (whose
	// points the collector holds), so theirs are released.
	defer ev.releaseValue(rhs)
	defer ev.releaseValue(lhs)
	switch op {
	case "and", "or", "unless":
		return ev.setOp(op, vectorOf(lhs), vectorOf(rhs), match)
	}
	return ev.vectorBinop(op, vectorOf(lhs), vectorOf(rhs), match, e.Bool)
}

// binaryOps computes a float operator; keep false means a comparison
// filtered the sample out.
var binaryOps = map[string]func(l, r float64) (float64, bool){
	"+":     func(l, r float64) (float64, bool) { return l + r, true },
	"-":     func(l, r float64) (float64, bool) { return l - r, true },
	"*":     func(l, r float64) (float64, bool) { return l * r, true },
	"/":     func(l, r float64) (float64, bool) { return l / r, true },
	"%":     func(l, r float64) (float64, bool) { return math.Mod(l, r), true },
	"^":     func(l, r float64) (float64, bool) { return math.Pow(l, r), true },
	"atan2": func(l, r float64) (float64, bool) { return math.Atan2(l, r), true },
	"==":    func(l, r float64) (float64, bool) { return l, l == r },
	"!=":    func(l, r float64) (float64, bool) { return l, l != r },
	">":     func(l, r float64) (float64, bool) { return l, l > r },
	"<":     func(l, r float64) (float64, bool) { return l, l < r },
	">=":    func(l, r float64) (float64, bool) { return l, l >= r },
	"<=":    func(l, r float64) (float64, bool) { return l, l <= r },
}

func isComparison(op string) bool {
	switch op {
	case "==", "!=", ">", "<", ">=", "<=":
		return true
	}
	return false
}

func isSetOp(op string) bool { return op == "and" || op == "or" || op == "unless" }

func scalarBinop(op string, l, r scalarSteps, returnBool bool) scalarSteps {
	fn := binaryOps[op]
	out := make(scalarSteps, len(l))
	for i := range l {
		f, keep := fn(l[i], r[i])
		if isComparison(op) {
			f = boolValue(keep)
			_ = returnBool // PromQL requires bool between scalars; the parser enforces it
		}
		out[i] = f
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// vectorScalarBinop applies op between every sample and the scalar;
// swapped means the scalar is the left operand. A comparison keeps the
// vector's value whichever side it is on.
func (ev *evaluator) vectorScalarBinop(op string, m Matrix, s scalarSteps, swapped, returnBool bool) Matrix {
	fn := binaryOps[op]
	if fn == nil {
		raise("set operator %q not allowed in binary scalar expression", op)
	}
	keepName := isComparison(op) && !returnBool
	return ev.mapSeries(m, keepName, func(i int, f float64) (float64, bool) {
		l, r := f, s[i]
		if swapped {
			l, r = r, l
		}
		v, keep := fn(l, r)
		if returnBool {
			return boolValue(keep), true
		}
		if isComparison(op) {
			v = f
		}
		return v, keep
	})
}

// matching is a binary operator's vector matching: which labels identify
// a match, its cardinality and the labels group_x copies.
type matching struct {
	on          bool
	labels      []string
	card        string // "one-to-one", "many-to-one" (group_left), "one-to-many" (group_right)
	include     []string
	sigNames    []string
	sigExcludes bool
}

func newMatching(e *metricsql.BinaryOpExpr) *matching {
	m := &matching{card: "one-to-one"}
	switch strings.ToLower(e.GroupModifier.Op) {
	case "on":
		m.on, m.labels = true, e.GroupModifier.Args
	case "ignoring":
		m.labels = e.GroupModifier.Args
	}
	switch strings.ToLower(e.JoinModifier.Op) {
	case "group_left":
		m.card, m.include = "many-to-one", e.JoinModifier.Args
	case "group_right":
		m.card, m.include = "one-to-many", e.JoinModifier.Args
	}
	if m.on {
		m.sigNames = slices.Sorted(slices.Values(m.labels))
	} else {
		m.sigNames = slices.Sorted(slices.Values(append([]string{model.MetricNameLabel}, m.labels...)))
		m.sigExcludes = true
	}
	return m
}

// signature is the key two samples match on.
func (m *matching) signature(lset labels.Labels, buf []byte) []byte {
	if m.sigExcludes {
		return lset.BytesWithoutLabels(buf, m.sigNames...)
	}
	return lset.BytesWithLabels(buf, m.sigNames...)
}
