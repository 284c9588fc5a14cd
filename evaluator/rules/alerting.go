package rules

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
)

const (
	alertMetricName         = "ALERTS"
	alertForStateMetricName = "ALERTS_FOR_STATE"
	alertNameLabel          = "alertname"
	alertStateLabel         = "alertstate"
)

// AlertingRule turns the samples of an expression into alerts, with
// Prometheus's state machine.
type AlertingRule struct {
	spec          RuleSpec
	holdDuration  time.Duration
	keepFiringFor time.Duration
	// Immutable after construction.
	externalLabels map[string]string
	externalURL    string

	ruleHealth // self-locking

	mu sync.Mutex
	// active holds the alerts by the hash of their labels; guarded by mu.
	active map[uint64]*Alert
	// restored is false until the group restored the rule's 'for'
	// clocks; until then ALERTS and ALERTS_FOR_STATE are not written,
	// so that a restart does not overwrite the state it restores from.
	restored bool
	// gained, set when this node just became the rule's owner in a ring,
	// holds the states to restore at the next evaluation; guarded by mu.
	gained *gainedState
}

// gainedState is what a node that gained a rule group restores at its
// first evaluation: the last ALERTS_FOR_STATE of each alert.
type gainedState struct {
	saved       map[uint64]savedState
	gracePeriod time.Duration
}

// NewAlertingRule returns the rule for spec (which must be valid).
func NewAlertingRule(spec RuleSpec, externalLabels map[string]string, externalURL string) *AlertingRule {
	return &AlertingRule{
		spec: spec, holdDuration: time.Duration(spec.For), keepFiringFor: time.Duration(spec.KeepFiringFor),
		externalLabels: externalLabels, externalURL: externalURL,
		active: map[uint64]*Alert{},
	}
}

func (r *AlertingRule) Name() string   { return r.spec.Alert }
func (r *AlertingRule) Spec() RuleSpec { return r.spec }

// Eval queries the expression at ts-queryOffset, advances the alerts'
// states and returns the ALERTS and ALERTS_FOR_STATE samples.
func (r *AlertingRule) Eval(ctx context.Context, ts time.Time, queryOffset time.Duration, query QueryFunc, limit int) (evaluator.Vector, error) {
	evalT := ts.Add(-queryOffset)
	res, err := query(ctx, r.spec.Expr, evalT)
	if err != nil {
		return nil, err
	}
	found, err := r.alertsOf(res)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, a := range found {
		if old, ok := r.active[h]; ok && old.State != StateInactive {
			old.Value, old.Annotations = a.Value, a.Annotations
			continue
		}
		a.State, a.ActiveAt = StatePending, ts
		r.active[h] = a
	}
	if g := r.gained; g != nil {
		// This node just became the owner: the alerts the previous owner
		// had keep their clocks, before they are advanced.
		r.restoreFromLocked(g.saved, ts, g.gracePeriod)
		r.gained = nil
	}
	var vec evaluator.Vector
	activeCount := 0
	for h, a := range r.active {
		if !r.advanceLocked(h, a, found, ts) {
			continue
		}
		activeCount++
		if r.restored {
			vec = append(vec, alertSample(a, evalT), forStateSample(a, evalT))
		}
	}
	if limit > 0 && activeCount > limit {
		clear(r.active)
		return nil, fmt.Errorf("exceeded limit of %d with %d alerts", limit, activeCount)
	}
	return vec, nil
}

// advanceLocked moves alert a (hash h) along the state machine at ts and
// reports whether it is pending or firing afterwards.
func (r *AlertingRule) advanceLocked(h uint64, a *Alert, found map[uint64]*Alert, ts time.Time) bool {
	if _, ok := found[h]; ok {
		a.KeepFiringSince = time.Time{}
	} else {
		keepFiring := false
		if a.State == StateFiring && r.keepFiringFor > 0 {
			if a.KeepFiringSince.IsZero() {
				a.KeepFiringSince = ts
			}
			keepFiring = ts.Sub(a.KeepFiringSince) < r.keepFiringFor
		}
		// Pending alerts vanish; resolved ones stay for resolvedRetention
		// so that their resolution is sent.
		if a.State == StatePending || (!a.ResolvedAt.IsZero() && ts.Sub(a.ResolvedAt) > resolvedRetention) {
			delete(r.active, h)
		}
		if keepFiring {
			return true
		}
		if a.State != StateInactive {
			a.State, a.ResolvedAt = StateInactive, ts
		}
		return false
	}
	if a.State == StatePending && ts.Sub(a.ActiveAt) >= r.holdDuration {
		a.State, a.FiredAt = StateFiring, ts
	}
	return true
}

