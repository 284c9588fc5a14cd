package slo

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/tsdb"
)

// Parity runs at a 70 s evaluation interval over samples 35 s off that
// grid: no sample, raw or recorded, ever sits exactly on the start of a
// rule's range (windows of 5m … 3d are no multiples of 70 s). Prometheus
// 2.42 includes a sample at the start of a range and Prometheus 3 (whose
// semantics etcdgate follows) does not; off the grid, both agree.
const (
	parityStep  = 70 * time.Second
	paritySteps = 104 // evaluations: 2h1m20s
)

// values renders n samples, one per parityStep at parityStep/2 offsets,
// as a promtool values string at an input interval of parityStep/2.
func values(n int, v func(i int) float64) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "_ %g ", v(i))
	}
	return sb.String()
}

// paritySeries is two hours of an etcd fleet: cluster b fails 5% of
// its Puts from the first hour on, and one of its members loses its
// leader for about 12 minutes.
func paritySeries() map[string]string {
	n := paritySteps + 1
	std := func(cluster, extra string) string {
		return fmt.Sprintf(`cluster=%q,product="pay",scenario="business",size="large",region="eu"%s`, cluster, extra)
	}
	constant := func(c float64) func(int) float64 { return func(int) float64 { return c } }
	s := map[string]string{}
	for _, c := range []string{"a", "b"} {
		for _, m := range []string{"1", "2"} {
			lbl := std(c, fmt.Sprintf(`,instance="%s%s",job="etcd"`, c, m))
			s[`etcd_server_has_leader{`+lbl+`}`] = values(n, constant(1))
			s[`etcd_mvcc_db_total_size_in_bytes{`+lbl+`}`] = values(n, constant(1000))
			s[`etcd_server_quota_backend_bytes{`+lbl+`}`] = values(n, constant(2000))
			ok := lbl + `,grpc_type="unary",grpc_method="Put",grpc_service="etcdserverpb.KV"`
			s[`grpc_server_handled_total{`+ok+`,grpc_code="OK"}`] = values(n, func(i int) float64 { return float64(100 * i) })
			s[`grpc_server_handled_total{`+ok+`,grpc_code="Unavailable"}`] = values(n, constant(0))
		}
	}
	bad := std("b", `,instance="b1",job="etcd",grpc_type="unary",grpc_method="Put",grpc_service="etcdserverpb.KV"`)
	s[`grpc_server_handled_total{`+bad+`,grpc_code="Unavailable"}`] = values(n, func(i int) float64 { return float64(5 * max(0, i-52)) })
	s[`etcd_server_has_leader{`+std("b", `,instance="b2",job="etcd"`)+`}`] = values(n, func(i int) float64 {
		if i >= 85 && i < 95 {
			return 0
		}
		return 1
	})
	return s
}

// TestSLORulesMatchPrometheus evaluates the generated rules in etcdgate
// (real engine, real head, the rule manager) and writes what it computed
// as the expectations of a `promtool test rules` file over the same
// input: Debian's Prometheus 2.42 must compute the same recorded values
// and fire the same alerts.
func TestSLORulesMatchPrometheus(t *testing.T) {
	promtool := testbin.Promtool(t)
	specs := []Spec{
		{Name: "availability", Objective: 99.9, Window: 28 * 24 * 3600e9, SLI: SLI{Builtin: "availability"}},
		{Name: "errors", Objective: 99, Window: 28 * 24 * 3600e9, SLI: SLI{Builtin: "request_errors"}},
	}
	groups, err := Generate(specs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ruleYAML, err := rules.Marshal(groups)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "slo.yml"), ruleYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	input := paritySeries()
	head := loadHead(t, input)
	engine := evaluator.NewEngine(head, evaluator.Options{})
	m := manualManager(t, engine, head, groups)
	end := paritySteps * parityStep
	for ts := time.Duration(0); ts <= end; ts += parityStep {
		for _, g := range m.Groups() {
			g.Eval(context.Background(), time.UnixMilli(0).Add(ts))
			if ts == 0 {
				g.RestoreForState(context.Background(), time.UnixMilli(0))
			}
		}
	}
	test := promtoolTest(t, engine, m, input, end)
	// Cluster b pages for availability (its outage burns 90× the budget)
	// and opens tickets for both SLOs (errors burn 2.4× the budget).
	if strings.Count(test, "severity: page") != 1 || strings.Count(test, "severity: ticket") != 2 ||
		!strings.Contains(test, "slo:sli_error:ratio_rate1h") {
		t.Fatalf("nothing fired or was recorded:\n%s", test)
	}
	testFile := filepath.Join(dir, "slo.test.yml")
	if err := os.WriteFile(testFile, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, test)
	}
}

