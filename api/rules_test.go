package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// fakeRules serves fixed rule groups.
type fakeRules []RuleGroup

func (f fakeRules) RuleGroups() []RuleGroup { return f }

// rulesServer serves a recording rule and an alerting rule with one
// pending alert, as the rule manager reports them after one evaluation
// at testNow (cmd/etcdgate tests that mapping).
func rulesServer(t *testing.T) *httptest.Server {
	t.Helper()
	groups := fakeRules{{Name: "etcd", File: "etcd.yml", Interval: time.Hour, Limit: 5, LastEvaluation: testNow, Rules: []Rule{
		{Name: "cluster:x:sum", Query: "sum by (cluster) (x)", Health: "ok", LastEvaluation: testNow},
		{Alerting: true, Name: "NoLeader", Query: "x > 0", For: time.Minute, State: "pending", Health: "ok",
			Labels: map[string]string{"severity": "page"}, Annotations: map[string]string{"summary": "{{ $labels.cluster }} = {{ $value }}"},
			Alerts: []Alert{{Labels: labels.FromStrings("alertname", "NoLeader", "cluster", "c1", "severity", "page"),
				Annotations: labels.FromStrings("summary", "c1 = 2"), State: "pending", Value: 2, ActiveAt: testNow}}},
	}}}
	srv := httptest.NewServer(New(Options{Rules: groups}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func getJSON(t *testing.T, u string, into any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	if into != nil && env.Status == "success" {
		if err := json.Unmarshal(env.Data, into); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func TestRulesEndpoint(t *testing.T) {
	srv := rulesServer(t)
	var data struct {
		Groups []struct {
			Name, File string
			Interval   float64
			Limit      int
			Rules      []map[string]any
		}
	}
	if code := getJSON(t, srv.URL+"/api/v1/rules", &data); code != 200 || len(data.Groups) != 1 {
		t.Fatalf("code %d, %+v", code, data)
	}
	g := data.Groups[0]
	if g.Name != "etcd" || g.File != "etcd.yml" || g.Interval != 3600 || g.Limit != 5 || len(g.Rules) != 2 {
		t.Fatalf("group %+v", g)
	}
	rec, alert := g.Rules[0], g.Rules[1]
	if rec["type"] != "recording" || rec["health"] != "ok" || rec["query"] != "sum by (cluster) (x)" {
		t.Fatalf("recording rule %+v", rec)
	}
	if alert["type"] != "alerting" || alert["state"] != "pending" || alert["duration"] != 60.0 {
		t.Fatalf("alerting rule %+v", alert)
	}
	alerts := alert["alerts"].([]any)
	a := alerts[0].(map[string]any)
	if a["value"] != "2e+00" || a["annotations"].(map[string]any)["summary"] != "c1 = 2" || a["state"] != "pending" {
		t.Fatalf("alert %+v", a)
	}

	data.Groups = nil
	getJSON(t, srv.URL+"/api/v1/rules?"+url.Values{"type": {"record"}}.Encode(), &data)
	if len(data.Groups) != 1 || len(data.Groups[0].Rules) != 1 || data.Groups[0].Rules[0]["type"] != "recording" {
		t.Fatalf("type=record: %+v", data)
	}
	data.Groups = nil
	getJSON(t, srv.URL+"/api/v1/rules?exclude_alerts=true&rule_name[]=NoLeader", &data)
	if r := data.Groups[0].Rules; len(r) != 1 || len(r[0]["alerts"].([]any)) != 0 {
		t.Fatalf("exclude_alerts, rule_name[]: %+v", r)
	}
	if code := getJSON(t, srv.URL+"/api/v1/rules?type=bogus", nil); code != 400 {
		t.Fatalf("bad type: %d", code)
	}
}

func TestAlertsEndpoint(t *testing.T) {
	srv := rulesServer(t)
	var data struct {
		Alerts []struct {
			Labels map[string]string
			State  string
		}
	}
	if code := getJSON(t, srv.URL+"/api/v1/alerts", &data); code != 200 || len(data.Alerts) != 1 {
		t.Fatalf("code %d, %+v", code, data)
	}
	if a := data.Alerts[0]; a.State != "pending" || a.Labels["alertname"] != "NoLeader" || a.Labels["severity"] != "page" {
		t.Fatalf("alert %+v", a)
	}
}

func TestRulesWithoutManager(t *testing.T) {
	srv := httptest.NewServer(New(Options{}).Handler())
	defer srv.Close()
	var data struct{ Groups []any }
	if code := getJSON(t, srv.URL+"/api/v1/rules", &data); code != 200 || data.Groups == nil {
		t.Fatalf("code %d, %+v", code, data)
	}
	var slos struct{ SLOs []any }
	if code := getJSON(t, srv.URL+"/api/v1/slo", &slos); code != 200 {
		t.Fatalf("slo code %d", code)
	}
}

func TestSLOEndpoint(t *testing.T) {
	var at time.Time
	srv := httptest.NewServer(New(Options{SLOStatus: func(_ context.Context, ts time.Time) (any, error) {
		at = ts
		return map[string]any{"slos": []string{"x"}}, nil
	}}).Handler())
	defer srv.Close()
	var data struct{ SLOs []string }
	if code := getJSON(t, srv.URL+"/api/v1/slo?time=1700000000", &data); code != 200 || len(data.SLOs) != 1 || at.Unix() != 1700000000 {
		t.Fatalf("code %d, %+v, at %v", code, data, at)
	}
	if code := getJSON(t, srv.URL+"/api/v1/slo?time=soon", nil); code != 400 {
		t.Fatalf("bad time: %d", code)
	}
}
