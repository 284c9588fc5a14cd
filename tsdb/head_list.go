package tsdb

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
)

// SeriesLister is implemented by queriers that can list the label sets
// of matching series one at a time, without first building every one of
// them (as Select does, to sort them): the listing endpoints stop at
// their limit, so a listing over millions of series holds only what it
// returns.
type SeriesLister interface {
	// ListSeries calls fn with the label set of every series matching
	// ms that has samples in the querier's range, in no particular
	// order, until fn returns false. fn may keep the label set.
	ListSeries(ctx context.Context, fn func(labels.Labels) bool, ms ...*labels.Matcher) error
}

var _ SeriesLister = (*headQuerier)(nil)

// ListSeries walks the postings of ms and builds each label set only
// when its series is in range. It holds the postings list (8 bytes per
// matching series) and one label set at a time.
func (q *headQuerier) ListSeries(ctx context.Context, fn func(labels.Labels) bool, ms ...*labels.Matcher) error {
	h := q.head
	if h.MinTime() > q.maxt || h.MaxTime() < q.mint {
		return nil
	}
	b := labels.NewScratchBuilder(16)
	for i, ref := range h.index.forMatchers(ms) {
		if i%ctxCheckInterval == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s := h.series.getByRef(ref)
		if s == nil {
			continue
		}
		s.mu.Lock()
		ok := s.overlapsLocked(q.mint, q.maxt)
		s.mu.Unlock()
		if ok && !fn(h.symbols.labels(&b, s.syms.refs())) {
			return nil
		}
	}
	return nil
}
