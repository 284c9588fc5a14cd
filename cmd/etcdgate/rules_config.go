package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator/notifier"
	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/evaluator/slo"
	"github.com/etcdgate/etcdgate/evaluator/thresholds"
)

// RulesConfig is the rules part of Config: rule files, alerting,
// threshold tables and SLOs. Everything in it is reloadable.
type RulesConfig struct {
	// RuleFiles are globs of Prometheus rule files, relative to the
	// config file.
	RuleFiles []string `yaml:"rule_files"`
	// EvaluationInterval is the interval of groups that set none.
	EvaluationInterval Duration       `yaml:"evaluation_interval"`
	Alerting           AlertingConfig `yaml:"alerting"`
	// Thresholds compile into etcdgate_threshold series.
	Thresholds thresholds.Config `yaml:"thresholds"`
	// SLOs inline, and SLOFiles (globs, relative to the config file) of
	// `slos:` files; both generate rule groups.
	SLOs     []slo.Spec `yaml:"slos"`
	SLOFiles []string   `yaml:"slo_files"`

	// Filled by load: the groups to run, every SLO, and the rule and SLO
	// file globs made absolute (watched for changes).
	groups    []rules.GroupSpec
	allSLOs   []slo.Spec
	fileGlobs []string
}

// AlertingConfig is where alerts go, in Prometheus's alerting shape.
type AlertingConfig struct {
	// ExternalLabels are added to every alert sent (and are
	// $externalLabels in templates).
	ExternalLabels map[string]string    `yaml:"external_labels"`
	Alertmanagers  []AlertmanagerConfig `yaml:"alertmanagers"`
	// ResendDelay is how often firing alerts are sent again.
	ResendDelay Duration `yaml:"resend_delay"`
	// QueueCapacity bounds the alerts waiting to be sent (oldest dropped).
	QueueCapacity int `yaml:"queue_capacity"`
	MaxBatchSize  int `yaml:"max_batch_size"`
	// MaxRetries is how often a failed send is retried.
	MaxRetries int `yaml:"max_retries"`
}

// AlertmanagerConfig is one alertmanagers entry: static targets only.
type AlertmanagerConfig struct {
	Scheme        string         `yaml:"scheme"`
	PathPrefix    string         `yaml:"path_prefix"`
	Timeout       Duration       `yaml:"timeout"`
	APIVersion    string         `yaml:"api_version"`
	StaticConfigs []StaticConfig `yaml:"static_configs"`
	// HTTPClientConfig is Prometheus's http_config, inline as in its
	// alertmanagers entries: tls_config, basic_auth, authorization
	// (bearer token), oauth2, http_headers, follow_redirects,
	// enable_http2; proxy_url is off unless set. Secrets are config.Secret
	// (masked when marshalled); files are relative to the config file.
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
}

// StaticConfig lists Alertmanager host:port targets.
type StaticConfig struct {
	Targets []string `yaml:"targets"`
}

func defaultRulesConfig() RulesConfig {
	ro, no := rules.DefaultOptions(), notifier.DefaultOptions()
	return RulesConfig{
		EvaluationInterval: Duration(ro.EvaluationInterval),
		Alerting: AlertingConfig{
			ResendDelay: Duration(ro.ResendDelay), QueueCapacity: no.QueueCapacity,
			MaxBatchSize: no.MaxBatchSize, MaxRetries: no.MaxRetries,
		},
	}
}

// Validate checks what can be checked without reading files.
func (c RulesConfig) Validate() error {
	if c.EvaluationInterval <= 0 || c.Alerting.ResendDelay <= 0 {
		return errors.New("evaluation_interval and alerting.resend_delay must be positive")
	}
	for k := range c.Alerting.ExternalLabels {
		if !model.LegacyValidation.IsValidLabelName(k) {
			return fmt.Errorf("alerting.external_labels: invalid label name %q", k)
		}
	}
	for i, am := range c.Alerting.Alertmanagers {
		if am.APIVersion != "" && am.APIVersion != "v2" {
			return fmt.Errorf("alerting.alertmanagers[%d]: api_version %q: only v2 is supported", i, am.APIVersion)
		}
		if am.Scheme != "" && am.Scheme != "http" && am.Scheme != "https" {
			return fmt.Errorf("alerting.alertmanagers[%d]: scheme %q: want http or https", i, am.Scheme)
		}
	}
	if _, err := c.notifierOptions(false); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	if err := c.Thresholds.Validate(); err != nil {
		return err
	}
	return slo.Validate(c.SLOs)
}

