package grafana

//lint:file-ignore SA1019 the dashboards are v1 on purpose (see build.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/model/labels"
	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/evaluator/slo"
	"github.com/etcdgate/etcdgate/internal/etcdfleet"
	"github.com/etcdgate/etcdgate/tsdb"
)

// TestGeneratedJSON fails when the committed JSON differs from what the
// code builds.
func TestGeneratedJSON(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files, err := Dashboards()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("%d dashboards, want 4", len(files))
	}
	for _, f := range files {
		old, err := os.ReadFile(f.Name)
		if err != nil {
			t.Errorf("%v; run `go generate ./deploy/grafana/`", err)
			continue
		}
		if !bytes.Equal(old, f.JSON) {
			t.Errorf("%s differs from what the code generates; run `go generate ./deploy/grafana/`", f.Name)
		}
		var d dashboard.Dashboard
		if err := json.Unmarshal(f.JSON, &d); err != nil {
			t.Errorf("%s does not decode as a Grafana dashboard: %v", f.Name, err)
		} else if d.Uid == nil || len(d.Panels) == 0 {
			t.Errorf("%s: decoded without uid or panels", f.Name)
		}
		if len(f.JSON) > 48<<10 {
			t.Errorf("%s is %d bytes, want at most 48 KiB", f.Name, len(f.JSON))
		}
	}
}

// The generated fleet: 6 clusters of 3 members, in 3 regions and 2
// scenarios, 45 minutes at 15 s.
const (
	clusters = 6
	step     = 15 * time.Second
	span     = 45 * time.Minute
)

var end = time.Unix(1_800_000_000, 0)

func clusterLabels(c int) []string {
	return []string{"scenario", []string{"kubernetes", "gateway"}[c/3], "size", []string{"s", "m"}[c%2]}
}

// values are the template variables' values the panels are evaluated
// with: those of cluster 0, which the generated data has.
var values = map[string]string{
	"region": "eu-west-1", "scenario": "kubernetes", "size": "s",
	"cluster": "etcd-eu-west-1-0", "kubernetes_cluster": "k8s-0-a",
	// Grafana's interval variables for the last 30 minutes at a 15 s
	// scrape interval: $__rate_interval is max(4 × scrape, interval + scrape).
	"__interval": "15s", "__rate_interval": "1m", "__range": "30m",
}

// all is what Grafana puts for a multi-value variable set to All (its
// allValue); every query is also evaluated so.
var all = map[string]string{"region": ".*", "scenario": ".*", "size": ".*"}

var varRE = regexp.MustCompile(`\$\{?(\w+)\}?`)

func substitute(t *testing.T, q string, override map[string]string) string {
	return varRE.ReplaceAllStringFunc(q, func(m string) string {
		name := strings.Trim(m[1:], "{}")
		if v, ok := override[name]; ok {
			return v
		}
		v, ok := values[name]
		if !ok {
			t.Errorf("query %q: variable %s has no value", q, name)
		}
		return v
	})
}

