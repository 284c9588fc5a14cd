package relabel

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	promrelabel "github.com/prometheus/prometheus/model/relabel"
	"gopkg.in/yaml.v3"
)

// RuleConfig is one relabel_configs entry with Prometheus's semantics. It
// decodes with the line it came from and is validated while decoding, so
// that a bad rule is reported with its line.
type RuleConfig struct {
	promrelabel.Config
	Line int
}

// ruleKeys are the keys of a relabel config; others are refused, as
// Prometheus refuses them, so that a typo does not silently match all.
var ruleKeys = map[string]bool{
	"source_labels": true, "separator": true, "regex": true, "modulus": true,
	"target_label": true, "replacement": true, "action": true,
}

// UnmarshalYAML decodes, checks the keys and validates one rule.
func (r *RuleConfig) UnmarshalYAML(node *yaml.Node) error {
	r.Line = node.Line
	if node.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(node.Content); i += 2 {
			if k := node.Content[i]; !ruleKeys[k.Value] {
				return fmt.Errorf("line %d: field %s not found in relabel config", k.Line, k.Value)
			}
		}
	}
	if err := node.Decode(&r.Config); err != nil {
		return fmt.Errorf("line %d: relabel config: %w", node.Line, err)
	}
	if err := r.Validate(); err != nil {
		return err
	}
	return nil
}

// Validate checks the rule with Prometheus's own validation, under the
// legacy name scheme the write path enforces.
func (r *RuleConfig) Validate() error {
	if r.Regex.Regexp == nil {
		r.Regex = promrelabel.DefaultRelabelConfig.Regex
	}
	if err := r.Config.Validate(model.LegacyValidation); err != nil {
		return fmt.Errorf("line %d: relabel config: %w", r.Line, err)
	}
	return nil
}

// Rule builds a RuleConfig from a Prometheus config, for callers that
// configure in code.
func Rule(c promrelabel.Config) *RuleConfig { return &RuleConfig{Config: c} }

// Source is a group of relabel rules applied only to the series that match
// every one of its matchers (label name → anchored regex), e.g. job: etcd.
type Source struct {
	Name           string            `yaml:"name"`
	Match          map[string]string `yaml:"match"`
	RelabelConfigs []*RuleConfig     `yaml:"relabel_configs"`
}

// matcher is one compiled Source matcher.
type matcher struct {
	name string
	re   promrelabel.Regexp
}

// source is a compiled Source.
type source struct {
	name     string
	matchers []matcher
	rules    []*rule
}

func compileSource(s Source) (*source, error) {
	if s.Name == "" {
		return nil, fmt.Errorf("source without a name")
	}
	if len(s.Match) == 0 {
		return nil, fmt.Errorf("source %q: match is empty", s.Name)
	}
	names := make([]string, 0, len(s.Match))
	for n := range s.Match {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic order for stats and tests
	out := &source{name: s.Name}
	for _, n := range names {
		re, err := promrelabel.NewRegexp(s.Match[n])
		if err != nil {
			return nil, fmt.Errorf("source %q: match %s: %w", s.Name, n, err)
		}
		out.matchers = append(out.matchers, matcher{name: n, re: re})
	}
	rules, err := compileRules("source "+s.Name, s.RelabelConfigs)
	if err != nil {
		return nil, err
	}
	out.rules = rules
	return out, nil
}

func compileRules(scope string, cfgs []*RuleConfig) ([]*rule, error) {
	rules := make([]*rule, 0, len(cfgs))
	for i, c := range cfgs {
		if c == nil {
			return nil, fmt.Errorf("%s: relabel config %d is empty", scope, i)
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("%s: relabel config %d: %w", scope, i, err)
		}
		cfg := c.Config
		rules = append(rules, &rule{scope: scope, index: i, cfg: &cfg, desc: describe(&cfg)})
	}
	return rules, nil
}

// describe names a rule for the status page.
func describe(c *promrelabel.Config) string {
	var b strings.Builder
	b.WriteString(string(c.Action))
	if len(c.SourceLabels) > 0 {
		fmt.Fprintf(&b, " source_labels=%v", c.SourceLabels)
	}
	if c.Regex.Regexp != nil && c.Regex.String() != promrelabel.DefaultRelabelConfig.Regex.String() {
		fmt.Fprintf(&b, " regex=%q", c.Regex.String())
	}
	if c.TargetLabel != "" {
		fmt.Fprintf(&b, " target_label=%s", c.TargetLabel)
	}
	return b.String()
}
