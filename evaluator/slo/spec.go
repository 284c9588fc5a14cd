package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Spec is one SLO.
type Spec struct {
	// Name identifies the SLO: the slo label of its series and alerts.
	Name string `yaml:"name"`
	// Objective is the target share of good events in percent (99.95).
	Objective float64 `yaml:"objective"`
	// Window is the period the error budget covers (28d).
	Window model.Duration `yaml:"window"`
	SLI    SLI            `yaml:"sli"`
	// By are the labels the SLI is computed per; default the standard
	// labels cluster, product, scenario, size, region.
	By []string `yaml:"by,omitempty"`
	// Labels are added to the alerts.
	Labels map[string]string `yaml:"labels,omitempty"`
	// AlertName names the burn-rate alerts (default ErrorBudgetBurn);
	// severity=page and severity=ticket tell them apart.
	AlertName string `yaml:"alert_name,omitempty"`
}

// SLI is either a built-in etcd SLI or a pair of queries. Queries
// contain {{.window}} where the range of the ratio goes.
type SLI struct {
	ErrorQuery string `yaml:"error_query,omitempty"`
	TotalQuery string `yaml:"total_query,omitempty"`
	// Builtin is availability, request_errors, request_latency, disk or
	// inspection_health.
	Builtin string `yaml:"builtin,omitempty"`
	// Params tune built-ins (see builtins in sli.go).
	Params map[string]string `yaml:"params,omitempty"`
}

// File is an SLO file: `slos:` followed by specs.
type File struct {
	SLOs []Spec `yaml:"slos"`
}

// DefaultBy are the standard labels of etcdgate's registry.
var DefaultBy = []string{"cluster", "product", "scenario", "size", "region"}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// LoadFile reads and validates an SLO file.
func LoadFile(path string) ([]Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read SLO file: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := Validate(f.SLOs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.SLOs, nil
}

// Validate checks every spec and that names are unique.
func Validate(specs []Spec) error {
	var errs []error
	seen := map[string]bool{}
	for i := range specs {
		s := &specs[i]
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("slo %d (%q): %w", i+1, s.Name, err))
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("slo %d (%q): name used twice", i+1, s.Name))
		}
		seen[s.Name] = true
	}
	return errors.Join(errs...)
}

// Validate reports the first problem of the spec.
func (s *Spec) Validate() error {
	switch {
	case !nameRE.MatchString(s.Name):
		return fmt.Errorf("name must match %s", nameRE)
	case s.Objective <= 0 || s.Objective >= 100:
		return fmt.Errorf("objective %v: want a percentage strictly between 0 and 100, such as 99.95", s.Objective)
	case s.Window <= 0:
		return errors.New("window must be set, such as 28d")
	case time.Duration(s.Window) < 3*24*time.Hour:
		return fmt.Errorf("window %v is shorter than the longest alert window (3d)", s.Window)
	}
	for _, l := range s.by() {
		if !model.LegacyValidation.IsValidLabelName(l) {
			return fmt.Errorf("by: invalid label name %q", l)
		}
	}
	for k := range s.Labels {
		if !model.LegacyValidation.IsValidLabelName(k) || k == "slo" || k == "severity" {
			return fmt.Errorf("labels: %q is not a label the SLO may set", k)
		}
	}
	if s.AlertName != "" && !model.LegacyValidation.IsValidMetricName(s.AlertName) {
		return fmt.Errorf("alert_name %q must be a valid metric name", s.AlertName)
	}
	return s.SLI.validate(s.by(), s.Name)
}

func (s *Spec) by() []string {
	if len(s.By) == 0 {
		return DefaultBy
	}
	return s.By
}

// ErrorBudget is the allowed error ratio, 1 - objective.
func (s *Spec) ErrorBudget() float64 { return 1 - s.Objective/100 }

func (sli *SLI) validate(by []string, slo string) error {
	custom := sli.ErrorQuery != "" || sli.TotalQuery != ""
	switch {
	case custom && sli.Builtin != "":
		return errors.New("sli: set either builtin or error_query and total_query, not both")
	case sli.Builtin != "":
		_, err := builtinSLI(sli.Builtin, sli.Params, by, slo)
		return err
	case sli.ErrorQuery == "" || sli.TotalQuery == "":
		return errors.New("sli: error_query and total_query must both be set (or builtin)")
	case len(sli.Params) > 0:
		return errors.New("sli: params are for built-in SLIs only")
	}
	for _, q := range []struct{ name, text string }{{"error_query", sli.ErrorQuery}, {"total_query", sli.TotalQuery}} {
		if !strings.Contains(q.text, "{{.window}}") {
			return fmt.Errorf("sli: %s must contain {{.window}} where the ratio's range goes", q.name)
		}
		expanded, err := expandWindow(q.text, "5m")
		if err != nil {
			return fmt.Errorf("sli: %s: %w", q.name, err)
		}
		if _, err := metricsql.Parse(expanded); err != nil {
			return fmt.Errorf("sli: %s: %w", q.name, err)
		}
	}
	return nil
}

// expandWindow substitutes window for {{.window}} in a query.
func expandWindow(q, window string) (string, error) {
	t, err := template.New("q").Option("missingkey=error").Parse(q)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	if err := t.Execute(&sb, map[string]string{"window": window}); err != nil {
		return "", err
	}
	return sb.String(), nil
}
