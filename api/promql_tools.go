package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/etcdgate/etcdgate/evaluator"
)

// format_query, parse_query and query_exemplars read the query with
// Prometheus's own PromQL parser (promql/parser, a dozen packages more
// than the binary has otherwise; the engine's metricsql parser writes
// MetricsQL, not Prometheus's formatting or syntax tree), after the
// query text passed the same bounds as a query's.

// parsePromQL bounds and parses the query parameter.
func (a *API) parsePromQL(r *http.Request) (parser.Expr, error) {
	qs := r.FormValue("query")
	if err := evaluator.CheckQueryText(qs, a.listingState().limits.Parse); err != nil {
		return nil, fmt.Errorf("invalid parameter \"query\": %w", err)
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(qs)
	if err != nil {
		return nil, fmt.Errorf("invalid parameter \"query\": %w", err)
	}
	return expr, nil
}

// formatQuery serves /api/v1/format_query: the query pretty-printed as
// Prometheus prints it.
func (a *API) formatQuery(w http.ResponseWriter, r *http.Request) {
	expr, err := a.parsePromQL(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	respond(w, expr.Pretty(0), nil)
}

// parseQuery serves /api/v1/parse_query: the query's syntax tree in the
// shape Prometheus 3's UI reads (its tree view).
func (a *API) parseQuery(w http.ResponseWriter, r *http.Request) {
	expr, err := a.parsePromQL(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	node, err := astJSON(expr)
	if err != nil {
		respondError(w, &apiError{typ: errorInternal, err: err})
		return
	}
	respond(w, node, nil)
}

// queryExemplars serves /api/v1/query_exemplars with Prometheus's
// validation. etcdgate does not store exemplars (remote write's are
// refused), so a valid request gets no exemplars: an empty list, or
// null for a query without selectors, as Prometheus answers.
func (a *API) queryExemplars(w http.ResponseWriter, r *http.Request) {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	if end.Before(start) {
		respondError(w, badData(errors.New("end timestamp must not be before start timestamp")))
		return
	}
	expr, err := a.parsePromQL(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	if len(parser.ExtractSelectors(expr)) == 0 {
		respond(w, nil, nil)
		return
	}
	respond(w, []struct{}{}, nil)
}

// The nodes of parse_query's tree, with the field names Prometheus 3's
// UI reads.
type (
	astAggregation struct {
		Type     string   `json:"type"`
		Op       string   `json:"op"`
		Expr     any      `json:"expr"`
		Param    any      `json:"param"`
		Grouping []string `json:"grouping"`
		Without  bool     `json:"without"`
	}
	astFillValues struct {
		LHS *float64 `json:"lhs"`
		RHS *float64 `json:"rhs"`
	}
	astMatching struct {
		Card       string        `json:"card"`
		Labels     []string      `json:"labels"`
		On         bool          `json:"on"`
		Include    []string      `json:"include"`
		FillValues astFillValues `json:"fillValues"`
	}
	astBinary struct {
		Type     string       `json:"type"`
		Op       string       `json:"op"`
		LHS      any          `json:"lhs"`
		RHS      any          `json:"rhs"`
		Matching *astMatching `json:"matching"`
		Bool     bool         `json:"bool"`
	}
	astFunc struct {
		Name       string             `json:"name"`
		ArgTypes   []parser.ValueType `json:"argTypes"`
		Variadic   int                `json:"variadic"`
		ReturnType parser.ValueType   `json:"returnType"`
	}
	astCall struct {
		Type string  `json:"type"`
		Func astFunc `json:"func"`
		Args []any   `json:"args"`
	}
	astMatcher struct {
		Name  string `json:"name"`
		Value string `json:"value"`
		Type  string `json:"type"`
	}
	astVector struct {
		Type       string       `json:"type"`
		Name       string       `json:"name"`
		Range      *int64       `json:"range,omitempty"`
		RangeExpr  *any         `json:"rangeExpr,omitempty"`
		Offset     int64        `json:"offset"`
		OffsetExpr any          `json:"offsetExpr"`
		Matchers   []astMatcher `json:"matchers"`
		Timestamp  *int64       `json:"timestamp"`
		StartOrEnd any          `json:"startOrEnd"`
		Anchored   bool         `json:"anchored"`
		Smoothed   bool         `json:"smoothed"`
	}
	astSubquery struct {
		Type       string `json:"type"`
		Expr       any    `json:"expr"`
		Range      int64  `json:"range"`
		RangeExpr  any    `json:"rangeExpr"`
		Offset     int64  `json:"offset"`
		OffsetExpr any    `json:"offsetExpr"`
		Step       int64  `json:"step"`
		StepExpr   any    `json:"stepExpr"`
		Timestamp  *int64 `json:"timestamp"`
		StartOrEnd any    `json:"startOrEnd"`
	}
	astNumber struct {
		Type     string `json:"type"`
		Val      string `json:"val"`
		Duration *bool  `json:"duration,omitempty"`
	}
	astDuration struct {
		Type    string `json:"type"`
		Op      string `json:"op"`
		LHS     any    `json:"lhs"`
		RHS     any    `json:"rhs"`
		Wrapped bool   `json:"wrapped"`
	}
	astUnary struct {
		Type string `json:"type"`
		Op   string `json:"op"`
		Expr any    `json:"expr"`
	}
	astParen struct {
		Type string `json:"type"`
		Expr any    `json:"expr"`
	}
	astString struct {
		Type string `json:"type"`
		Val  string `json:"val"`
	}
)

// astJSON turns a parsed query into parse_query's tree.
func astJSON(node parser.Expr) (any, error) {
	if node == nil {
		return nil, nil
	}
	switch n := node.(type) {
	case *parser.AggregateExpr:
		expr, err := astJSON(n.Expr)
		if err != nil {
			return nil, err
		}
		param, err := astJSON(n.Param)
		if err != nil {
			return nil, err
		}
		return astAggregation{Type: "aggregation", Op: n.Op.String(), Expr: expr, Param: param, Grouping: nonNil(n.Grouping), Without: n.Without}, nil
	case *parser.BinaryExpr:
		lhs, err := astJSON(n.LHS)
		if err != nil {
			return nil, err
		}
		rhs, err := astJSON(n.RHS)
		if err != nil {
			return nil, err
		}
		b := astBinary{Type: "binaryExpr", Op: n.Op.String(), LHS: lhs, RHS: rhs, Bool: n.ReturnBool}
		if m := n.VectorMatching; m != nil {
			b.Matching = &astMatching{Card: m.Card.String(), Labels: nonNil(m.MatchingLabels), On: m.On, Include: nonNil(m.Include),
				FillValues: astFillValues{LHS: m.FillValues.LHS, RHS: m.FillValues.RHS}}
		}
		return b, nil
	case *parser.Call:
		c := astCall{Type: "call", Func: astFunc{Name: n.Func.Name, ArgTypes: n.Func.ArgTypes, Variadic: n.Func.Variadic, ReturnType: n.Func.ReturnType}, Args: []any{}}
		for _, arg := range n.Args {
			a, err := astJSON(arg)
			if err != nil {
				return nil, err
			}
			c.Args = append(c.Args, a)
		}
		return c, nil
	case *parser.MatrixSelector:
		vs, ok := n.VectorSelector.(*parser.VectorSelector)
		if !ok {
			return nil, fmt.Errorf("BUG: range over %T", n.VectorSelector)
		}
		v, err := vectorJSON(vs)
		if err != nil {
			return nil, err
		}
		rng := n.Range.Milliseconds()
		rangeExpr, err := durationJSON(n.RangeExpr)
		if err != nil {
			return nil, err
		}
		v.Type, v.Range, v.RangeExpr = "matrixSelector", &rng, &rangeExpr
		return v, nil
	case *parser.SubqueryExpr:
		s := astSubquery{Type: "subquery", Range: n.Range.Milliseconds(), Offset: n.OriginalOffset.Milliseconds(), Step: n.Step.Milliseconds(),
			Timestamp: n.Timestamp, StartOrEnd: startOrEnd(n.StartOrEnd)}
		var err error
		if s.Expr, err = astJSON(n.Expr); err != nil {
			return nil, err
		}
		if s.RangeExpr, err = durationJSON(n.RangeExpr); err != nil {
			return nil, err
		}
		if s.OffsetExpr, err = durationJSON(n.OriginalOffsetExpr); err != nil {
			return nil, err
		}
		if s.StepExpr, err = durationJSON(n.StepExpr); err != nil {
			return nil, err
		}
		return s, nil
	case *parser.DurationExpr:
		return durationJSON(n)
	case *parser.NumberLiteral:
		return astNumber{Type: "numberLiteral", Val: strconv.FormatFloat(n.Val, 'f', -1, 64)}, nil
	case *parser.ParenExpr:
		e, err := astJSON(n.Expr)
		return astParen{Type: "parenExpr", Expr: e}, err
	case *parser.StringLiteral:
		return astString{Type: "stringLiteral", Val: n.Val}, nil
	case *parser.UnaryExpr:
		e, err := astJSON(n.Expr)
		return astUnary{Type: "unaryExpr", Op: n.Op.String(), Expr: e}, err
	case *parser.VectorSelector:
		return vectorJSON(n)
	}
	return nil, fmt.Errorf("BUG: parse_query: no tree node for %T", node)
}

func vectorJSON(n *parser.VectorSelector) (astVector, error) {
	offsetExpr, err := durationJSON(n.OriginalOffsetExpr)
	if err != nil {
		return astVector{}, err
	}
	v := astVector{Type: "vectorSelector", Name: n.Name, Offset: n.OriginalOffset.Milliseconds(), OffsetExpr: offsetExpr,
		Matchers: []astMatcher{}, Timestamp: n.Timestamp, StartOrEnd: startOrEnd(n.StartOrEnd), Anchored: n.Anchored, Smoothed: n.Smoothed}
	for _, m := range n.LabelMatchers {
		v.Matchers = append(v.Matchers, matcherJSON(m))
	}
	return v, nil
}

func matcherJSON(m *labels.Matcher) astMatcher {
	return astMatcher{Name: m.Name, Value: m.Value, Type: m.Type.String()}
}

// durationJSON writes a duration expression (of a range, offset or
// step), in which a number literal says whether it is a duration.
func durationJSON(node parser.Expr) (any, error) {
	switch n := node.(type) {
	case nil:
		return nil, nil
	case *parser.DurationExpr:
		if n == nil {
			return nil, nil
		}
		lhs, err := durationJSON(n.LHS)
		if err != nil {
			return nil, err
		}
		rhs, err := durationJSON(n.RHS)
		if err != nil {
			return nil, err
		}
		return astDuration{Type: "durationExpr", Op: n.Op.String(), LHS: lhs, RHS: rhs, Wrapped: n.Wrapped}, nil
	case *parser.NumberLiteral:
		if n == nil {
			return nil, nil
		}
		d := n.Duration
		return astNumber{Type: "numberLiteral", Val: strconv.FormatFloat(n.Val, 'f', -1, 64), Duration: &d}, nil
	}
	return astJSON(node)
}

func startOrEnd(t parser.ItemType) any {
	if t == 0 {
		return nil
	}
	return t.String()
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
