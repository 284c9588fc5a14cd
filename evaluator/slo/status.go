package slo

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator/rules"
)

// Status is one SLO as /api/v1/slo shows it.
type Status struct {
	Name        string  `json:"name"`
	Objective   float64 `json:"objective"` // percent
	Window      string  `json:"window"`
	ErrorBudget float64 `json:"errorBudget"` // allowed error ratio
	// Clusters has one entry per label set of the SLI (per cluster with
	// the default by labels); Scenarios and Regions average them.
	Clusters  []Entry `json:"clusters"`
	Scenarios []Entry `json:"byScenario"`
	Regions   []Entry `json:"byRegion"`
}

// Entry is the state of one cluster or one roll-up. Values absent from
// the store (the hourly budget not computed yet, a ratio of 0/0) are
// left out rather than reported as NaN.
type Entry struct {
	Labels map[string]string `json:"labels"`
	// ErrorBudgetRemaining is the share of the window's budget left (1:
	// untouched, negative: overspent).
	ErrorBudgetRemaining *float64 `json:"errorBudgetRemaining,omitempty"`
	// BurnRates maps a window (5m … 3d) to error ratio / error budget.
	BurnRates map[string]float64 `json:"burnRates"`
	// Count is the number of cluster entries a roll-up averages.
	Count int `json:"count,omitempty"`
}

// Statuses evaluates every SLO at t through query.
func Statuses(ctx context.Context, query rules.QueryFunc, specs []Spec, t time.Time) ([]Status, error) {
	out := make([]Status, 0, len(specs))
	for i := range specs {
		st, err := specs[i].status(ctx, query, t)
		if err != nil {
			return nil, fmt.Errorf("slo %s: %w", specs[i].Name, err)
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *Spec) status(ctx context.Context, query rules.QueryFunc, t time.Time) (Status, error) {
	st := Status{Name: s.Name, Objective: s.Objective, Window: model.Duration(s.Window).String(), ErrorBudget: s.ErrorBudget()}
	entries := map[uint64]*Entry{}
	entry := func(ls labels.Labels) *Entry {
		ls = labels.NewBuilder(ls).Del(model.MetricNameLabel, "slo").Labels()
		h := ls.Hash()
		if entries[h] == nil {
			entries[h] = &Entry{Labels: ls.Map(), BurnRates: map[string]float64{}}
		}
		return entries[h]
	}
	sel := fmt.Sprintf("{slo=%q}", s.Name)
	for _, w := range Windows {
		vec, err := query(ctx, RatioMetric(w)+sel, t)
		if err != nil {
			return st, err
		}
		for _, x := range vec {
			if !math.IsNaN(x.F) {
				entry(x.Metric).BurnRates[w] = x.F / s.ErrorBudget()
			}
		}
	}
	// The budget is recorded hourly: look back over two intervals.
	vec, err := query(ctx, fmt.Sprintf("last_over_time(%s%s[%s])", budgetLeft, sel, model.Duration(2*PeriodInterval)), t)
	if err != nil {
		return st, err
	}
	for _, x := range vec {
		if v := x.F; !math.IsNaN(v) {
			entry(x.Metric).ErrorBudgetRemaining = &v
		}
	}
	for _, e := range entries {
		st.Clusters = append(st.Clusters, *e)
	}
	sortEntries(st.Clusters)
	st.Scenarios, st.Regions = rollup(st.Clusters, "scenario"), rollup(st.Clusters, "region")
	return st, nil
}

// rollup averages entries by the value of label: each cluster counts
// once, whatever its traffic, which is how a fleet's operators compare
// scenarios.
func rollup(entries []Entry, label string) []Entry {
	type acc struct {
		e          Entry
		budget     float64
		budgets    int
		rateCounts map[string]int
	}
	groups := map[string]*acc{}
	for _, e := range entries {
		v := e.Labels[label]
		a := groups[v]
		if a == nil {
			a = &acc{e: Entry{Labels: map[string]string{label: v}, BurnRates: map[string]float64{}}, rateCounts: map[string]int{}}
			groups[v] = a
		}
		a.e.Count++
		if e.ErrorBudgetRemaining != nil {
			a.budget += *e.ErrorBudgetRemaining
			a.budgets++
		}
		for w, r := range e.BurnRates {
			a.e.BurnRates[w] += r
			a.rateCounts[w]++
		}
	}
	out := make([]Entry, 0, len(groups))
	for _, a := range groups {
		for w, n := range a.rateCounts {
			a.e.BurnRates[w] /= float64(n)
		}
		if a.budgets > 0 {
			b := a.budget / float64(a.budgets)
			a.e.ErrorBudgetRemaining = &b
		}
		out = append(out, a.e)
	}
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool {
		return labels.Compare(labels.FromMap(es[i].Labels), labels.FromMap(es[j].Labels)) < 0
	})
}
