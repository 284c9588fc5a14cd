package evaluator

import (
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// stepper walks a Matrix step by step.
type stepper struct {
	m   Matrix
	pos []int // next point of each series
	idx []int // series present at the current step
}

func newStepper(m Matrix) *stepper { return &stepper{m: m, pos: make([]int, len(m))} }

// at returns the indices of the series with a point at ts; steps must be
// visited in increasing order.
func (s *stepper) at(ts int64) []int {
	s.idx = s.idx[:0]
	for k := range s.m {
		pts := s.m[k].Floats
		if p := s.pos[k]; p < len(pts) && pts[p].T == ts {
			s.idx = append(s.idx, k)
			s.pos[k]++
		}
	}
	return s.idx
}

// value is series k's value at the current step.
func (s *stepper) value(k int) float64 { return s.m[k].Floats[s.pos[k]-1].F }

// signatures computes every series' match key once.
func (m *matching) signatures(mat Matrix) []string {
	sigs := make([]string, len(mat))
	var buf []byte
	for i, s := range mat {
		buf = m.signature(s.Metric, buf[:0])
		sigs[i] = string(buf)
	}
	return sigs
}

// vectorBinop is an arithmetic or comparison operator between two
// vectors, with Prometheus's matching rules and errors.
func (ev *evaluator) vectorBinop(op string, lm, rm Matrix, match *matching, returnBool bool) Matrix {
	fn := binaryOps[op]
	swapped := match.card == "one-to-many"
	if swapped {
		lm, rm = rm, lm // lm is now the "many" side
	}
	lsigs, rsigs := match.signatures(lm), match.signatures(rm)
	dropName := returnBool || !isComparison(op)
	if pairs, ok := uniquePairs(lm, rm, lsigs, rsigs, match, dropName); ok {
		return ev.pairBinop(fn, lm, rm, pairs, swapped, returnBool)
	}
	metrics := map[[2]int]labels.Labels{}
	ls, rs := newStepper(lm), newStepper(rm)
	c := newCollector(ev)
	right := map[string]int{}
	for i, n := 0, ev.numSteps(); i < n; i++ {
		ts := ev.stepTime(i)
		li, ri := ls.at(ts), rs.at(ts)
		if len(li) == 0 || len(ri) == 0 {
			continue
		}
		clear(right)
		for _, k := range ri {
			if prev, dup := right[rsigs[k]]; dup {
				ev.duplicateMatch(rm[k].Metric, rm[prev].Metric, match, swapped)
			}
			right[rsigs[k]] = k
		}
		matched := map[string]map[uint64]struct{}{}
		for _, k := range li {
			r, ok := right[lsigs[k]]
			if !ok {
				continue
			}
			fl, fr := ls.value(k), rs.value(r)
			if swapped {
				fl, fr = fr, fl
			}
			f, keep := fn(fl, fr)
			if returnBool {
				f, keep = boolValue(keep), true
			}
			metric, ok := metrics[[2]int{k, r}]
			if !ok {
				metric = resultMetric(lm[k].Metric, rm[r].Metric, match, dropName)
				metrics[[2]int{k, r}] = metric
			}
			ev.checkUniqueMatch(matched, lsigs[k], metric, match)
			if keep {
				c.add(metric, ts, f)
			}
		}
	}
	return c.matrix()
}

// seriesPair is a left series, the right series it matches and the
// label set of their results.
type seriesPair struct {
	l, r   int
	metric labels.Labels
}

// uniquePairs pairs each left series with the right series of its
// signature when no signature appears twice on either side and no two
// pairs give the same result labels: then no step can hold a duplicate
// match, and each pair can be computed over its whole range at once
// instead of step by step. ok is false otherwise.
func uniquePairs(lm, rm Matrix, lsigs, rsigs []string, match *matching, dropName bool) ([]seriesPair, bool) {
	right := make(map[string]int, len(rsigs))
	for k, sig := range rsigs {
		if _, dup := right[sig]; dup {
			return nil, false
		}
		right[sig] = k
	}
	left := make(map[string]struct{}, len(lsigs))
	results := map[uint64]struct{}{}
	var pairs []seriesPair
	for k, sig := range lsigs {
		if _, dup := left[sig]; dup {
			return nil, false
		}
		left[sig] = struct{}{}
		r, ok := right[sig]
		if !ok {
			continue
		}
		metric := resultMetric(lm[k].Metric, rm[r].Metric, match, dropName)
		h := metric.Hash()
		if _, dup := results[h]; dup {
			return nil, false
		}
		results[h] = struct{}{}
		pairs = append(pairs, seriesPair{l: k, r: r, metric: metric})
	}
	return pairs, true
}

// pairBinop computes fn over each pair's points at the steps both have,
// as vectorBinop does step by step.
func (ev *evaluator) pairBinop(fn func(float64, float64) (float64, bool), lm, rm Matrix, pairs []seriesPair, swapped, returnBool bool) Matrix {
	// The pairs' result labels are distinct (uniquePairs) and a pair's
	// points are in time order: each pair is one output series, built
	// without a per-point lookup of its labels.
	var out Matrix
	for n, p := range pairs {
		if n%stepsPerContextCheck == 0 {
			ev.checkContext()
		}
		lp, rp := lm[p.l].Floats, rm[p.r].Floats
		var pts []FPoint
		held := 0 // counted against max_samples before they are allocated
		for i, j := 0, 0; i < len(lp) && j < len(rp); {
			switch {
			case lp[i].T < rp[j].T:
				i++
			case lp[i].T > rp[j].T:
				j++
			default:
				fl, fr := lp[i].F, rp[j].F
				if swapped {
					fl, fr = fr, fl
				}
				f, keep := fn(fl, fr)
				if returnBool {
					f, keep = boolValue(keep), true
				}
				if keep {
					if pts == nil {
						held = min(len(lp)-i, len(rp)-j)
						ev.hold(held)
						pts = make([]FPoint, 0, held)
					}
					pts = append(pts, FPoint{T: lp[i].T, F: f})
				}
				i++
				j++
			}
		}
		ev.release(held - len(pts))
		if len(pts) > 0 {
			out = append(out, Series{Metric: p.metric, Floats: pts})
		}
	}
	return out
}

func (ev *evaluator) duplicateMatch(a, b labels.Labels, match *matching, swapped bool) {
	side := "right"
	if swapped {
		side = "left"
	}
	d1, d2 := a.String(), b.String()
	if d1 > d2 {
		d1, d2 = d2, d1
	}
	var group labels.Labels
	if match.on {
		group = labels.NewBuilder(a).Keep(match.labels...).Labels()
	} else {
		group = labels.NewBuilder(a).Del(match.sigNames...).Labels()
	}
	raise("found duplicate series for the match group %s on the %s hand-side of the operation: [%s, %s];"+
		"many-to-many matching not allowed: matching labels must be unique on one side", group.String(), side, d1, d2)
}

// checkUniqueMatch fails the query when two samples of the "many" side
// produce the same result (grouping), or when one-to-one matching finds a
// second sample on the left.
func (ev *evaluator) checkUniqueMatch(matched map[string]map[uint64]struct{}, sig string, metric labels.Labels, match *matching) {
	set, seen := matched[sig]
	if match.card == "one-to-one" {
		if seen {
			raise("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
		}
		matched[sig] = nil
		return
	}
	if set == nil {
		set = map[uint64]struct{}{}
		matched[sig] = set
	}
	h := metric.Hash()
	if _, dup := set[h]; dup {
		raise("multiple matches for labels: grouping labels must ensure unique matches")
	}
	set[h] = struct{}{}
}

// resultMetric is the label set of a binary operation's result: the
// "many" side's labels, reduced to the matching labels for one-to-one
// matching, plus the labels group_x copies from the "one" side.
func resultMetric(many, one labels.Labels, match *matching, dropName bool) labels.Labels {
	b := labels.NewBuilder(many)
	if dropName {
		b.Del(model.MetricNameLabel)
	}
	if match.card == "one-to-one" {
		if match.on {
			b.Keep(match.labels...)
		} else {
			b.Del(match.labels...)
		}
	}
	for _, name := range match.include {
		if v := one.Get(name); v != "" {
			b.Set(name, v)
		} else {
			b.Del(name)
		}
	}
	return b.Labels()
}

// setOp is and, or, unless: samples pass or not by whether their match
// key is present on the other side; labels and values are unchanged.
func (ev *evaluator) setOp(op string, lm, rm Matrix, match *matching) Matrix {
	lsigs, rsigs := match.signatures(lm), match.signatures(rm)
	ls, rs := newStepper(lm), newStepper(rm)
	c := newCollector(ev)
	present := map[string]struct{}{}
	for i, n := 0, ev.numSteps(); i < n; i++ {
		ts := ev.stepTime(i)
		li, ri := ls.at(ts), rs.at(ts)
		clear(present)
		switch op {
		case "and", "unless":
			for _, k := range ri {
				present[rsigs[k]] = struct{}{}
			}
			for _, k := range li {
				if _, ok := present[lsigs[k]]; ok == (op == "and") {
					c.add(lm[k].Metric, ts, ls.value(k))
				}
			}
		case "or":
			for _, k := range li {
				present[lsigs[k]] = struct{}{}
				c.add(lm[k].Metric, ts, ls.value(k))
			}
			for _, k := range ri {
				if _, ok := present[rsigs[k]]; !ok {
					c.add(rm[k].Metric, ts, rs.value(k))
				}
			}
		}
	}
	return c.matrix()
}
