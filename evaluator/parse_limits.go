package evaluator

import (
	"strings"

	"github.com/VictoriaMetrics/metricsql"
)

// The parser (metricsql) and every pass over its tree (its WITH
// expansion and constant folding, our type checks and evaluation) recurse
// once per level of the expression: a megabyte of "(" or of "-", or a
// long chain of "^" (right-associative, rebalanced by recursion in
// quadratic time), would exhaust the goroutine stack, which is fatal and
// cannot be recovered. So the text is bounded and scanned, before the
// parser sees it, by checkQueryText.

// ParseLimits bound query text before it is parsed.
type ParseLimits struct {
	// MaxLength is the longest query text accepted, in bytes.
	MaxLength int
	// MaxDepth bounds how deeply the expression can nest: every bracket
	// counts one level, and so does every operator (unary or binary)
	// inside parentheses, counted per argument: a bound on the depth of
	// the tree the parser builds.
	MaxDepth int
}

const (
	// DefaultMaxQueryLength is 64 KiB: a generated query with a long
	// regex of instance names fits, a megabyte of brackets does not.
	DefaultMaxQueryLength = 64 << 10
	// DefaultMaxQueryDepth keeps recursion far from any stack limit: each
	// level costs the parser and the evaluator a few hundred bytes of
	// stack, and a chain of 1,000 "^" takes the parser ~0.5M steps.
	DefaultMaxQueryDepth = 1000
)

// DefaultParseLimits returns the default bounds.
func DefaultParseLimits() ParseLimits {
	return ParseLimits{MaxLength: DefaultMaxQueryLength, MaxDepth: DefaultMaxQueryDepth}
}

func (l ParseLimits) withDefaults() ParseLimits {
	if l.MaxLength <= 0 {
		l.MaxLength = DefaultMaxQueryLength
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxQueryDepth
	}
	return l
}

// ParseLimited is Parse with the text first checked against l (zero
// fields take the defaults). Callers that parse text from clients, such
// as match[] selectors, use it too.
func ParseLimited(qs string, l ParseLimits) (metricsql.Expr, error) {
	if err := CheckQueryText(qs, l); err != nil {
		return nil, err
	}
	return parseChecked(qs)
}

// CheckQueryText refuses, with an ErrBadQuery error, text longer than
// l.MaxLength, nested deeper than l.MaxDepth, or using MetricsQL's WITH
// templates (which expand exponentially: each template may use the
// previous one twice). It reads the text once and allocates nothing.
func CheckQueryText(qs string, l ParseLimits) error {
	l = l.withDefaults()
	if len(qs) > l.MaxLength {
		return badQuery("query is %d bytes long, more than the limit of %d (query.max_query_length)", len(qs), l.MaxLength)
	}
	// Every open bracket remembers the depth it opened at; depth is that
	// plus the operators seen in the current argument. Operators count
	// only inside parentheses (or at the top): braces hold label
	// matchers, square brackets durations, and neither nests.
	var (
		fixed  [64]bracket
		deeper []bracket // levels past the array, rare
		open   int
	)
	top := func() *bracket {
		if open <= len(fixed) {
			return &fixed[open-1]
		}
		return &deeper[open-len(fixed)-1]
	}
	depth, maxDepth := 1, 1
	for i := 0; i < len(qs); i++ {
		c := qs[i]
		counting := open == 0 || top().kind == '('
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(qs, i)
		case c == '#':
			for i < len(qs) && qs[i] != '\n' {
				i++
			}
		case c == '(' || c == '{' || c == '[':
			b := bracket{kind: c, depth: depth}
			if open < len(fixed) {
				fixed[open] = b
			} else {
				deeper = append(deeper, b)
			}
			open++
			depth++
		case c == ')' || c == ']' || c == '}':
			if open == 0 {
				break // unbalanced: the parser reports it
			}
			depth = top().depth
			open--
			if open >= len(fixed) {
				deeper = deeper[:len(deeper)-1]
			}
		case c == ',':
			// A new argument: the operators of the previous one are its
			// siblings, not its parents.
			if open > 0 {
				depth = top().depth + 1
			}
		case counting && strings.IndexByte("+-*/%^<>=!", c) >= 0:
			depth++
		case isWordByte(c):
			j := i + 1
			for j < len(qs) && isWordByte(qs[j]) {
				j++
			}
			switch w := strings.ToLower(qs[i:j]); w {
			case "and", "or", "unless", "atan2", "default", "if", "ifnot":
				if counting {
					depth++
				}
			case "with":
				if k := skipSpace(qs, j); counting && k < len(qs) && qs[k] == '(' {
					return badQuery("WITH templates are not supported")
				}
			}
			i = j - 1
		}
		if depth > maxDepth {
			maxDepth = depth
			if maxDepth > l.MaxDepth {
				return badQuery("query nests more than %d levels deep (query.max_query_depth)", l.MaxDepth)
			}
		}
	}
	return nil
}

// bracket is an open bracket of the query text: its kind, and the depth
// at which it opened.
type bracket struct {
	kind  byte
	depth int
}

// skipString returns the index of the quote closing the string literal
// that starts at i, or the last index when it is not closed.
func skipString(qs string, i int) int {
	quote := qs[i]
	for j := i + 1; j < len(qs); j++ {
		switch qs[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			return j
		}
	}
	return len(qs) - 1
}

func skipSpace(qs string, i int) int {
	for i < len(qs) && (qs[i] == ' ' || qs[i] == '\t' || qs[i] == '\n' || qs[i] == '\r') {
		i++
	}
	return i
}

func isWordByte(c byte) bool {
	return c == '_' || c == ':' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