// alertsOf builds one alert per result sample: the sample's labels
// without __name__, the rule's expanded labels, and alertname.
func (r *AlertingRule) alertsOf(res evaluator.Vector) (map[uint64]*Alert, error) {
	found := make(map[uint64]*Alert, len(res))
	for _, s := range res {
		data := templateData{Labels: s.Metric.Map(), ExternalLabels: r.externalLabels, ExternalURL: r.externalURL, Value: s.F}
		delete(data.Labels, model.MetricNameLabel)
		lb := labels.NewBuilder(s.Metric).Del(model.MetricNameLabel)
		for k, v := range r.spec.Labels {
			lb.Set(k, expandTemplate("__alert_"+r.spec.Alert, v, data))
		}
		lb.Set(alertNameLabel, r.spec.Alert)
		ab := labels.NewScratchBuilder(len(r.spec.Annotations))
		for k, v := range r.spec.Annotations {
			ab.Add(k, expandTemplate("__alert_"+r.spec.Alert, v, data))
		}
		ab.Sort()
		ls := lb.Labels()
		h := ls.Hash()
		if _, dup := found[h]; dup {
			return nil, fmt.Errorf("vector contains metrics with the same labelset after applying alert labels: %s", ls)
		}
		found[h] = &Alert{Labels: ls, Annotations: ab.Labels(), Value: s.F}
	}
	return found, nil
}

func alertSample(a *Alert, t time.Time) evaluator.Sample {
	lb := labels.NewBuilder(a.Labels)
	lb.Set(model.MetricNameLabel, alertMetricName)
	lb.Set(alertStateLabel, a.State.String())
	return evaluator.Sample{Metric: lb.Labels(), T: t.UnixMilli(), F: 1}
}

func forStateSample(a *Alert, t time.Time) evaluator.Sample {
	lb := labels.NewBuilder(a.Labels)
	lb.Set(model.MetricNameLabel, alertForStateMetricName)
	return evaluator.Sample{Metric: lb.Labels(), T: t.UnixMilli(), F: float64(a.ActiveAt.Unix())}
}

// ActiveAlerts returns copies of the pending and firing alerts.
func (r *AlertingRule) ActiveAlerts() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Alert, 0, len(r.active))
	for _, a := range r.active {
		if a.State != StateInactive {
			out = append(out, *a)
		}
	}
	return out
}

// State returns the rule's state: the highest of its alerts'.
func (r *AlertingRule) State() AlertState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := StateInactive
	for _, a := range r.active {
		s = max(s, a.State)
	}
	return s
}

// sendAlerts hands the alerts due for a notification to notify. A firing
// alert is valid for four resend periods (or intervals, if longer), so
// that the Alertmanager resolves it by itself if etcdgate goes away.
func (r *AlertingRule) sendAlerts(ctx context.Context, ts time.Time, resendDelay, interval time.Duration, notify NotifyFunc) {
	r.mu.Lock()
	var alerts []*Alert
	for _, a := range r.active {
		if !a.needsSending(ts, resendDelay) {
			continue
		}
		a.LastSentAt = ts
		a.ValidUntil = ts.Add(4 * max(resendDelay, interval))
		c := *a
		alerts = append(alerts, &c)
	}
	r.mu.Unlock()
	if len(alerts) > 0 && notify != nil {
		notify(ctx, r.spec.Expr, alerts...)
	}
}

// setRestored marks the rule's 'for' clocks as restored (or not needing
// it), from when on ALERTS and ALERTS_FOR_STATE are written.
func (r *AlertingRule) setRestored() {
	r.mu.Lock()
	r.restored = true
	r.mu.Unlock()
}

// restoreAtNextEval prepares the rule for a node that became its owner:
// the next evaluation restores the clocks of the alerts it finds from
// saved (which may be empty) and writes ALERTS and ALERTS_FOR_STATE.
func (r *AlertingRule) restoreAtNextEval(saved map[uint64]savedState, gracePeriod time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.active)
	r.gained = &gainedState{saved: saved, gracePeriod: gracePeriod}
	r.restored = true
}

// forget drops the rule's alerts without resolving them: another node
// owns the rule now and goes on with them.
func (r *AlertingRule) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.active)
	r.gained = nil
}

// copyAlerts takes over old's alerts (a reload replaced old by r).
func (r *AlertingRule) copyAlerts(old *AlertingRule) {
	old.mu.Lock()
	defer old.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, a := range old.active {
		c := *a
		r.active[h] = &c
	}
	r.restored = r.restored || old.restored
}
