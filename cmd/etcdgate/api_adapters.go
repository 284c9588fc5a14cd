package main

import (
	"time"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/probe"
)

// The adapters below give the API what its interfaces (api/interfaces.go)
// ask of the rule manager and the prober, as snapshots of plain values.

// RuleGroups implements api.RuleGroups: none until the store is open.
func (rt *ruleRuntime) RuleGroups() []api.RuleGroup {
	m := rt.manager.Load()
	if m == nil {
		return nil
	}
	groups := m.Groups()
	if rt.ring != nil {
		// In a ring this node shows the groups it owns; the API asks the
		// other nodes for theirs.
		owned := groups[:0]
		for _, g := range groups {
			if g.Owned() {
				owned = append(owned, g)
			}
		}
		groups = owned
	}
	return ruleGroupsOf(groups)
}

// ruleGroupsOf snapshots groups for the API.
func ruleGroupsOf(groups []*rules.Group) []api.RuleGroup {
	out := make([]api.RuleGroup, len(groups))
	for i, g := range groups {
		last, took := g.Status()
		ag := api.RuleGroup{Name: g.Name(), File: g.File(), Interval: g.Interval(), Limit: g.Limit(),
			LastEvaluation: last, EvaluationTime: took, Rules: make([]api.Rule, 0, len(g.Rules()))}
		for _, r := range g.Rules() {
			ag.Rules = append(ag.Rules, ruleOf(r))
		}
		out[i] = ag
	}
	return out
}

func ruleOf(r rules.Rule) api.Rule {
	s, h := r.Spec(), r.Health()
	ar := api.Rule{Name: r.Name(), Query: s.Expr, Labels: s.Labels, Annotations: s.Annotations,
		Health: string(h.Health), LastError: h.LastError, LastEvaluation: h.LastEvaluation, EvaluationTime: h.EvaluationTime}
	if alerting, ok := r.(*rules.AlertingRule); ok {
		ar.Alerting, ar.State = true, alerting.State().String()
		ar.For, ar.KeepFiringFor = time.Duration(s.For), time.Duration(s.KeepFiringFor)
		for _, a := range alerting.ActiveAlerts() {
			ar.Alerts = append(ar.Alerts, api.Alert{Labels: a.Labels, Annotations: a.Annotations, State: a.State.String(),
				Value: a.Value, ActiveAt: a.ActiveAt, KeepFiringSince: a.KeepFiringSince})
		}
	}
	return ar
}

// probeRecords implements api.InspectionRecords over the record store.
type probeRecords struct{ store *probe.RecordStore }

func (p probeRecords) InspectionNames() []string { return probe.Names() }

func (p probeRecords) Inspections(f api.InspectionFilter) []api.InspectionRecord {
	recs := p.store.List(probe.Filter{Cluster: f.Cluster, Inspection: f.Inspection, Status: probe.Status(f.Status), Limit: f.Limit})
	out := make([]api.InspectionRecord, len(recs))
	for i, r := range recs {
		out[i] = api.InspectionRecord{Cluster: r.Cluster, Inspection: r.Inspection, Labels: r.Labels, Start: r.Start,
			End: r.End, Status: string(r.Status), Message: r.Message, Requests: r.Requests, BytesRead: r.BytesRead}
	}
	return out
}
