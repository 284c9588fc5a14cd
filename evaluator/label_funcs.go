package evaluator

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
)

// labelReplace is label_replace(v, dst, replacement, src, regex): where
// the anchored regex matches src's value, dst is set to the expanded
// replacement (removed when empty). Other series pass unchanged.
func (ev *evaluator) labelReplace(args []metricsql.Expr) Matrix {
	s := stringArgs(args[1:5])
	dst, repl, src, regexStr := s[0], s[1], s[2], s[3]
	re, err := regexp.Compile("^(?s:" + regexStr + ")$")
	if err != nil {
		raise("invalid regular expression in label_replace(): %s", regexStr)
	}
	if !isValidLabelName(dst) {
		raise("invalid destination label name in label_replace(): %s", dst)
	}
	m := vectorOf(ev.eval(args[0]))
	b := labels.NewBuilder(labels.EmptyLabels())
	// Series share source values (often all of them: label_replace(x,
	// "c", "v", "", "") stamps a constant), so each value is matched once.
	type outcome struct {
		matched bool
		value   string
	}
	seen := map[string]outcome{}
	for i := range m {
		srcVal := m[i].Metric.Get(src)
		o, ok := seen[srcVal]
		if !ok {
			if idx := re.FindStringSubmatchIndex(srcVal); idx != nil {
				o = outcome{true, string(re.ExpandString(nil, repl, srcVal, idx))}
			}
			seen[srcVal] = o
		}
		if !o.matched {
			continue
		}
		b.Reset(m[i].Metric)
		b.Set(dst, o.value)
		m[i].Metric = b.Labels()
	}
	return ev.mergeSameLabels(m)
}

// labelJoin is label_join(v, dst, separator, src...): dst is set to the
// src values joined by separator (removed when empty).
func (ev *evaluator) labelJoin(args []metricsql.Expr) Matrix {
	s := stringArgs(args[1:])
	dst, sep, srcs := s[0], s[1], s[2:]
	for _, src := range srcs {
		if !isValidLabelName(src) {
			raise("invalid source label name in label_join(): %s", src)
		}
	}
	if !isValidLabelName(dst) {
		raise("invalid destination label name in label_join(): %s", dst)
	}
	m := vectorOf(ev.eval(args[0]))
	b := labels.NewBuilder(labels.EmptyLabels())
	vals := make([]string, len(srcs))
	for i := range m {
		for k, src := range srcs {
			vals[k] = m[i].Metric.Get(src)
		}
		b.Reset(m[i].Metric)
		b.Set(dst, strings.Join(vals, sep))
		m[i].Metric = b.Labels()
	}
	return ev.mergeSameLabels(m)
}

// naturalLess compares strings with runs of digits compared as numbers,
// so that "a10" sorts after "a9".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, ra := splitDigits(a)
		db, rb := splitDigits(b)
		switch {
		case da != "" && db != "":
			na, _ := strconv.ParseUint(da, 10, 64)
			nb, _ := strconv.ParseUint(db, 10, 64)
			if na != nb {
				return na < nb
			}
			if da != db {
				return len(da) < len(db)
			}
			a, b = ra, rb
		case a[0] != b[0]:
			return a[0] < b[0]
		default:
			a, b = a[1:], b[1:]
		}
	}
	return len(a) < len(b)
}

func splitDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
