package rules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
)

// Validate returns every problem of the file's groups and rules.
func (rf *RuleFile) Validate() []error {
	var errs []error
	seen := map[string]bool{}
	for i := range rf.Groups {
		g := &rf.Groups[i]
		if err := g.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: group %q: %w", g.File, g.line, g.Name, err))
		}
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("%s:%d: group %q: repeated in the same file", g.File, g.line, g.Name))
		}
		seen[g.Name] = true
		for j := range g.Rules {
			for _, err := range g.Rules[j].validate() {
				errs = append(errs, ruleError(g, j, err))
			}
		}
	}
	return errs
}

func (g *GroupSpec) validate() error {
	switch {
	case g.Name == "":
		return errors.New("group name must not be empty")
	case g.Interval < 0:
		return errors.New("interval must not be negative")
	case g.QueryOffset < 0:
		return errors.New("query_offset must not be negative")
	case g.Limit < 0:
		return errors.New("limit must not be negative")
	}
	return validateLabels(g.Labels)
}

// validate returns the rule's problems, as Prometheus's rulefmt does.
func (r *RuleSpec) validate() []error {
	var errs []error
	switch {
	case r.Record != "" && r.Alert != "":
		errs = append(errs, errors.New("only one of 'record' and 'alert' may be set"))
	case r.Record == "" && r.Alert == "":
		errs = append(errs, errors.New("one of 'record' or 'alert' must be set"))
	}
	if strings.TrimSpace(r.Expr) == "" {
		errs = append(errs, errors.New("field 'expr' must be set"))
	} else if _, err := metricsql.Parse(r.Expr); err != nil {
		errs = append(errs, fmt.Errorf("expr: %w", err))
	}
	if r.Record != "" {
		if !model.LegacyValidation.IsValidMetricName(r.Record) {
			errs = append(errs, fmt.Errorf("invalid recording rule name %q", r.Record))
		}
		if len(r.Annotations) > 0 {
			errs = append(errs, errors.New("recording rules must not have annotations"))
		}
		if r.For != 0 {
			errs = append(errs, errors.New("recording rules must not have a 'for' duration"))
		}
		if r.KeepFiringFor != 0 {
			errs = append(errs, errors.New("recording rules must not have a 'keep_firing_for' duration"))
		}
	}
	if r.For < 0 || r.KeepFiringFor < 0 {
		errs = append(errs, errors.New("'for' and 'keep_firing_for' must not be negative"))
	}
	if err := validateLabels(r.Labels); err != nil {
		errs = append(errs, err)
	}
	for k := range r.Annotations {
		if !model.LegacyValidation.IsValidLabelName(k) {
			errs = append(errs, fmt.Errorf("invalid annotation name %q", k))
		}
	}
	if r.Alert != "" {
		errs = append(errs, checkTemplates(r)...)
	}
	return errs
}

func validateLabels(ls map[string]string) error {
	for k, v := range ls {
		if k == model.MetricNameLabel {
			return errors.New("labels must not set __name__")
		}
		if !model.LegacyValidation.IsValidLabelName(k) {
			return fmt.Errorf("invalid label name %q", k)
		}
		if !model.LabelValue(v).IsValid() {
			return fmt.Errorf("label %s: invalid UTF-8 value", k)
		}
	}
	return nil
}

// checkTemplates parses the alert's label and annotation templates, so a
// broken template fails `check rules` instead of every notification.
func checkTemplates(r *RuleSpec) []error {
	var errs []error
	check := func(kind string, m map[string]string) {
		for k, v := range m {
			if _, err := parseTemplate(k, v); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", kind, k, err))
			}
		}
	}
	check("label", r.Labels)
	check("annotation", r.Annotations)
	return errs
}
