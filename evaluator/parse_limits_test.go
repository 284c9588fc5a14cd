package evaluator

import (
	"errors"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metricsql"
)

func TestCheckQueryText(t *testing.T) {
	big := ParseLimits{MaxLength: 4 << 20}
	for _, tc := range []struct {
		name   string
		query  string
		limits ParseLimits
		want   string // substring of the error; "" for accepted
	}{
		{"megabyte of parens", strings.Repeat("(", 1<<20), ParseLimits{}, "query.max_query_length"},
		{"megabyte of parens, long text allowed", strings.Repeat("(", 1<<20), big, "query.max_query_depth"},
		{"deep parens around a selector", strings.Repeat("(", 2000) + "up" + strings.Repeat(")", 2000), big, "max_query_depth"},
		{"unary minus chain", strings.Repeat("-", 5000) + "up", ParseLimits{}, "max_query_depth"},
		{"unary minus chain with spaces", strings.Repeat("- ", 5000) + "up", ParseLimits{}, "max_query_depth"},
		{"unary plus chain", strings.Repeat("+", 5000) + "up", ParseLimits{}, "max_query_depth"},
		{"binary plus chain", strings.Repeat("up + ", 5000) + "up", ParseLimits{}, "max_query_depth"},
		{"power chain", strings.Repeat("up ^ ", 5000) + "up", ParseLimits{}, "max_query_depth"},
		{"and chain", strings.Repeat("up and ", 5000) + "up", ParseLimits{}, "max_query_depth"},
		{"nested calls", strings.Repeat("abs(", 3000) + "up" + strings.Repeat(")", 3000), ParseLimits{}, "max_query_depth"},
		{"nested subqueries", strings.Repeat("max_over_time((", 600) + "up" + strings.Repeat(")[5m:])", 600), ParseLimits{}, "max_query_depth"},
		{"depth is counted through arguments", strings.Repeat("clamp(", 1200) + "up" + strings.Repeat(", 0, 1)", 1200), ParseLimits{}, "max_query_depth"},
		{"WITH template", "with (a = up + up, b = a + a) b", ParseLimits{}, "WITH templates"},
		{"WITH in upper case", "WITH (a = up) a", ParseLimits{}, "WITH templates"},
		{"small depth limit", "((up))", ParseLimits{MaxDepth: 2}, "max_query_depth"},
		// Accepted: wide is not deep.
		{"many arguments", "label_join(up, \"a\"" + strings.Repeat(", \"b\"", 5000) + ")", ParseLimits{}, ""},
		{"long regex", `up{instance=~"` + strings.Repeat("node-1|", 5000) + `x"}`, ParseLimits{}, ""},
		{"many matchers", "up{" + strings.Repeat(`a!="b", `, 3000) + `c="d"}`, ParseLimits{}, ""},
		{"brackets inside strings do not count", `up{a="` + strings.Repeat("(", 5000) + `"}`, ParseLimits{}, ""},
		{"brackets inside comments do not count", "up # " + strings.Repeat("(", 5000) + "\n", ParseLimits{}, ""},
		{"a label named with", `up{with="x"}`, ParseLimits{}, ""},
		{"balanced sums of chains", strings.Repeat("(up + up + up) + ", 300) + "up", ParseLimits{}, ""},
		{"at the depth limit", "((up))", ParseLimits{MaxDepth: 3}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckQueryText(tc.query, tc.limits)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			case err != nil && !errors.Is(err, ErrBadQuery):
				t.Fatalf("%v is not ErrBadQuery", err)
			}
			if _, perr := ParseLimited(tc.query, tc.limits); tc.want != "" && !errors.Is(perr, ErrBadQuery) {
				t.Fatalf("ParseLimited: %v", perr)
			}
		})
	}
}

// TestParseLimitsAcceptKnownQueries: every query of the differential
// suite passes the default limits.
func TestParseLimitsAcceptKnownQueries(t *testing.T) {
	for _, q := range diffQueries {
		if err := CheckQueryText(q, ParseLimits{}); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
}

// exprDepth is the depth of e's tree.
func exprDepth(e metricsql.Expr) int {
	d := 0
	switch e := e.(type) {
	case *metricsql.RollupExpr:
		d = exprDepth(e.Expr)
	case *metricsql.FuncExpr:
		for _, a := range e.Args {
			d = max(d, exprDepth(a))
		}
	case *metricsql.AggrFuncExpr:
		for _, a := range e.Args {
			d = max(d, exprDepth(a))
		}
	case *metricsql.BinaryOpExpr:
		d = max(exprDepth(e.Left), exprDepth(e.Right))
	}
	return d + 1
}

// FuzzParseDepth checks what the scan promises: text it accepts parses
// into a tree no deeper than about its depth limit.
func FuzzParseDepth(f *testing.F) {
	for _, q := range append(diffQueries, "- - -up", "up ^ up ^ up ^ up", "up + up * up ^ up and up or up",
		"abs(abs(abs(up)))", "(up)[5m:]", "sum by (a) (rate(x[5m])) / on (a) group_left sum(x)", "-(-(-up))",
		"max_over_time((up + up)[5m:1m]) offset 1m", "clamp(up + up + up, 0 - 1, -1)") {
		f.Add(q)
	}
	const maxDepth = 12
	f.Fuzz(func(t *testing.T, q string) {
		if err := CheckQueryText(q, ParseLimits{MaxDepth: maxDepth}); err != nil {
			return
		}
		e, err := metricsql.Parse(q)
		if err != nil {
			return
		}
		if d := exprDepth(e); d > maxDepth+2 {
			t.Fatalf("%q: accepted with depth limit %d, parsed %d deep", q, maxDepth, d)
		}
	})
}
