package rules

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/tsdb"
)

// unitFile is a rule test file in the format of `promtool test rules`,
// plus two etcdgate extensions per test: restarts and reloads.
type unitFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	Tests              []unitTest     `yaml:"tests"`
}

type unitTest struct {
	Name           string            `yaml:"name"`
	Interval       model.Duration    `yaml:"interval"`
	ExternalLabels map[string]string `yaml:"external_labels"`
	InputSeries    []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	AlertRuleTests []struct {
		EvalTime  model.Duration `yaml:"eval_time"`
		Alertname string         `yaml:"alertname"`
		ExpAlerts []struct {
			ExpLabels      map[string]string `yaml:"exp_labels"`
			ExpAnnotations map[string]string `yaml:"exp_annotations"`
		} `yaml:"exp_alerts"`
	} `yaml:"alert_rule_test"`
	PromqlExprTests []struct {
		Expr       string         `yaml:"expr"`
		EvalTime   model.Duration `yaml:"eval_time"`
		ExpSamples []struct {
			Labels string  `yaml:"labels"`
			Value  float64 `yaml:"value"`
		} `yaml:"exp_samples"`
	} `yaml:"promql_expr_test"`
	// Restarts replace the manager, before the evaluation at each of
	// these times, by a new one over the same store: alert clocks must
	// come back from ALERTS_FOR_STATE.
	Restarts []model.Duration `yaml:"restarts"`
	// Reloads overwrite rule files (Replace maps a rule file to the file
	// whose content it gets) and update the manager, before the
	// evaluation at At. Groups are identified by file and name, as in
	// Prometheus, so a reload edits files in place.
	Reloads []struct {
		At      model.Duration    `yaml:"at"`
		Replace map[string]string `yaml:"replace"`
	} `yaml:"reloads"`
}

// RunUnitTests runs a promtool-style test file with the real engine over
// a real tsdb.Head, and reports failures on t.
func runUnitFile(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f unitFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.EvaluationInterval == 0 {
		f.EvaluationInterval = model.Duration(time.Minute)
	}
	for _, ut := range f.Tests {
		t.Run(ut.Name, func(t *testing.T) { runUnitTest(t, filepath.Dir(path), f, ut) })
	}
}

// unitRun is one test's store, engine and manager.
type unitRun struct {
	t      *testing.T
	dir    string
	head   *tsdb.Head
	engine *evaluator.Engine
	opts   Options
	m      *Manager
}

