package thresholds

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/internal/testbin"
)

const tableYAML = `
population: etcd_server_has_leader{job="etcd"}
alerts:
  EtcdHighFsyncDurations:
    default: 0.5
    sizes: {large: 0.4}
    scenarios:
      business: {default: 0.3, large: 0.25}
  EtcdDatabaseQuotaLowSpace:
    default: 95
`

func parseConfig(t *testing.T, y string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(y))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCompile(t *testing.T) {
	g, ok, err := parseConfig(t, tableYAML).Compile()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if g.Name != GroupName || len(g.Rules) != 2 || g.Rules[1].Labels["alertname"] != "EtcdHighFsyncDurations" {
		t.Fatalf("%+v", g)
	}
	want := `label_replace(label_replace(vector(0.25), "scenario", "business", "", ""), "size", "large", "", "")
or
(0.3 + 0 * group by (scenario, size) (etcd_server_has_leader{job="etcd",scenario="business"}))
or
(0.4 + 0 * group by (scenario, size) (etcd_server_has_leader{job="etcd",size="large"}))
or
(0.5 + 0 * group by (scenario, size) (etcd_server_has_leader{job="etcd"}))`
	if got := g.Rules[1].Expr; got != want {
		t.Fatalf("expr:\n%s\nwant:\n%s", got, want)
	}
	if _, ok, _ := (Config{}).Compile(); ok {
		t.Fatal("empty config compiled to a group")
	}
}

func TestCompiledRulesPassPromtool(t *testing.T) {
	promtool := testbin.Promtool(t)
	g, _, err := parseConfig(t, tableYAML).Compile()
	if err != nil {
		t.Fatal(err)
	}
	out, err := rules.Marshal([]rules.GroupSpec{g})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "thresholds.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s\n%s", err, res, out)
	}
}

func TestValidate(t *testing.T) {
	f := func(y, want string) {
		t.Helper()
		_, _, err := parseConfig(t, y).Compile()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	f("alerts: {A: {}}", "thresholds: A: empty table")
	f("alerts: {A: {scenarios: {business: {}}}}", `scenario "business" needs a name and at least one size`)
	f("population: 'up{'\nalerts: {A: {default: 1}}", "thresholds: population:")
}