// fill loads the fleet into a head: etcd's series from etcdfleet, `up`,
// the recording rules of deploy/rules/etcd.yml evaluated over them, and
// the series etcdgate itself writes (SLO rule outputs, ALERTS,
// inspections, completeness, cluster info) synthesized per cluster.
func fill(t *testing.T) (*tsdb.Head, *evaluator.Engine) {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fleet := etcdfleet.New(etcdfleet.Options{Clusters: clusters, Members: 3, ClusterLabels: clusterLabels})
	start := end.Add(-span)
	for ts := start; !ts.After(end); ts = ts.Add(step) {
		app := head.Appender()
		ms := ts.UnixMilli()
		add := func(ls labels.Labels, v float64) {
			if err := app.Append(ls, ms, v); err != nil {
				t.Fatalf("append %s: %v", ls, err)
			}
		}
		for _, s := range fleet.Scrape(ms) {
			add(s.Labels, s.V)
			if s.Labels.Get("__name__") == "etcd_server_has_leader" {
				add(labels.NewBuilder(s.Labels).Set("__name__", "up").Labels(), 1)
			}
		}
		for c := range clusters {
			synthesize(fleet, c, ts, add)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	e := evaluator.NewEngine(head, evaluator.Options{})
	record(t, head, e, start)
	return head, e
}

// synthesize adds cluster c's series that etcdgate writes at ts and no
// rule of ours records: ALERTS, cluster info, inspections, completeness.
func synthesize(fleet *etcdfleet.Fleet, c int, ts time.Time, add func(labels.Labels, float64)) {
	name := fleet.ClusterName(c)
	std := fleet.LabelSets(c * 3)[0]
	kv := []string{"cluster", name, "product", std.Get("product"), "region", std.Get("region"),
		"scenario", std.Get("scenario"), "size", std.Get("size")}
	series := func(metric string, extra ...string) labels.Labels {
		return labels.FromStrings(append(append([]string{"__name__", metric}, kv...), extra...)...)
	}
	if c%2 == 0 {
		add(series("ALERTS", "alertname", "EtcdHighFsyncDurations", "alertstate", "firing", "severity", "warning"), 1)
	}
	for _, k := range []string{"a", "b"} {
		k8s := fmt.Sprintf("k8s-%d-%s", c, k)
		add(series("etcdgate_cluster_info", "kubernetes_cluster", k8s), 1)
		if k == "a" {
			add(labels.FromStrings("__name__", "ALERTS", "alertname", "KubeAPIErrorBudgetBurn", "alertstate", "firing",
				"severity", "critical", "kubernetes_cluster", k8s), 1)
		}
	}
	if ts.Unix()%300 == 0 {
		add(series("etcdgate_inspection_has_leader", "inspection", "health"), 1)
		add(series("etcdgate_inspection_leaders", "inspection", "health"), 1)
		add(series("etcdgate_inspection_keys", "inspection", "key_count"), 1000*float64(c+1))
		add(series("etcdgate_inspection_success", "inspection", "health"), 1)
	}
	for m := range 3 {
		inst := fleet.LabelSets(c*3 + m)[0].Get("instance")
		target := func(metric string, extra ...string) labels.Labels {
			return labels.FromStrings(append([]string{"__name__", metric, "cluster", name, "instance", inst, "job", "etcd"}, extra...)...)
		}
		for _, w := range []string{"5m", "1h", "1d"} {
			add(target("etcdgate_target_completeness_ratio", "window", w), 1-0.001*float64(m))
		}
		add(target("etcdgate_target_series"), 340)
		add(target("etcdgate_target_last_seen_timestamp_seconds"), float64(ts.Unix()))
	}
}

// record runs the recording rules of deploy/rules/etcd.yml and those
// evaluator/slo generates from deploy/rules/slos.yml over the fleet, in
// order, and stores their outputs as the rule engine would: every 15 s,
// and the hourly SLO period groups once, 20 minutes before the end.
func record(t *testing.T, head *tsdb.Head, e *evaluator.Engine, start time.Time) {
	t.Helper()
	raw, err := os.ReadFile("../rules/etcd.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Groups []rules.GroupSpec }
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	specs, err := slo.LoadFile("../rules/slos.yml")
	if err != nil {
		t.Fatal(err)
	}
	sloGroups, err := slo.Generate(specs)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range append(file.Groups, sloGroups...) {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			var res *evaluator.Result
			if time.Duration(g.Interval) == slo.PeriodInterval {
				res, err = e.Range(context.Background(), r.Expr, end.Add(-20*time.Minute), end.Add(-20*time.Minute), step)
			} else {
				res, err = e.Range(context.Background(), r.Expr, start, end, step)
			}
			if err != nil {
				t.Fatalf("rule %s: %v", r.Record, err)
			}
			app := head.Appender()
			for _, s := range res.Value.(evaluator.Matrix) {
				b := labels.NewBuilder(s.Metric).Set("__name__", r.Record)
				for k, v := range r.Labels {
					b.Set(k, v)
				}
				ls := b.Labels()
				for _, p := range s.Floats {
					if err := app.Append(ls, p.T, p.F); err != nil {
						t.Fatalf("rule %s: %v", r.Record, err)
					}
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("%d recording rules run, want those of etcd.yml and slos.yml", n)
	}
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr    string `json:"expr"`
		Instant bool   `json:"instant"`
	} `json:"targets"`
	FieldConfig struct {
		Overrides []struct {
			Matcher struct {
				Options string `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string `json:"id"`
				Value []struct {
					URL string `json:"url"`
				} `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
}

// linkedColumns returns the columns of p that link to another dashboard,
// failing on a link to a dashboard that is not one of ours.
func (p panel) linkedColumns(t *testing.T, uids map[string]bool) []string {
	var out []string
	for _, o := range p.FieldConfig.Overrides {
		for _, prop := range o.Properties {
			if prop.ID != "links" {
				continue
			}
			out = append(out, o.Matcher.Options)
			for _, l := range prop.Value {
				m := regexp.MustCompile(`^/d/([\w-]+)\?`).FindStringSubmatch(l.URL)
				if m == nil || !uids[m[1]] {
					t.Errorf("panel %q: link %q is to no dashboard of ours", p.Title, l.URL)
				}
			}
		}
	}
	return out
}

type board struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+), (\w+)\)$`)

// TestPanelQueries evaluates every query of every committed dashboard
// over the generated fleet, as Grafana would send it: each must parse
// and return data.
func TestPanelQueries(t *testing.T) {
	_, e := fill(t)
	ctx := context.Background()
	files, err := Dashboards()
	if err != nil {
		t.Fatal(err)
	}
	boards := make([]board, len(files))
	uids := map[string]bool{}
	for i, f := range files {
		if err := json.Unmarshal(f.JSON, &boards[i]); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		uids[boards[i].UID] = true
	}
	for i, f := range files {
		b := boards[i]
		vars := 0
		for _, v := range b.Templating.List {
			if v.Type != "query" {
				continue
			}
			vars++
			m := labelValuesRE.FindStringSubmatch(v.Query)
			if m == nil {
				t.Errorf("%s: variable %s: query %q is not label_values(series, label)", f.Name, v.Name, v.Query)
				continue
			}
			res, err := e.Instant(ctx, substitute(t, m[1], nil), end)
			if err != nil {
				t.Errorf("%s: variable %s: %v", f.Name, v.Name, err)
				continue
			}
			found := false
			for _, s := range res.Value.(evaluator.Vector) {
				found = found || s.Metric.Get(m[2]) == values[v.Name]
			}
			if !found {
				t.Errorf("%s: variable %s: %q offers no value %q", f.Name, v.Name, v.Query, values[v.Name])
			}
		}
		if vars == 0 {
			t.Errorf("%s: no query variable", f.Name)
		}
		queries := 0
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", f.Name, p.Title)
				}
				for _, q := range p.Targets {
					queries++
					for _, override := range []map[string]string{nil, all} {
						expr := substitute(t, q.Expr, override)
						var res *evaluator.Result
						if q.Instant {
							res, err = e.Instant(ctx, expr, end)
						} else {
							res, err = e.Range(ctx, expr, end.Add(-30*time.Minute), end, step)
						}
						if err != nil {
							t.Errorf("%s: panel %q: %s: %v", f.Name, p.Title, expr, err)
							continue
						}
						if !current(res.Value, end.UnixMilli()) {
							t.Errorf("%s: panel %q: %s: no data at the end of the range", f.Name, p.Title, expr)
						}
						for _, col := range p.linkedColumns(t, uids) {
							if !hasLabel(res.Value, col) {
								t.Errorf("%s: panel %q: %s: links column %s, which a row lacks", f.Name, p.Title, expr, col)
							}
						}
					}
				}
			}
		}
		walk(b.Panels)
		t.Logf("%s: %d variables and %d queries evaluated", f.Name, vars, queries)
	}
}

// current reports whether v has a value at t, the end of the range: what
// a stat panel shows and the right edge of a graph. (Series recorded
// hourly need last_over_time to have one.)
func current(v evaluator.Value, t int64) bool {
	switch v := v.(type) {
	case evaluator.Matrix:
		for _, s := range v {
			if n := len(s.Floats); n > 0 && s.Floats[n-1].T == t {
				return true
			}
		}
		return false
	case evaluator.Vector:
		return len(v) > 0
	}
	return true
}

// hasLabel reports whether every series of v has the label name.
func hasLabel(v evaluator.Value, name string) bool {
	var all []labels.Labels
	switch v := v.(type) {
	case evaluator.Matrix:
		for _, s := range v {
			all = append(all, s.Metric)
		}
	case evaluator.Vector:
		for _, s := range v {
			all = append(all, s.Metric)
		}
	}
	for _, ls := range all {
		if ls.Get(name) == "" {
			return false
		}
	}
	return len(all) > 0
}
