package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator/rules"
)

// RuleGroups is what /api/v1/rules and /api/v1/alerts read of the rule
// manager.
type RuleGroups interface {
	Groups() []*rules.Group
}

// The JSON shapes of Prometheus's /api/v1/rules and /api/v1/alerts.
type ruleGroupJSON struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

type alertJSON struct {
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	State           string            `json:"state"`
	ActiveAt        *time.Time        `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time        `json:"keepFiringSince,omitempty"`
	Value           string            `json:"value"`
}

type alertingRuleJSON struct {
	State          string            `json:"state"`
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Duration       float64           `json:"duration"`
	KeepFiringFor  float64           `json:"keepFiringFor"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations"`
	Alerts         []alertJSON       `json:"alerts"`
	Health         rules.Health      `json:"health"`
	LastError      string            `json:"lastError,omitempty"`
	EvaluationTime float64           `json:"evaluationTime"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	Type           string            `json:"type"`
}

type recordingRuleJSON struct {
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Labels         map[string]string `json:"labels"`
	Health         rules.Health      `json:"health"`
	LastError      string            `json:"lastError,omitempty"`
	EvaluationTime float64           `json:"evaluationTime"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	Type           string            `json:"type"`
}

// ruleFilter holds /api/v1/rules' query parameters.
type ruleFilter struct {
	typ                 string
	names, groups, file []string
	excludeAlerts       bool
}

func parseRuleFilter(r *http.Request) (ruleFilter, error) {
	if err := r.ParseForm(); err != nil {
		return ruleFilter{}, fmt.Errorf("error parsing form values: %w", err)
	}
	f := ruleFilter{typ: r.Form.Get("type"), names: r.Form["rule_name[]"], groups: r.Form["rule_group[]"], file: r.Form["file[]"]}
	if f.typ != "" && f.typ != "alert" && f.typ != "record" {
		return f, fmt.Errorf("unsupported type %q: want alert or record", f.typ)
	}
	if s := r.Form.Get("exclude_alerts"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return f, errors.New("exclude_alerts: want true or false")
		}
		f.excludeAlerts = b
	}
	return f, nil
}

func matchesAny(list []string, s string) bool { return len(list) == 0 || slices.Contains(list, s) }

func (a *API) ruleGroups(w http.ResponseWriter, r *http.Request) {
	f, err := parseRuleFilter(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	out := []ruleGroupJSON{}
	if a.opts.Rules != nil {
		for _, g := range a.opts.Rules.Groups() {
			if !matchesAny(f.groups, g.Name()) || !matchesAny(f.file, g.File()) {
				continue
			}
			if gj := groupJSON(g, f); len(gj.Rules) > 0 || (f.typ == "" && len(f.names) == 0) {
				out = append(out, gj)
			}
		}
	}
	respond(w, map[string]any{"groups": out}, nil)
}

func groupJSON(g *rules.Group, f ruleFilter) ruleGroupJSON {
	last, took := g.Status()
	gj := ruleGroupJSON{
		Name: g.Name(), File: g.File(), Rules: []any{}, Interval: g.Interval().Seconds(), Limit: g.Limit(),
		EvaluationTime: took.Seconds(), LastEvaluation: last,
	}
	for _, r := range g.Rules() {
		if !matchesAny(f.names, r.Name()) {
			continue
		}
		s, h := r.Spec(), r.Health()
		switch rule := r.(type) {
		case *rules.AlertingRule:
			if f.typ == "record" {
				continue
			}
			rj := alertingRuleJSON{
				State: rule.State().String(), Name: s.Alert, Query: s.Expr,
				Duration: time.Duration(s.For).Seconds(), KeepFiringFor: time.Duration(s.KeepFiringFor).Seconds(),
				Labels: orEmpty(s.Labels), Annotations: orEmpty(s.Annotations), Alerts: []alertJSON{},
				Health: h.Health, LastError: h.LastError, EvaluationTime: h.EvaluationTime.Seconds(),
				LastEvaluation: h.LastEvaluation, Type: "alerting",
			}
			if !f.excludeAlerts {
				rj.Alerts = alertsJSON(rule.ActiveAlerts())
			}
			gj.Rules = append(gj.Rules, rj)
		default:
			if f.typ == "alert" {
				continue
			}
			gj.Rules = append(gj.Rules, recordingRuleJSON{
				Name: s.Record, Query: s.Expr, Labels: orEmpty(s.Labels), Health: h.Health, LastError: h.LastError,
				EvaluationTime: h.EvaluationTime.Seconds(), LastEvaluation: h.LastEvaluation, Type: "recording",
			})
		}
	}
	return gj
}

func alertsJSON(alerts []rules.Alert) []alertJSON {
	out := make([]alertJSON, 0, len(alerts))
	for _, al := range alerts {
		activeAt := al.ActiveAt
		aj := alertJSON{
			Labels: al.Labels.Map(), Annotations: al.Annotations.Map(), State: al.State.String(),
			ActiveAt: &activeAt, Value: strconv.FormatFloat(al.Value, 'e', -1, 64),
		}
		if !al.KeepFiringSince.IsZero() {
			k := al.KeepFiringSince
			aj.KeepFiringSince = &k
		}
		out = append(out, aj)
	}
	slices.SortFunc(out, func(x, y alertJSON) int {
		return labels.Compare(labels.FromMap(x.Labels), labels.FromMap(y.Labels))
	})
	return out
}

func (a *API) alerts(w http.ResponseWriter, _ *http.Request) {
	out := []alertJSON{}
	if a.opts.Rules != nil {
		for _, g := range a.opts.Rules.Groups() {
			for _, r := range g.Rules() {
				if ar, ok := r.(*rules.AlertingRule); ok {
					out = append(out, alertsJSON(ar.ActiveAlerts())...)
				}
			}
		}
	}
	respond(w, map[string]any{"alerts": out}, nil)
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
