package slo

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/evaluator/rules"
)

// TestStatuses evaluates two SLOs over the parity fleet and checks what
// /api/v1/slo would serve: cluster b burns, cluster a does not, and the
// scenario and region roll-ups average both.
func TestStatuses(t *testing.T) {
	specs := []Spec{
		{Name: "availability", Objective: 99.9, Window: 28 * 24 * 3600e9, SLI: SLI{Builtin: "availability"}},
		{Name: "errors", Objective: 99, Window: 28 * 24 * 3600e9, SLI: SLI{Builtin: "request_errors"}},
	}
	groups, err := Generate(specs)
	if err != nil {
		t.Fatal(err)
	}
	head := loadHead(t, paritySeries())
	engine := evaluator.NewEngine(head, evaluator.Options{})
	m := manualManager(t, engine, head, groups)
	end := paritySteps * parityStep
	for ts := time.Duration(0); ts <= end; ts += parityStep {
		for _, g := range m.Groups() {
			g.Eval(context.Background(), time.UnixMilli(0).Add(ts))
		}
	}
	st, err := Statuses(context.Background(), rules.EngineQueryFunc(engine), specs, time.UnixMilli(0).Add(end))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatalf("status does not encode: %v", err)
	}
	errs := st[1]
	if errs.Name != "errors" || errs.ErrorBudget < 0.0099 || errs.ErrorBudget > 0.0101 || len(errs.Clusters) != 2 {
		t.Fatalf("status %+v", errs)
	}
	a, b := errs.Clusters[0], errs.Clusters[1]
	if a.Labels["cluster"] != "a" || a.BurnRates["1h"] != 0 || a.ErrorBudgetRemaining == nil || *a.ErrorBudgetRemaining != 1 {
		t.Fatalf("cluster a %+v", a)
	}
	// 5% of one of two members' Puts fail: 2.5% of the cluster's, 2.5×
	// a 1% budget (the 5m window is fully in the failing hour).
	if r := b.BurnRates["5m"]; r < 2.3 || r > 2.6 {
		t.Fatalf("cluster b 5m burn rate %v", r)
	}
	if b.ErrorBudgetRemaining == nil || *b.ErrorBudgetRemaining >= 1 {
		t.Fatalf("cluster b budget %v", b.ErrorBudgetRemaining)
	}
	sc := errs.Scenarios
	if len(sc) != 1 || sc[0].Labels["scenario"] != "business" || sc[0].Count != 2 ||
		sc[0].BurnRates["5m"] != (a.BurnRates["5m"]+b.BurnRates["5m"])/2 {
		t.Fatalf("scenario roll-up %+v", sc)
	}
	if len(errs.Regions) != 1 || errs.Regions[0].Labels["region"] != "eu" {
		t.Fatalf("region roll-up %+v", errs.Regions)
	}
}
