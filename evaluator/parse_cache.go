package evaluator

import (
	"sync"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
)

// Dashboards and rules send the same query texts again and again; parsing
// one and compiling its matchers (regexes) is a good part of what a small
// query costs. The engine keeps the parsed tree of recent texts and the
// matcher sets of its selectors, and every query of that text shares
// them read-only: evaluation never modifies a tree or a matcher.

const (
	// parseCacheMaxQuery: longer texts are parsed every time.
	parseCacheMaxQuery = 4 << 10
	// parseCacheMaxBytes bounds what the cache holds, each entry counted
	// at parseCacheCostPerByte bytes for every byte of its text: the tree
	// and the compiled matchers, regexes above all, are many times the
	// text, and a client sending distinct texts must not grow the node by
	// more than about this. When full the cache drops half.
	parseCacheMaxBytes    = 4 << 20
	parseCacheCostPerByte = 64
)

// parsedQuery is a parsed query text and the matcher sets of its
// selectors (those whose matchers compile), immutable once built.
type parsedQuery struct {
	expr     metricsql.Expr
	matchers map[*metricsql.MetricExpr][][]*labels.Matcher
	folds    map[*metricsql.AggrFuncExpr]*foldPlan
}

// parseCache maps query texts to their parsedQuery.
type parseCache struct {
	mu      sync.Mutex
	entries map[string]*parsedQuery // guarded by mu
	bytes   int                     // guarded by mu: the keys' lengths times parseCacheCostPerByte
}

func (c *parseCache) get(qs string) *parsedQuery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[qs]
}

func (c *parseCache) put(qs string, p *parsedQuery) {
	if len(qs) > parseCacheMaxQuery {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*parsedQuery{}
	}
	if _, ok := c.entries[qs]; ok {
		return
	}
	cost := len(qs) * parseCacheCostPerByte
	if c.bytes+cost > parseCacheMaxBytes {
		for k := range c.entries { // map order: an arbitrary half goes
			delete(c.entries, k)
			c.bytes -= len(k) * parseCacheCostPerByte
			if c.bytes <= parseCacheMaxBytes/2 {
				break
			}
		}
	}
	c.entries[qs] = p
	c.bytes += cost
}

// parse returns the parsed query of qs, from the cache when it is there;
// a text is cached only once it has passed every check of ParseLimited
// under the engine's limits, which do not change.
func (e *Engine) parse(qs string) (*parsedQuery, error) {
	if p := e.parsed.get(qs); p != nil {
		return p, nil
	}
	expr, err := ParseLimited(qs, e.opts.ParseLimits)
	if err != nil {
		return nil, err
	}
	p := &parsedQuery{expr: expr, matchers: selectorMatchers(expr), folds: foldPlans(expr)}
	e.parsed.put(qs, p)
	return p, nil
}

// selectorMatchers compiles the matcher sets of every selector of expr;
// a selector with an invalid regex is left out, to fail (with its error)
// when it is evaluated.
func selectorMatchers(expr metricsql.Expr) map[*metricsql.MetricExpr][][]*labels.Matcher {
	var m map[*metricsql.MetricExpr][][]*labels.Matcher
	metricsql.VisitAll(expr, func(e metricsql.Expr) {
		me, ok := e.(*metricsql.MetricExpr)
		if !ok {
			return
		}
		sets, err := compileMatcherSets(me)
		if err != nil {
			return
		}
		if m == nil {
			m = map[*metricsql.MetricExpr][][]*labels.Matcher{}
		}
		m[me] = sets
	})
	return m
}