func runUnitTest(t *testing.T, dir string, f unitFile, ut unitTest) {
	r := &unitRun{t: t, dir: t.TempDir(), head: newHeadStore(t).h}
	for _, rf := range f.RuleFiles {
		copyFile(t, filepath.Join(dir, rf), filepath.Join(r.dir, rf))
	}
	r.engine = evaluator.NewEngine(r.head, evaluator.Options{})
	r.loadSeries(ut)
	r.opts = DefaultOptions()
	r.opts.Query, r.opts.Appendable, r.opts.Queryable = EngineQueryFunc(r.engine), headStore{r.head}, r.head
	r.opts.EvaluationInterval, r.opts.ExternalLabels, r.opts.Manual = time.Duration(f.EvaluationInterval), ut.ExternalLabels, true
	r.opts.Logger = orDiscard(nil)
	r.start(f.RuleFiles)

	alertsAt, exprsAt := map[time.Duration][]int{}, map[time.Duration][]int{}
	var end time.Duration
	for i, at := range ut.AlertRuleTests {
		alertsAt[time.Duration(at.EvalTime)] = append(alertsAt[time.Duration(at.EvalTime)], i)
		end = max(end, time.Duration(at.EvalTime))
	}
	for i, et := range ut.PromqlExprTests {
		exprsAt[time.Duration(et.EvalTime)] = append(exprsAt[time.Duration(et.EvalTime)], i)
		end = max(end, time.Duration(et.EvalTime))
	}
	step := time.Duration(f.EvaluationInterval)
	first := true
	for ts := time.Duration(0); ts <= end; ts += step {
		now := time.UnixMilli(0).Add(ts)
		restart := slices.Contains(ut.Restarts, model.Duration(ts))
		if restart {
			r.m.Stop()
			r.start(f.RuleFiles)
		}
		for _, rl := range ut.Reloads {
			if time.Duration(rl.At) == ts {
				for to, from := range rl.Replace {
					copyFile(t, filepath.Join(dir, from), filepath.Join(r.dir, to))
				}
				if err := r.m.Update(r.groups(f.RuleFiles)); err != nil {
					t.Fatalf("reload at %v: %v", ts, err)
				}
			}
		}
		for _, g := range r.m.Groups() {
			g.Eval(context.Background(), now)
			if first || restart {
				g.RestoreForState(context.Background(), now)
			}
		}
		first = false
		for _, i := range alertsAt[ts] {
			r.checkAlerts(ts, ut, i)
		}
		for _, i := range exprsAt[ts] {
			r.checkExpr(ut, i)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *unitRun) groups(files []string) []GroupSpec {
	r.t.Helper()
	specs, err := LoadFiles(r.dir, files)
	if err != nil {
		r.t.Fatal(err)
	}
	return specs
}

func (r *unitRun) start(files []string) {
	r.t.Helper()
	m, err := NewManager(r.opts)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := m.Update(r.groups(files)); err != nil {
		r.t.Fatal(err)
	}
	r.m = m
}

// loadSeries appends the input series, sample i at i × interval.
func (r *unitRun) loadSeries(ut unitTest) {
	interval := time.Duration(ut.Interval)
	if interval == 0 {
		interval = time.Minute
	}
	app := r.head.Appender()
	p := parser.NewParser(parser.Options{})
	for _, s := range ut.InputSeries {
		ls, vals, err := p.ParseSeriesDesc(s.Series + " " + s.Values)
		if err != nil {
			r.t.Fatalf("input series %s: %v", s.Series, err)
		}
		for i, v := range vals {
			if !v.Omitted {
				if err := app.Append(ls, int64(i)*interval.Milliseconds(), v.Value); err != nil {
					r.t.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		r.t.Fatal(err)
	}
}

// checkAlerts compares the firing alerts of a rule name with the
// expected ones, as promtool does.
func (r *unitRun) checkAlerts(ts time.Duration, ut unitTest, i int) {
	at := ut.AlertRuleTests[i]
	var got, want []string
	for _, g := range r.m.Groups() {
		for _, rule := range g.Rules() {
			ar, ok := rule.(*AlertingRule)
			if !ok || ar.Name() != at.Alertname {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == StateFiring {
					got = append(got, a.Labels.String()+" "+a.Annotations.String())
				}
			}
		}
	}
	for _, e := range at.ExpAlerts {
		ls := labels.FromMap(e.ExpLabels)
		ls = labels.NewBuilder(ls).Set("alertname", at.Alertname).Labels()
		want = append(want, ls.String()+" "+labels.FromMap(e.ExpAnnotations).String())
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		r.t.Errorf("alert %s at %v:\n got: %q\nwant: %q", at.Alertname, ts, got, want)
	}
}

func (r *unitRun) checkExpr(ut unitTest, i int) {
	et := ut.PromqlExprTests[i]
	res, err := r.engine.Instant(context.Background(), et.Expr, time.UnixMilli(0).Add(time.Duration(et.EvalTime)))
	if err != nil {
		r.t.Errorf("%s at %v: %v", et.Expr, et.EvalTime, err)
		return
	}
	var got, want []string
	vec, _ := res.Value.(evaluator.Vector)
	if sc, ok := res.Value.(evaluator.Scalar); ok {
		vec = evaluator.Vector{{F: sc.V}}
	}
	for _, s := range vec {
		got = append(got, fmt.Sprintf("%s %s", s.Metric, roundValue(s.F)))
	}
	p := parser.NewParser(parser.Options{})
	for _, s := range et.ExpSamples {
		ls, err := p.ParseMetric(s.Labels)
		if err != nil && s.Labels != "" {
			r.t.Fatalf("labels %q: %v", s.Labels, err)
		}
		want = append(want, fmt.Sprintf("%s %s", ls, roundValue(s.Value)))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		r.t.Errorf("%s at %v:\n got: %q\nwant: %q", et.Expr, et.EvalTime, got, want)
	}
}

// roundValue prints a value to 12 significant digits, so that results
// that differ only in the order of float additions compare equal.
func roundValue(f float64) string {
	if math.IsNaN(f) {
		return "NaN"
	}
	return fmt.Sprintf("%.12g", f)
}

func TestRuleUnitFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/unit/*.test.yml")
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runUnitFile(t, f) })
	}
}
