package slo

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/etcdgate/etcdgate/evaluator/rules"
)

// Windows are the ranges the error ratio is recorded over: the long and
// short windows of the burn-rate alerts.
var Windows = []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"}

// BurnAlert is one window pair of the multi-window multi-burn-rate
// alerts: the alert holds when the error ratio over both windows exceeds
// Factor times the error budget.
type BurnAlert struct {
	Severity    string
	Factor      float64
	Long, Short string
}

// BurnAlerts are the Google SRE workbook's window pairs: 14.4× burns 2%
// of a 30-day budget in an hour, 6× 5% in six hours (page); 3× 10% in a
// day, 1× 10% in three days (ticket).
var BurnAlerts = []BurnAlert{
	{"page", 14.4, "1h", "5m"},
	{"page", 6, "6h", "30m"},
	{"ticket", 3, "1d", "2h"},
	{"ticket", 1, "3d", "6h"},
}

// PeriodInterval is the interval of the group that computes the error
// budget left over the SLO window. The budget changes slowly; computing
// it hourly from an hourly copy of the 1h ratio reads 672 samples per
// series for 28 days instead of 80,640 at a 30 s interval.
const PeriodInterval = time.Hour

// RatioMetric is the recorded error ratio over window.
func RatioMetric(window string) string { return "slo:sli_error:ratio_rate" + window }

const (
	errorRateMetric = "slo:sli_error:rate5m"
	totalRateMetric = "slo:sli_total:rate5m"
	hourlyMetric    = "slo:sli_error:ratio_rate1h:hourly"
	budgetLeft      = "slo:period_error_budget_remaining:ratio"
	objectiveMetric = "slo:objective:ratio"
)

// PeriodRatioMetric is the error ratio over the SLO's window.
func (s *Spec) PeriodRatioMetric() string { return RatioMetric(model.Duration(s.Window).String()) }

// Generate returns the rule groups of the specs: per SLO a group with
// the SLI's own recording rules, the error ratios and the burn-rate
// alerts, evaluated at the default interval, and an hourly group for the
// budget over the SLO window. Specs must be valid.
func Generate(specs []Spec) ([]rules.GroupSpec, error) {
	var groups []rules.GroupSpec
	for i := range specs {
		s := &specs[i]
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("slo %q: %w", s.Name, err)
		}
		g, err := s.ratioGroup()
		if err != nil {
			return nil, err
		}
		groups = append(groups, g, s.periodGroup())
	}
	return groups, nil
}

func (s *Spec) sloLabel() map[string]string { return map[string]string{"slo": s.Name} }

func (s *Spec) queries() (pre []rules.RuleSpec, errQ, totalQ string, err error) {
	if s.SLI.Builtin == "" {
		return nil, s.SLI.ErrorQuery, s.SLI.TotalQuery, nil
	}
	b, err := builtinSLI(s.SLI.Builtin, s.SLI.Params, s.by(), s.Name)
	return b.pre, b.errorQuery, b.totalQuery, err
}

// ratioGroup records the SLI's error and total rates over 5m, from the
// raw series, and derives every window's error ratio from those two
// recorded series: a window of W reads one sample per round and cluster
// instead of every raw sample of every member (a 3d window of raw
// counters scraped every 30s is 8,640 samples per series). This is how
// Sloth computes its period ratio; the ratio of the sums of the 5m rates
// over W is the error ratio over W with its edges smoothed by 5m.
func (s *Spec) ratioGroup() (rules.GroupSpec, error) {
	pre, errQ, totalQ, err := s.queries()
	if err != nil {
		return rules.GroupSpec{}, err
	}
	g := rules.GroupSpec{Name: "slo-" + s.Name, Rules: pre}
	e, err := expandWindow(errQ, Windows[0])
	if err != nil {
		return g, err
	}
	t, err := expandWindow(totalQ, Windows[0])
	if err != nil {
		return g, err
	}
	sel := fmt.Sprintf("{slo=%q}", s.Name)
	g.Rules = append(g.Rules,
		rules.RuleSpec{Record: errorRateMetric, Expr: e, Labels: s.sloLabel()},
		rules.RuleSpec{Record: totalRateMetric, Expr: t, Labels: s.sloLabel()},
		rules.RuleSpec{Record: RatioMetric(Windows[0]), Expr: errorRateMetric + sel + " / " + totalRateMetric + sel, Labels: s.sloLabel()},
	)
	for _, w := range Windows[1:] {
		g.Rules = append(g.Rules, rules.RuleSpec{
			Record: RatioMetric(w),
			Expr: fmt.Sprintf("sum_over_time(%s%s[%s])\n/\nsum_over_time(%s%s[%s])",
				errorRateMetric, sel, w, totalRateMetric, sel, w),
			Labels: s.sloLabel(),
		})
	}
	g.Rules = append(g.Rules, s.alert("page"), s.alert("ticket"))
	return g, nil
}

// alert is the burn-rate alert of a severity: its window pairs OR'ed.
func (s *Spec) alert(severity string) rules.RuleSpec {
	budget := formatFloat(s.ErrorBudget())
	expr := ""
	for _, b := range BurnAlerts {
		if b.Severity != severity {
			continue
		}
		if expr != "" {
			expr += "\nor\n"
		}
		th := formatFloat(b.Factor) + " * " + budget
		expr += fmt.Sprintf("(\n  %s{slo=%q} > (%s)\n  and\n  %s{slo=%q} > (%s)\n)",
			RatioMetric(b.Long), s.Name, th, RatioMetric(b.Short), s.Name, th)
	}
	name := s.AlertName
	if name == "" {
		name = "ErrorBudgetBurn"
	}
	labels := map[string]string{"slo": s.Name, "severity": severity}
	for k, v := range s.Labels {
		labels[k] = v
	}
	return rules.RuleSpec{
		Alert: name, Expr: expr, Labels: labels,
		Annotations: map[string]string{
			"summary": fmt.Sprintf("SLO %s (%s%% over %s) is burning its error budget too fast", s.Name,
				formatFloat(s.Objective), model.Duration(s.Window)),
			"description": "{{ $labels.cluster }}: error ratio {{ $value | humanizePercentage }} over the long window.",
		},
	}
}

// periodGroup computes, hourly, the error ratio over the SLO window and
// the share of the error budget left.
func (s *Spec) periodGroup() rules.GroupSpec {
	sel := fmt.Sprintf("{slo=%q}", s.Name)
	return rules.GroupSpec{
		Name: "slo-" + s.Name + "-period", Interval: model.Duration(PeriodInterval),
		Rules: []rules.RuleSpec{
			{Record: objectiveMetric, Expr: formatFloat(s.Objective / 100), Labels: s.sloLabel()},
			{Record: hourlyMetric, Expr: RatioMetric("1h") + sel, Labels: s.sloLabel()},
			{Record: s.PeriodRatioMetric(), Expr: fmt.Sprintf("avg_over_time(%s%s[%s])", hourlyMetric, sel, model.Duration(s.Window)), Labels: s.sloLabel()},
			{Record: budgetLeft, Expr: fmt.Sprintf("1 - %s%s / %s", s.PeriodRatioMetric(), sel, formatFloat(s.ErrorBudget())), Labels: s.sloLabel()},
		},
	}
}

// formatFloat prints a float the shortest way that parses back exactly,
// rounding away the noise of 1 - 0.9995.
func formatFloat(f float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 12, 64), 64)
	return strconv.FormatFloat(r, 'g', -1, 64)
}
