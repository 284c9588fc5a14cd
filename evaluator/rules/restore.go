package rules

import (
	"context"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/etcdgate/etcdgate/tsdb"
)

// RestoreForState restores the ActiveAt of the group's pending and firing
// alerts from the ALERTS_FOR_STATE series written before a restart, so a
// restart does not reset 'for' clocks. It runs after the first evaluation
// (which found the alerts that are active now); from then on the rules
// write ALERTS and ALERTS_FOR_STATE.
//
// As in Prometheus, the time etcdgate was down does not count as pending
// time: a pending alert's clock is shifted by the downtime, and an alert
// that would fire within ForGracePeriod of the restart is given that
// grace, so that alerts do not fire on a restart before their expression
// could be re-checked.
func (g *Group) RestoreForState(ctx context.Context, ts time.Time) {
	defer func() {
		for _, r := range g.rules {
			if ar, ok := r.(*AlertingRule); ok {
				ar.setRestored()
			}
		}
	}()
	if g.opts.Queryable == nil {
		return
	}
	mint := ts.Add(-g.opts.OutageTolerance).UnixMilli()
	q, err := g.opts.Queryable.Querier(mint, ts.UnixMilli())
	if err != nil {
		g.opts.Logger.Error("restoring alert state: open querier", "group", g.spec.Name, "err", err)
		return
	}
	defer q.Close()
	for _, r := range g.rules {
		ar, ok := r.(*AlertingRule)
		if !ok || ar.holdDuration == 0 {
			continue
		}
		saved, err := lastForStates(ctx, q, ar.Name())
		if err != nil {
			g.opts.Logger.Error("restoring alert state", "group", g.spec.Name, "alert", ar.Name(), "err", err)
			continue
		}
		ar.restoreFrom(saved, ts, g.opts.ForGracePeriod)
	}
}

// savedState is the last ALERTS_FOR_STATE sample of an alert: its
// ActiveAt and when it was written (the last time etcdgate was up).
type savedState struct {
	activeAt time.Time
	downAt   time.Time
}

// lastForStates reads the last ALERTS_FOR_STATE sample of every alert of
// rule name, keyed by the hash of the alert's labels.
func lastForStates(ctx context.Context, q tsdb.Querier, name string) (map[uint64]savedState, error) {
	set := q.Select(ctx,
		labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, alertForStateMetricName),
		labels.MustNewMatcher(labels.MatchEqual, alertNameLabel, name))
	out := map[uint64]savedState{}
	var it tsdb.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		var t int64
		var v float64
		found := false
		for it.Next() {
			if tt, vv := it.At(); !value.IsStaleNaN(vv) {
				t, v, found = tt, vv, true
			}
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		ls := labels.NewBuilder(s.Labels()).Del(model.MetricNameLabel).Labels()
		out[ls.Hash()] = savedState{activeAt: time.Unix(int64(v), 0), downAt: time.UnixMilli(t)}
	}
	return out, set.Err()
}

// restoreFrom sets the ActiveAt of the rule's active alerts from saved.
func (r *AlertingRule) restoreFrom(saved map[uint64]savedState, ts time.Time, gracePeriod time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restoreFromLocked(saved, ts, gracePeriod)
}

func (r *AlertingRule) restoreFromLocked(saved map[uint64]savedState, ts time.Time, gracePeriod time.Duration) {
	for h, a := range r.active {
		s, ok := saved[h]
		if !ok || a.State == StateInactive {
			continue
		}
		activeAt := s.activeAt
		if r.holdDuration > gracePeriod {
			remaining := r.holdDuration - s.downAt.Sub(activeAt)
			switch {
			case remaining <= 0:
				// It was firing when etcdgate went down; it fires again
				// at the next evaluation if it still holds.
			case remaining < gracePeriod:
				activeAt = ts.Add(gracePeriod).Add(-r.holdDuration)
			default:
				activeAt = activeAt.Add(ts.Sub(s.downAt))
			}
		}
		a.ActiveAt = activeAt
	}
}
