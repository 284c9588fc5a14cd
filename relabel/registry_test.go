package relabel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func TestParseRegistryGood(t *testing.T) {
	recs, err := LoadRegistryFile("testdata/registry.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	pay := recs["etcd-pay-eu-1"]
	if len(recs) != 2 || pay == nil || pay.Size != SizeLarge || pay.Labels["team"] != "storage" ||
		len(pay.KubernetesClusters) != 2 || !recs["etcd-platform-1"].Override {
		t.Fatalf("records %+v", recs)
	}
}

// TestParseRegistryBad checks that each bad file is refused naming the
// line of the problem.
func TestParseRegistryBad(t *testing.T) {
	want := map[string]string{
		"syntax.bad.yml":       "line 2: did not find expected",
		"unknown_size.bad.yml": `line 4: cluster "b": unknown size "huge"`,
		"duplicate.bad.yml":    `line 5: duplicate cluster "a" (first at line 2)`,
		"unknown_key.bad.yml":  "line 3: field prodcut not found",
		"endpoint.bad.yml":     `line 4: cluster "b": endpoint "10.0.0.2:2379": want http://host:port or https://host:port`,
	}
	files, _ := filepath.Glob("testdata/*.bad.yml")
	if len(files) != len(want) {
		t.Fatalf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		_, err := LoadRegistryFile(f)
		if err == nil || !strings.Contains(err.Error(), want[filepath.Base(f)]) {
			t.Errorf("%s: error %v, want it to contain %q", f, err, want[filepath.Base(f)])
		}
	}
}

// TestRegistryFileReloadKeepsPreviousOnError checks that a broken edit
// of the registry file leaves the previous clusters in force, and that a
// good edit changes the labels of the cluster's series.
func TestRegistryFileReloadKeepsPreviousOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.yml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("clusters:\n  - {cluster: a, product: one, size: small}\n")
	p := newTestPipeline(t, DefaultConfig())
	var failures int
	w := NewFileWatcher(path, p.Registry(), nil, func(error) { failures++ })
	if err := w.Load(); err != nil {
		t.Fatal(err)
	}
	series := labels.FromStrings("__name__", "up", "cluster", "a")
	check := func(product string) {
		t.Helper()
		out, keep, _ := p.Relabel(series)
		if !keep || out.Get("product") != product {
			t.Fatalf("got %s, want product=%q", out, product)
		}
	}
	check("one")
	for _, bad := range []string{
		"clusters:\n  - {cluster: a, product: two, size: huge}\n",
		"clusters:\n  - {cluster: a, product: two}\n  - {cluster: a}\n",
		"clusters: [\n",
	} {
		write(bad)
		if err := w.Load(); err == nil {
			t.Fatalf("%q loaded", bad)
		}
		check("one")
	}
	if failures != 3 {
		t.Fatalf("%d failures counted, want 3", failures)
	}
	write("clusters:\n  - {cluster: a, product: two}\n")
	if err := w.reloadIfChanged(); err != nil {
		t.Fatal(err)
	}
	check("two")
}

// TestEnrichment checks the registry labels, who wins on a conflict, and
// the defaults for unknown clusters.
func TestEnrichment(t *testing.T) {
	p := newTestPipeline(t, DefaultConfig())
	recs, err := LoadRegistryFile("testdata/registry.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	p.Registry().SetFile(recs)
	for _, tc := range []struct{ in, want string }{
		{`{__name__="up", cluster="etcd-pay-eu-1"}`,
			`{__name__="up", cluster="etcd-pay-eu-1", product="payments", region="eu-west", scenario="business", size="large", team="storage"}`},
		// The series' own labels win without override...
		{`{__name__="up", cluster="etcd-pay-eu-1", region="local", size="small"}`,
			`{__name__="up", cluster="etcd-pay-eu-1", product="payments", region="local", scenario="business", size="small", team="storage"}`},
		// ...and lose with it; a registered cluster without size gets the default.
		{`{__name__="up", cluster="etcd-platform-1", region="local"}`,
			`{__name__="up", cluster="etcd-platform-1", product="platform", region="us-east", scenario="platform", size="default"}`},
		{`{__name__="up", cluster="nobody"}`, `{__name__="up", cluster="nobody", scenario="unknown", size="default"}`},
		// Series without a cluster label are not etcd fleet series: untouched.
		{`{__name__="up", job="node"}`, `{__name__="up", job="node"}`},
	} {
		out, keep, _ := p.Relabel(mustParse(t, tc.in))
		if !keep || out.String() != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, out, tc.want)
		}
	}
	if st := p.Status(); st.UnknownClusterSeries != 1 || st.RegistryClusters != 2 {
		t.Fatalf("status %+v", st)
	}
}

func mustParse(t testing.TB, s string) labels.Labels {
	t.Helper()
	b := labels.NewScratchBuilder(8)
	for _, part := range strings.Split(strings.Trim(s, "{}"), ", ") {
		n, v, _ := strings.Cut(part, "=")
		b.Add(n, strings.Trim(v, `"`))
	}
	b.Sort()
	return b.Labels()
}
