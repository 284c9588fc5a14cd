package relabel

import (
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	promrelabel "github.com/prometheus/prometheus/model/relabel"
)

// rule is one compiled relabel config with its counters. The counters
// count series (computations), not samples: a rule runs once per new
// series.
type rule struct {
	scope string // "global" or "source NAME"
	index int
	cfg   *promrelabel.Config // immutable
	desc  string

	kept, dropped, changed atomic.Uint64
}

// apply runs the rule on lb, whose labels are before, and counts the
// outcome. It returns the labels after the rule, for the next rule's
// before: materialising them once per rule is the price of the changed
// count, paid once per new series.
func (r *rule) apply(lb *labels.Builder, before labels.Labels) (after labels.Labels, keep bool) {
	if !promrelabel.ProcessBuilder(lb, r.cfg) {
		r.dropped.Add(1)
		return before, false
	}
	r.kept.Add(1)
	after = lb.Labels()
	if !labels.Equal(before, after) {
		r.changed.Add(1)
	}
	return after, true
}

// applyAll runs rules in order and returns the first that dropped, or nil.
func applyAll(rules []*rule, lb *labels.Builder) *rule {
	if len(rules) == 0 {
		return nil
	}
	cur := lb.Labels()
	for _, r := range rules {
		var keep bool
		if cur, keep = r.apply(lb, cur); !keep {
			return r
		}
	}
	return nil
}

// matches reports whether lb matches every matcher of the source.
func (s *source) matches(lb *labels.Builder) bool {
	for _, m := range s.matchers {
		if !m.re.MatchString(lb.Get(m.name)) {
			return false
		}
	}
	return true
}
