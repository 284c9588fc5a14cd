// Package thresholds compiles per-alert threshold tables over the
// standard labels scenario and size into threshold series, so that alert
// rules compare against `etcdgate_threshold{alertname="X"}` joined with
// `on(scenario, size) group_left()` and never name a cluster: a new
// scenario is a new row of the table, and no rule changes.
package thresholds

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"

	"github.com/etcdgate/etcdgate/evaluator/rules"
)

// Metric is the name of the compiled threshold series.
const Metric = "etcdgate_threshold"

// GroupName is the name of the compiled rule group.
const GroupName = "etcdgate-thresholds"

// DefaultPopulation is the series whose scenario and size pairs get the
// default rows: every etcd member exposes it.
const DefaultPopulation = "etcd_server_has_leader"

// Config is the thresholds section of the configuration.
type Config struct {
	// Population selects the series whose (scenario, size) pairs exist;
	// defaults apply to those pairs.
	Population string `yaml:"population,omitempty"`
	// Alerts maps an alert name to its table.
	Alerts map[string]Table `yaml:"alerts,omitempty"`
}

// Table is one alert's thresholds. The most specific entry wins: a
// scenario's size, then the scenario's default, then the size across
// scenarios, then the default.
type Table struct {
	Default   *float64                      `yaml:"default,omitempty"`
	Sizes     map[string]float64            `yaml:"sizes,omitempty"`
	Scenarios map[string]map[string]float64 `yaml:"scenarios,omitempty"`
}

func (c Config) population() string {
	if c.Population == "" {
		return DefaultPopulation
	}
	return c.Population
}

// Validate reports every bad entry.
func (c Config) Validate() error {
	var errs []error
	if _, err := metricsql.Parse(c.population()); err != nil {
		errs = append(errs, fmt.Errorf("thresholds: population: %w", err))
	}
	for _, name := range c.names() {
		t := c.Alerts[name]
		if name == "" || !model.LabelValue(name).IsValid() {
			errs = append(errs, fmt.Errorf("thresholds: invalid alert name %q", name))
		}
		if t.Default == nil && len(t.Sizes) == 0 && len(t.Scenarios) == 0 {
			errs = append(errs, fmt.Errorf("thresholds: %s: empty table", name))
		}
		for sc, sizes := range t.Scenarios {
			if sc == "" || len(sizes) == 0 {
				errs = append(errs, fmt.Errorf("thresholds: %s: scenario %q needs a name and at least one size or default", name, sc))
			}
		}
	}
	return errors.Join(errs...)
}

func (c Config) names() []string {
	names := make([]string, 0, len(c.Alerts))
	for n := range c.Alerts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Compile returns the rule group recording etcdgate_threshold{alertname,
// scenario, size} for every table, or false when there are none.
func (c Config) Compile() (rules.GroupSpec, bool, error) {
	if len(c.Alerts) == 0 {
		return rules.GroupSpec{}, false, nil
	}
	if err := c.Validate(); err != nil {
		return rules.GroupSpec{}, false, err
	}
	g := rules.GroupSpec{Name: GroupName}
	for _, name := range c.names() {
		g.Rules = append(g.Rules, rules.RuleSpec{
			Record: Metric, Expr: c.Alerts[name].expr(c.population()), Labels: map[string]string{"alertname": name},
		})
	}
	return g, true, nil
}

// expr unions the rows, most specific first: `or` keeps the first row of
// each (scenario, size) pair.
func (t Table) expr(population string) string {
	var rows []string
	for _, sc := range sortedKeys(t.Scenarios) {
		for _, size := range sortedKeys(t.Scenarios[sc]) {
			if size != "default" {
				rows = append(rows, fixedRow(t.Scenarios[sc][size], sc, size))
			}
		}
	}
	for _, sc := range sortedKeys(t.Scenarios) {
		if v, ok := t.Scenarios[sc]["default"]; ok {
			rows = append(rows, populationRow(v, population, "scenario", sc))
		}
	}
	for _, size := range sortedKeys(t.Sizes) {
		rows = append(rows, populationRow(t.Sizes[size], population, "size", size))
	}
	if t.Default != nil {
		rows = append(rows, populationRow(*t.Default, population, "", ""))
	}
	return strings.Join(rows, "\nor\n")
}

// fixedRow is the threshold of one (scenario, size) pair, present whether
// or not such clusters exist.
func fixedRow(v float64, scenario, size string) string {
	return fmt.Sprintf(`label_replace(label_replace(vector(%s), "scenario", %q, "", ""), "size", %q, "", "")`,
		formatFloat(v), scenario, size)
}

// populationRow is a threshold for every (scenario, size) pair of the
// population that matches label=value (all pairs when label is "").
func populationRow(v float64, population, label, value string) string {
	sel := population
	switch m := fmt.Sprintf("%s=%q", label, value); {
	case label == "":
	case strings.HasSuffix(population, "}"):
		sel = strings.TrimSuffix(population, "}") + "," + m + "}"
	default:
		sel = population + "{" + m + "}"
	}
	return fmt.Sprintf("(%s + 0 * group by (scenario, size) (%s))", formatFloat(v), sel)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
