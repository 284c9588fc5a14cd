package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/probe"
)

type discardSamples struct{}

func (discardSamples) AppendSamples(context.Context, []evaluator.Sample) error { return nil }

// apiGet serves h one GET and decodes the envelope's data into into.
func apiGet(t *testing.T, h http.Handler, path string, into any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	env := struct {
		Status string `json:"status"`
		Data   any    `json:"data"`
	}{Data: into}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || w.Code != 200 || env.Status != "success" {
		t.Fatalf("%s: %d %s (%v)", path, w.Code, w.Body, err)
	}
}

// TestRulesThroughAPIAdapter runs a real rule manager, evaluates once,
// and reads it through the adapter and the API: the snapshot carries
// every field the endpoints serve.
func TestRulesThroughAPIAdapter(t *testing.T) {
	opts := rules.DefaultOptions()
	opts.EvaluationInterval = time.Hour
	opts.Appendable = discardSamples{}
	opts.Query = func(_ context.Context, _ string, ts time.Time) (evaluator.Vector, error) {
		return evaluator.Vector{{Metric: labels.FromStrings("cluster", "c1"), T: ts.UnixMilli(), F: 2}}, nil
	}
	m, err := rules.NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	err = m.Update([]rules.GroupSpec{{Name: "etcd", File: "etcd.yml", Limit: 5, Rules: []rules.RuleSpec{
		{Record: "cluster:x:sum", Expr: "sum by (cluster) (x)"},
		{Alert: "NoLeader", Expr: "x > 0", For: model.Duration(time.Minute), Labels: map[string]string{"severity": "page"},
			Annotations: map[string]string{"summary": "{{ $labels.cluster }} = {{ $value }}"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m.Groups()[0].RestoreForState(context.Background(), now)
	m.Groups()[0].Eval(context.Background(), now)
	rt := &ruleRuntime{}
	rt.manager.Store(m)
	h := api.New(api.Options{Rules: rt}).Handler()

	var data struct {
		Groups []struct {
			Name, File string
			Interval   float64
			Limit      int
			Rules      []map[string]any
		}
	}
	apiGet(t, h, "/api/v1/rules", &data)
	if len(data.Groups) != 1 {
		t.Fatalf("%+v", data)
	}
	g := data.Groups[0]
	if g.Name != "etcd" || g.File != "etcd.yml" || g.Interval != 3600 || g.Limit != 5 || len(g.Rules) != 2 {
		t.Fatalf("group %+v", g)
	}
	rec, alert := g.Rules[0], g.Rules[1]
	if rec["type"] != "recording" || rec["health"] != "ok" || rec["query"] != "sum by (cluster) (x)" || rec["name"] != "cluster:x:sum" {
		t.Fatalf("recording rule %+v", rec)
	}
	if alert["type"] != "alerting" || alert["state"] != "pending" || alert["duration"] != 60.0 || alert["health"] != "ok" ||
		alert["labels"].(map[string]any)["severity"] != "page" {
		t.Fatalf("alerting rule %+v", alert)
	}
	a := alert["alerts"].([]any)[0].(map[string]any)
	if a["value"] != "2e+00" || a["annotations"].(map[string]any)["summary"] != "c1 = 2" || a["state"] != "pending" ||
		a["labels"].(map[string]any)["cluster"] != "c1" {
		t.Fatalf("alert %+v", a)
	}
	var alerts struct{ Alerts []map[string]any }
	apiGet(t, h, "/api/v1/alerts", &alerts)
	if len(alerts.Alerts) != 1 || alerts.Alerts[0]["state"] != "pending" {
		t.Fatalf("alerts %+v", alerts)
	}
}

// TestInspectionsThroughAPIAdapter reads a real record store through the
// adapter and the API.
func TestInspectionsThroughAPIAdapter(t *testing.T) {
	store := probe.NewRecordStore(time.Hour, 100)
	now := time.Now()
	store.Add(probe.Record{Cluster: "etcd-a", Inspection: "health", Status: probe.StatusFailed, Message: "refused",
		Start: now, End: now, Labels: map[string]string{"product": "pay"}, Requests: 3, BytesRead: 42})
	store.Add(probe.Record{Cluster: "etcd-a", Inspection: "health", Status: probe.StatusSuccess, Message: "fine", Start: now, End: now})
	h := api.New(api.Options{Inspections: probeRecords{store}}).Handler()
	var recs []api.InspectionRecord
	apiGet(t, h, "/api/v1/inspections?status=failed", &recs)
	if len(recs) != 1 || recs[0].Message != "refused" || recs[0].Labels["product"] != "pay" || recs[0].Requests != 3 ||
		recs[0].BytesRead != 42 || recs[0].Status != "failed" || !recs[0].End.Equal(now) {
		t.Fatalf("%+v", recs)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/inspections?inspection=hotkeys", nil))
	if w.Code != http.StatusBadRequest {
		t.Fatalf("unknown inspection: %d", w.Code)
	}
}
