package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
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
	// matchers select rules by their labels (match[]): a rule is shown
	// if its labels match any set.
	matchers [][]*labels.Matcher
	// groupLimit pages the answer by group (0: no paging); nextToken is
	// the token of the page's first group.
	groupLimit int
	nextToken  string
}

func parseRuleFilter(r *http.Request, pl evaluator.ParseLimits) (ruleFilter, error) {
	if err := r.ParseForm(); err != nil {
		return ruleFilter{}, fmt.Errorf("error parsing form values: %w", err)
	}
	f := ruleFilter{typ: r.Form.Get("type"), names: r.Form["rule_name[]"], groups: r.Form["rule_group[]"], file: r.Form["file[]"]}
	if f.typ != "" && f.typ != "alert" && f.typ != "record" {
		return f, fmt.Errorf("unsupported type %q: want alert or record", f.typ)
	}
	var err error
	if f.matchers, err = parseMatchers(r.Form["match[]"], pl); err != nil {
		return f, err
	}
	f.nextToken = r.Form.Get("group_next_token")
	switch s := r.Form.Get("group_limit"); {
	case s != "":
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n <= 0 {
			return f, fmt.Errorf("invalid parameter \"group_limit\": %q, must be a positive integer", s)
		}
		f.groupLimit = int(n)
	case f.nextToken != "":
		return f, errors.New("invalid parameter \"group_next_token\": group_limit needs to be present in order to paginate over the groups")
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

// ruleGroupsJSON is /api/v1/rules' data.
type ruleGroupsJSON struct {
	Groups         []ruleGroupJSON `json:"groups"`
	GroupNextToken string          `json:"groupNextToken,omitempty"`
}

// groupToken names a group for group_next_token as Prometheus does (the
// SHA-256 of "file;name"), so a token stays valid while the group does.
func groupToken(g *RuleGroup) string {
	h := sha256.Sum256([]byte(g.File + ";" + g.Name))
	return hex.EncodeToString(h[:])
}

// ruleGroups serves /api/v1/rules: the groups of the whole ring (sorted
// by file and name) filtered, then paged by group_limit as Prometheus
// 3 pages them: a page starts at the group of group_next_token and ends
// with a groupNextToken naming the next page's first group.
func (a *API) ruleGroups(w http.ResponseWriter, r *http.Request) {
	f, err := parseRuleFilter(r, a.listingState().limits.Parse)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	out := ruleGroupsJSON{Groups: []ruleGroupJSON{}}
	groups, warnings := a.allRuleGroups(r.Context())
	found := false
	for i := range groups {
		g := &groups[i]
		if f.groupLimit > 0 && f.nextToken != "" && !found {
			if groupToken(g) != f.nextToken {
				continue
			}
			found = true
		}
		if !matchesAny(f.groups, g.Name) || !matchesAny(f.file, g.File) {
			continue
		}
		gj := groupJSON(g, f)
		if len(gj.Rules) == 0 && (f.typ != "" || len(f.names) > 0 || len(f.matchers) > 0) {
			continue
		}
		if f.groupLimit > 0 && len(out.Groups) == f.groupLimit {
			out.GroupNextToken = groupToken(g)
			break
		}
		out.Groups = append(out.Groups, gj)
	}
	if f.groupLimit > 0 && f.nextToken != "" && !found {
		respondError(w, badData(fmt.Errorf("invalid parameter \"group_next_token\": %q names no rule group; were rule groups changed?", f.nextToken)))
		return
	}
	respond(w, out, warnings)
}

// matchesRule reports whether a rule's labels match any of the matcher
// sets (all rules when there are none).
func matchesRule(sets [][]*labels.Matcher, ls map[string]string) bool {
	if len(sets) == 0 {
		return true
	}
	for _, set := range sets {
		ok := true
		for _, m := range set {
			if !m.Matches(ls[m.Name]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func groupJSON(g *RuleGroup, f ruleFilter) ruleGroupJSON {
	gj := ruleGroupJSON{
		Name: g.Name, File: g.File, Rules: []any{}, Interval: g.Interval.Seconds(), Limit: g.Limit,
		EvaluationTime: g.EvaluationTime.Seconds(), LastEvaluation: g.LastEvaluation, Owner: g.Owner,
	}
	for _, r := range g.Rules {
		if !matchesAny(f.names, r.Name) || !matchesRule(f.matchers, r.Labels) {
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
