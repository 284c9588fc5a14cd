package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// RuleFile is a rule file in Prometheus's format. The same types marshal
// back to YAML, so generated rules (SLOs, thresholds) print as a standard
// rule file.
type RuleFile struct {
	Groups []GroupSpec `yaml:"groups"`
}

// GroupSpec is one rule group as written in a file.
type GroupSpec struct {
	Name        string            `yaml:"name"`
	Interval    model.Duration    `yaml:"interval,omitempty"`
	QueryOffset model.Duration    `yaml:"query_offset,omitempty"`
	Limit       int               `yaml:"limit,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Rules       []RuleSpec        `yaml:"rules"`

	// File is the file the group came from ("" for generated groups);
	// with Name it identifies the group across reloads.
	File string `yaml:"-"`
	line int
}

// RuleSpec is one recording or alerting rule as written in a file.
type RuleSpec struct {
	Record        string            `yaml:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Expr          string            `yaml:"expr"`
	For           model.Duration    `yaml:"for,omitempty"`
	KeepFiringFor model.Duration    `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`

	line int
}

// Name returns the record or alert name.
func (r RuleSpec) Name() string {
	if r.Alert != "" {
		return r.Alert
	}
	return r.Record
}

var (
	fileKeys  = []string{"groups"}
	groupKeys = []string{"name", "interval", "query_offset", "limit", "labels", "rules"}
	ruleKeys  = []string{"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
)

// ParseFile reads and validates a rule file. Every problem found is
// returned, each naming the file, line, group and rule.
func ParseFile(path string) (*RuleFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rule file: %w", err)
	}
	rf, errs := Parse(path, data)
	return rf, errors.Join(errs...)
}

// Parse parses and validates the rule file content data, named path in
// errors.
func Parse(path string, data []byte) (*RuleFile, []error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, []error{fmt.Errorf("%s: %w", path, err)}
	}
	rf := &RuleFile{}
	if root.Kind == 0 { // empty file: no groups, like Prometheus
		return rf, nil
	}
	var errs []error
	doc := root.Content[0]
	if err := checkKeys(doc, fileKeys); err != nil {
		return nil, []error{fmt.Errorf("%s: %w", path, err)}
	}
	if err := doc.Decode(rf); err != nil {
		return nil, []error{fmt.Errorf("%s: %w", path, err)}
	}
	groupsNode := mappingValue(doc, "groups")
	for i := range rf.Groups {
		g := &rf.Groups[i]
		g.File = path
		gnode := groupsNode.Content[i]
		g.line = gnode.Line
		if err := checkKeys(gnode, groupKeys); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: group %q: %w", path, g.line, g.Name, err))
			continue
		}
		rulesNode := mappingValue(gnode, "rules")
		for j := range g.Rules {
			rnode := rulesNode.Content[j]
			g.Rules[j].line = rnode.Line
			if err := checkKeys(rnode, ruleKeys); err != nil {
				errs = append(errs, ruleError(g, j, err))
			}
		}
	}
	errs = append(errs, rf.Validate()...)
	return rf, errs
}

// ruleError names the file, line, group and rule of a rule's problem.
func ruleError(g *GroupSpec, i int, err error) error {
	r := g.Rules[i]
	kind, name := "record", r.Record
	if r.Alert != "" {
		kind, name = "alert", r.Alert
	}
	return fmt.Errorf("%s:%d: group %q, rule %d (%s %q): %w", g.File, r.line, g.Name, i+1, kind, name, err)
}

// checkKeys refuses keys of a mapping that are not in allowed, so that a
// typo ("annotation:") is an error instead of a silently ignored key.
func checkKeys(n *yaml.Node, allowed []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		found := false
		for _, a := range allowed {
			found = found || k.Value == a
		}
		if !found {
			sort.Strings(allowed)
			return fmt.Errorf("line %d: unknown key %q (want one of %v)", k.Line, k.Value, allowed)
		}
	}
	return nil
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return &yaml.Node{}
}

// LoadFiles expands globs (as rule_files does) and parses every file.
// Relative patterns are taken relative to dir.
func LoadFiles(dir string, globs []string) ([]GroupSpec, error) {
	var groups []GroupSpec
	var errs []error
	for _, pat := range globs {
		if !filepath.IsAbs(pat) && dir != "" {
			pat = filepath.Join(dir, pat)
		}
		files, err := filepath.Glob(pat)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule_files %q: %w", pat, err))
			continue
		}
		for _, f := range files {
			rf, err := ParseFile(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			groups = append(groups, rf.Groups...)
		}
	}
	return groups, errors.Join(errs...)
}

// Marshal renders groups as a rule file.
func Marshal(groups []GroupSpec) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(RuleFile{Groups: groups}); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}