func loadHead(t *testing.T, input map[string]string) *tsdb.Head {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := head.Appender()
	p := parser.NewParser(parser.Options{})
	for series, values := range input {
		ls, vals, err := p.ParseSeriesDesc(series + " " + values)
		if err != nil {
			t.Fatalf("%s: %v", series, err)
		}
		for i, v := range vals {
			if v.Omitted {
				continue
			}
			if err := app.Append(ls, int64(i)*(parityStep/2).Milliseconds(), v.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return head
}

func manualManager(t *testing.T, e *evaluator.Engine, head *tsdb.Head, groups []rules.GroupSpec) *rules.Manager {
	t.Helper()
	opts := rules.DefaultOptions()
	opts.Query, opts.Appendable, opts.Queryable, opts.Manual = rules.EngineQueryFunc(e), rules.TSDBAppendable{Store: head}, head, true
	m, err := rules.NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update(groups); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// promtoolTest renders a promtool test: the input series, every slo:*
// series etcdgate recorded at end with its value, and the firing alerts.
func promtoolTest(t *testing.T, e *evaluator.Engine, m *rules.Manager, input map[string]string, end time.Duration) string {
	t.Helper()
	type sample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	type exprTest struct {
		Expr       string   `yaml:"expr"`
		EvalTime   string   `yaml:"eval_time"`
		ExpSamples []sample `yaml:"exp_samples"`
	}
	type alert struct {
		ExpLabels      map[string]string `yaml:"exp_labels"`
		ExpAnnotations map[string]string `yaml:"exp_annotations"`
	}
	type alertTest struct {
		EvalTime  string  `yaml:"eval_time"`
		Alertname string  `yaml:"alertname"`
		ExpAlerts []alert `yaml:"exp_alerts"`
	}
	evalTime := fmt.Sprintf("%ds", int(end.Seconds()))
	res, err := e.Instant(context.Background(), `{__name__=~"slo:.+"}`, time.UnixMilli(0).Add(end))
	if err != nil {
		t.Fatal(err)
	}
	// Compared at 12 decimals: the engines add in different orders.
	byName := map[string][]sample{}
	for _, s := range res.Value.(evaluator.Vector) {
		name := s.Metric.Get("__name__")
		ls := labels.NewBuilder(s.Metric).Del("__name__").Labels()
		byName[name] = append(byName[name], sample{Labels: ls.String(), Value: math.Floor(s.F*1e12 + 0.5)})
	}
	var exprs []exprTest
	for name, samples := range byName {
		exprs = append(exprs, exprTest{Expr: "round(" + name + " * 1e12)", EvalTime: evalTime, ExpSamples: samples})
	}
	sort.Slice(exprs, func(i, j int) bool { return exprs[i].Expr < exprs[j].Expr })
	var alerts []alert
	for _, g := range m.Groups() {
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				for _, a := range ar.ActiveAlerts() {
					if a.State == rules.StateFiring {
						alerts = append(alerts, alert{ExpLabels: a.Labels.Map(), ExpAnnotations: a.Annotations.Map()})
					}
				}
			}
		}
	}
	var series []map[string]string
	for s, v := range input {
		series = append(series, map[string]string{"series": s, "values": v})
	}
	sort.Slice(series, func(i, j int) bool { return series[i]["series"] < series[j]["series"] })
	// Groups run in etcdgate's order (promtool's is random without it):
	// the hourly copy of a ratio reads the ratio of the same round.
	var order []string
	for _, g := range m.Groups() {
		order = append(order, g.Name())
	}
	doc := map[string]any{
		"group_eval_order":    order,
		"rule_files":          []string{"slo.yml"},
		"evaluation_interval": fmt.Sprintf("%ds", int(parityStep.Seconds())),
		"tests": []map[string]any{{
			"interval": fmt.Sprintf("%ds", int(parityStep.Seconds()/2)), "input_series": series, "promql_expr_test": exprs,
			"alert_rule_test": []alertTest{{EvalTime: evalTime, Alertname: "ErrorBudgetBurn", ExpAlerts: alerts}},
		}},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