// NotifierOptions translates the alerting section, with an HTTP client
// per Alertmanager built from its entry's http_config.
func (c RulesConfig) NotifierOptions() (notifier.Options, error) {
	return c.notifierOptions(true)
}

// notifierOptions builds the clients only when asked: their files
// (CA, certificates, password files) are read once load has resolved
// their paths.
func (c RulesConfig) notifierOptions(clients bool) (notifier.Options, error) {
	o := notifier.DefaultOptions()
	a := c.Alerting
	o.QueueCapacity, o.MaxBatchSize, o.MaxRetries = a.QueueCapacity, a.MaxBatchSize, a.MaxRetries
	o.ExternalLabels = labels.FromMap(a.ExternalLabels)
	for i, am := range a.Alertmanagers {
		scheme := am.Scheme
		if scheme == "" {
			scheme = "http"
		}
		if err := am.HTTPClientConfig.Validate(); err != nil {
			return o, fmt.Errorf("alertmanagers[%d]: %w", i, err)
		}
		var client *http.Client
		if clients {
			var err error
			if client, err = config.NewClientFromConfig(am.HTTPClientConfig, "alertmanager"); err != nil {
				return o, fmt.Errorf("alertmanagers[%d]: %w", i, err)
			}
		}
		if am.Timeout > 0 {
			o.Timeout = max(o.Timeout, time.Duration(am.Timeout))
		}
		for _, sc := range am.StaticConfigs {
			for _, t := range sc.Targets {
				u := url.URL{Scheme: scheme, Host: t, Path: "/" + strings.Trim(am.PathPrefix, "/")}
				o.Alertmanagers = append(o.Alertmanagers, u.String())
				if client != nil {
					if o.Clients == nil {
						o.Clients = make(map[string]*http.Client)
					}
					o.Clients[u.String()] = client
				}
			}
		}
	}
	return o, o.Validate()
}

// load reads the rule and SLO files (relative to dir) and compiles the
// groups to run: thresholds first, then rule files, then SLOs.
func (c *RulesConfig) load(dir string) error {
	c.groups, c.allSLOs, c.fileGlobs = nil, append([]slo.Spec(nil), c.SLOs...), nil
	for i := range c.Alerting.Alertmanagers {
		c.Alerting.Alertmanagers[i].HTTPClientConfig.SetDirectory(dir)
	}
	// Build the clients once, so that a missing CA or certificate file
	// fails the load (and `check config`), not the first alert.
	if _, err := c.NotifierOptions(); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	for _, g := range append(append([]string(nil), c.RuleFiles...), c.SLOFiles...) {
		if !filepath.IsAbs(g) {
			g = filepath.Join(dir, g)
		}
		c.fileGlobs = append(c.fileGlobs, g)
	}
	if g, ok, err := c.Thresholds.Compile(); err != nil {
		return err
	} else if ok {
		c.groups = append(c.groups, g)
	}
	fileGroups, err := rules.LoadFiles(dir, c.RuleFiles)
	if err != nil {
		return err
	}
	c.groups = append(c.groups, fileGroups...)
	for _, pat := range c.SLOFiles {
		files, err := globRelative(dir, pat)
		if err != nil {
			return fmt.Errorf("slo_files: %w", err)
		}
		for _, f := range files {
			specs, err := slo.LoadFile(f)
			if err != nil {
				return err
			}
			c.allSLOs = append(c.allSLOs, specs...)
		}
	}
	if err := slo.Validate(c.allSLOs); err != nil {
		return fmt.Errorf("slos: %w", err)
	}
	sloGroups, err := slo.Generate(c.allSLOs)
	if err != nil {
		return err
	}
	c.groups = append(c.groups, sloGroups...)
	return nil
}

func globRelative(dir, pat string) ([]string, error) {
	if !filepath.IsAbs(pat) && dir != "" {
		pat = filepath.Join(dir, pat)
	}
	return filepath.Glob(pat)
}
