package slo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/internal/testbin"
)

func generateFile(t *testing.T, path string) ([]rules.GroupSpec, []byte) {
	t.Helper()
	specs, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := Generate(specs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rules.Marshal(groups)
	if err != nil {
		t.Fatal(err)
	}
	return groups, out
}

func TestGenerate(t *testing.T) {
	groups, out := generateFile(t, "testdata/slos.yml")
	if len(groups) != 12 {
		t.Fatalf("%d groups", len(groups))
	}
	if _, errs := rules.Parse("generated.yml", out); len(errs) > 0 {
		t.Fatalf("generated rules invalid: %v\n%s", errs, out)
	}
	g := groups[0]
	// availability: its member rule, error and total rates, 7 ratios, page and ticket alerts.
	if len(g.Rules) != 1+2+len(Windows)+2 || g.Rules[0].Record != "slo:etcd_member_unavailable:bool" {
		t.Fatalf("availability group: %+v", g.Rules)
	}
	page := g.Rules[len(g.Rules)-2]
	for _, want := range []string{
		`slo:sli_error:ratio_rate1h{slo="etcd-availability"} > (14.4 * 0.0005)`,
		`slo:sli_error:ratio_rate5m{slo="etcd-availability"} > (14.4 * 0.0005)`,
		`slo:sli_error:ratio_rate6h{slo="etcd-availability"} > (6 * 0.0005)`,
		`slo:sli_error:ratio_rate30m{slo="etcd-availability"} > (6 * 0.0005)`,
	} {
		if !strings.Contains(page.Expr, want) {
			t.Errorf("page alert lacks %q:\n%s", want, page.Expr)
		}
	}
	ticket := g.Rules[len(g.Rules)-1]
	if ticket.Labels["severity"] != "ticket" || !strings.Contains(ticket.Expr, `slo:sli_error:ratio_rate3d{slo="etcd-availability"} > (1 * 0.0005)`) ||
		!strings.Contains(ticket.Expr, `slo:sli_error:ratio_rate2h{slo="etcd-availability"} > (3 * 0.0005)`) {
		t.Errorf("ticket alert: %+v", ticket)
	}
	period := groups[1]
	if period.Interval.String() != "1h" || period.Rules[2].Record != "slo:sli_error:ratio_rate4w" {
		t.Errorf("period group: %+v", period)
	}
	custom := groups[10]
	if r := custom.Rules[0]; !strings.Contains(r.Expr, `rate(http_requests_total{code=~"5.."}[5m])`) || r.Labels["slo"] != "api-custom" {
		t.Errorf("custom ratio: %+v", r)
	}
	if a := custom.Rules[len(custom.Rules)-1]; a.Alert != "ApiErrorBudgetBurn" {
		t.Errorf("custom alert name: %+v", a)
	}
	if r := groups[2].Rules[0]; !strings.Contains(r.Expr, `grpc_code=~"Unknown|FailedPrecondition`) || !strings.Contains(r.Expr, "sum by (cluster, product, scenario, size, region)") {
		t.Errorf("request errors ratio: %s", r.Expr)
	}
	if r := groups[4].Rules[0]; !strings.Contains(r.Expr, `grpc_server_handling_seconds_bucket{grpc_type="unary",grpc_method=~"Range|Txn|Put|DeleteRange|LeaseGrant",le="0.25"}[5m]`) {
		t.Errorf("latency ratio: %s", r.Expr)
	}
}

// TestGeneratedRulesPassPromtool checks the generated file with Debian's
// promtool (Prometheus 2.42): the rules run in a stock Prometheus.
func TestGeneratedRulesPassPromtool(t *testing.T) {
	promtool := testbin.Promtool(t)
	_, out := generateFile(t, "testdata/slos.yml")
	path := filepath.Join(t.TempDir(), "slo-rules.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, res)
	}
	if !strings.Contains(string(res), "SUCCESS: 92 rules found") {
		t.Fatalf("promtool: %s", res)
	}
}

func TestValidate(t *testing.T) {
	f := func(yml, want string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "slo.yml")
		if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	ok := "{builtin: availability}"
	spec := func(name, obj, window, sli string) string {
		return "slos:\n- {name: " + name + ", objective: " + obj + ", window: " + window + ", sli: " + sli + "}\n"
	}
	f(spec("a", "100", "28d", ok), "objective 100: want a percentage strictly between 0 and 100")
	f(spec("a", "0", "28d", ok), "objective 0")
	f(spec("'a b'", "99", "28d", ok), "name must match")
	f(spec("a", "99", "1d", ok), "shorter than the longest alert window")
	f(spec("a", "99", "28d", "{builtin: nope}"), `unknown builtin "nope" (want one of availability, disk, inspection_health, request_errors, request_latency)`)
	f(spec("a", "99", "28d", "{builtin: disk, params: {wal: '1'}}"), `builtin disk has no parameter "wal"`)
	f(spec("a", "99", "28d", "{builtin: disk, params: {wal_fsync_p99_seconds: slow}}"), `wal_fsync_p99_seconds "slow" is not a number`)
	f(spec("a", "99", "28d", "{builtin: request_latency, params: {source: etcd}}"), `source "etcd": want apply or grpc`)
	f(spec("a", "99", "28d", "{error_query: 'x[5m]', total_query: 'y[{{.window}}]'}"), "error_query must contain {{.window}}")
	f(spec("a", "99", "28d", "{error_query: 'x[{{.window}}]'}"), "must both be set")
	f(spec("a", "99", "28d", "{error_query: 'sum(x[{{.window}}]', total_query: 'y[{{.window}}]'}"), "sli: error_query:")
	f(spec("a", "99", "28d", "{builtin: availability, error_query: 'x[{{.window}}]'}"), "not both")
	f(spec("a", "99", "28d", ok)+"- {name: a, objective: 99, window: 28d, sli: {builtin: disk}}\n", `slo 2 ("a"): name used twice`)
	f("slos:\n- {name: a, objective: 99, window: 28d, sli: {builtin: disk}, oops: 1}\n", "field oops not found")
	f("slos:\n- {name: a, objective: 99, window: 28d, sli: {builtin: disk}, labels: {severity: x}}\n", `labels: "severity"`)
}
