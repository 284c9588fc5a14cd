package evaluator

import "github.com/VictoriaMetrics/metricsql"

// An alert such as
//
//	sum without (instance) (up{job="etcd"} == bool 1) < (count without (instance) (up{job="etcd"}) + 1) / 2
//
// names the same instant selector more than once. Each evaluation would
// read and decode the same samples again; instead the first keeps a copy
// of its result for the next ones, which take copies (their consumers
// change what they get in place) and the last takes the kept one.

// sharedSelector is an instant selector that occurs more than once in a
// query: the evaluations still to come, and the result kept for them
// (nil when none is) with what it was computed for.
type sharedSelector struct {
	left int
	key  sharedKey
	m    Matrix // held while kept
}

// sharedKey is what an instant selector's result depends on besides its
// text: the evaluator's steps (a subquery has its own), the modifiers and
// whether values are the samples' times (timestamp()).
type sharedKey struct {
	start, end, interval int64
	mods                 selectorMods
	times                bool
}

// repeatedSelectors returns the instant selectors that occur more than
// once in e, by their text.
func repeatedSelectors(e metricsql.Expr) map[string]*sharedSelector {
	counts := map[string]int{}
	var walk func(e metricsql.Expr)
	walk = func(e metricsql.Expr) {
		switch e := e.(type) {
		case *metricsql.MetricExpr:
			counts[string(e.AppendString(nil))]++
		case *metricsql.RollupExpr:
			// A range selector is read through rangeSource, not as an
			// instant selector.
			if e.Window == nil || e.ForSubquery() {
				walk(e.Expr)
			}
		case *metricsql.FuncExpr:
			for _, a := range e.Args {
				walk(a)
			}
		case *metricsql.AggrFuncExpr:
			for _, a := range e.Args {
				walk(a)
			}
		case *metricsql.BinaryOpExpr:
			walk(e.Left)
			walk(e.Right)
		}
	}
	walk(e)
	var shared map[string]*sharedSelector
	for text, n := range counts {
		if n > 1 {
			if shared == nil {
				shared = map[string]*sharedSelector{}
			}
			shared[text] = &sharedSelector{left: n}
		}
	}
	return shared
}

// selectShared evaluates an instant selector through the query's shared
// selectors: from a kept result when there is one for the same key, from
// the store (by load) otherwise. A result is kept only while it fits in
// max_samples; when a later hold would not fit, the kept results are
// dropped (dropShared) and the selectors read the store again.
func (ev *evaluator) selectShared(me *metricsql.MetricExpr, mods selectorMods, times bool, load func() Matrix) Matrix {
	var sh *sharedSelector
	if ev.shared != nil {
		sh = ev.shared[string(me.AppendString(nil))]
	}
	if sh == nil {
		return load()
	}
	key := sharedKey{start: ev.start, end: ev.end, interval: ev.interval, mods: mods, times: times}
	ev.sharedMu.Lock()
	sh.left--
	kept, last := sh.m, sh.left <= 0
	if kept != nil && (sh.key != key || last) {
		sh.m = nil // handed over below, or of no more use
		if sh.key != key {
			ev.release(kept.points())
			kept = nil
		}
	}
	ev.sharedMu.Unlock()
	if kept != nil {
		if !last {
			kept = ev.copyMatrix(kept)
		}
		// Counted as the store's samples would be.
		for _, s := range kept {
			ev.countPoints(s.Floats, mods.hasAt)
		}
		return kept
	}
	m := load()
	if last {
		return m
	}
	n := m.points()
	ev.sharedMu.Lock()
	defer ev.sharedMu.Unlock()
	if ev.sharedDropped || sh.m != nil {
		return m
	}
	// Held without raising: a copy that does not fit is not kept.
	h := ev.held.Add(int64(n))
	if h > ev.maxSamples {
		ev.held.Add(-int64(n))
		ev.sharedDropped = true
		return m
	}
	ev.notePeak(h)
	sh.m, sh.key = copyPoints(m, n), key
	return m
}

// dropShared releases the kept results of repeated selectors and keeps
// no more; it reports whether there were any.
func (ev *evaluator) dropShared() bool {
	if ev.shared == nil {
		return false
	}
	ev.sharedMu.Lock()
	defer ev.sharedMu.Unlock()
	ev.sharedDropped = true
	dropped := false
	for _, sh := range ev.shared {
		if sh.m != nil {
			ev.release(sh.m.points())
			sh.m, dropped = nil, true
		}
	}
	return dropped
}

// copyMatrix copies m's series and points, held first.
func (ev *evaluator) copyMatrix(m Matrix) Matrix {
	n := m.points()
	ev.hold(n)
	return copyPoints(m, n)
}

// copyPoints copies m's series and its n points, into one array.
func copyPoints(m Matrix, n int) Matrix {
	all := make([]FPoint, 0, n)
	out := make(Matrix, len(m))
	for i, s := range m {
		lo := len(all)
		all = append(all, s.Floats...)
		out[i] = Series{Metric: s.Metric, Floats: all[lo:len(all):len(all)]}
	}
	return out
}
