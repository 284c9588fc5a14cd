package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// The JSON shapes of Prometheus's /api/v1/rules and /api/v1/alerts.
type ruleGroupJSON struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
	// Owner is the node of the ring that evaluates the group.
	Owner string `json:"owner,omitempty"`
}

type alertJSON struct {
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	State           string            `json:"state"`
	ActiveAt        *time.Time        `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time        `json:"keepFiringSince,omitempty"`
	Value           string            `json:"value"`
	// Owner is the node of the ring that evaluates the alert's group.
	Owner string `json:"owner,omitempty"`
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
	Health         string            `json:"health"`
	LastError      string            `json:"lastError,omitempty"`
	EvaluationTime float64           `json:"evaluationTime"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	Type           string            `json:"type"`
}

type recordingRuleJSON struct {
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Labels         map[string]string `json:"labels"`
	Health         string            `json:"health"`
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
	groups, warnings := a.allRuleGroups(r.Context())
	for _, g := range groups {
		if !matchesAny(f.groups, g.Name) || !matchesAny(f.file, g.File) {
			continue
		}
		if gj := groupJSON(&g, f); len(gj.Rules) > 0 || (f.typ == "" && len(f.names) == 0) {
			out = append(out, gj)
		}
	}
	respond(w, map[string]any{"groups": out}, warnings)
}

func groupJSON(g *RuleGroup, f ruleFilter) ruleGroupJSON {
	gj := ruleGroupJSON{
		Name: g.Name, File: g.File, Rules: []any{}, Interval: g.Interval.Seconds(), Limit: g.Limit,
		EvaluationTime: g.EvaluationTime.Seconds(), LastEvaluation: g.LastEvaluation, Owner: g.Owner,
	}
	for _, r := range g.Rules {
		if !matchesAny(f.names, r.Name) {
			continue
		}
		if r.Alerting {
			if f.typ == "record" {
				continue
			}
			rj := alertingRuleJSON{
				State: r.State, Name: r.Name, Query: r.Query,
				Duration: r.For.Seconds(), KeepFiringFor: r.KeepFiringFor.Seconds(),
				Labels: orEmpty(r.Labels), Annotations: orEmpty(r.Annotations), Alerts: []alertJSON{},
				Health: r.Health, LastError: r.LastError, EvaluationTime: r.EvaluationTime.Seconds(),
				LastEvaluation: r.LastEvaluation, Type: "alerting",
			}
			if !f.excludeAlerts {
				rj.Alerts = alertsJSON(r.Alerts, g.Owner)
			}
			gj.Rules = append(gj.Rules, rj)
			continue
		}
		if f.typ == "alert" {
			continue
		}
		gj.Rules = append(gj.Rules, recordingRuleJSON{
			Name: r.Name, Query: r.Query, Labels: orEmpty(r.Labels), Health: r.Health, LastError: r.LastError,
			EvaluationTime: r.EvaluationTime.Seconds(), LastEvaluation: r.LastEvaluation, Type: "recording",
		})
	}
	return gj
}

func alertsJSON(alerts []Alert, owner string) []alertJSON {
	out := make([]alertJSON, 0, len(alerts))
	for _, al := range alerts {
		activeAt := al.ActiveAt
		aj := alertJSON{
			Labels: al.Labels.Map(), Annotations: al.Annotations.Map(), State: al.State,
			ActiveAt: &activeAt, Value: strconv.FormatFloat(al.Value, 'e', -1, 64), Owner: owner,
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

func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	out := []alertJSON{}
	groups, warnings := a.allRuleGroups(r.Context())
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alerting {
				out = append(out, alertsJSON(r.Alerts, g.Owner)...)
			}
		}
	}
	respond(w, map[string]any{"alerts": out}, warnings)
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
