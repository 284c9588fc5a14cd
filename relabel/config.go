package relabel

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is the reloadable part of the pipeline.
type Config struct {
	// RelabelConfigs run on every series, first.
	RelabelConfigs []*RuleConfig
	// Sources run, in order, on the series their matchers select, after
	// the global rules.
	Sources []Source
	// SizeRules derive a cluster's size from figures seen on ingest.
	SizeRules []SizeRule
	// ClusterLabel names the label that carries the etcd cluster ID.
	ClusterLabel string
	// Defaults are stamped on series of clusters not in the registry; a
	// "size" default also applies to registered clusters without a size.
	Defaults map[string]string
}

// DefaultConfig returns a configuration without rules that stamps unknown
// clusters with scenario="unknown", size="default".
func DefaultConfig() Config {
	return Config{ClusterLabel: "cluster", Defaults: map[string]string{"scenario": "unknown", "size": SizeDefault}}
}

// Validate compiles the configuration and reports the first error.
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

// Options configure a Pipeline.
type Options struct {
	Config Config
	// CacheEntries bounds the outcome cache. An entry holds the input and
	// output label sets, about 1 KiB for an etcd series. A caller that
	// keeps Outcomes (ingest does, per series) only misses into it when a
	// series is new or its outcome went stale, so it can stay small.
	CacheEntries int
	// Registry supplies cluster records; nil means an empty one.
	Registry   *Registry
	Registerer prometheus.Registerer // may be nil
	Logger     *slog.Logger          // may be nil
}

// DefaultOptions returns options with the default config and a cache of
// 4Ki series (about 4 MiB): ingest keeps the outcome of every settled
// series itself, so this cache serves only the few series it does not
// (measured ones) and repeats within a burst of new series.
func DefaultOptions() Options {
	return Options{Config: DefaultConfig(), CacheEntries: 1 << 12}
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	if o.CacheEntries <= 0 {
		return fmt.Errorf("relabel cache entries %d must be positive", o.CacheEntries)
	}
	return o.Config.Validate()
}

// compiled is a validated Config, immutable; it is swapped whole on reload.
type compiled struct {
	global   []*rule
	sources  []*source
	sizes    []SizeRule
	sizeIdx  map[string]int // metric name → index in sizes
	cluster  string
	defaults map[string]string
}

func compile(c Config) (*compiled, error) {
	if !validLabelName(c.ClusterLabel) {
		return nil, fmt.Errorf("cluster label %q is not a valid label name", c.ClusterLabel)
	}
	for n, v := range c.Defaults {
		if !validLabelName(n) {
			return nil, fmt.Errorf("defaults: invalid label name %q", n)
		}
		if n == "size" && !ValidSize(v) {
			return nil, fmt.Errorf("defaults: unknown size %q: want small, default or large", v)
		}
	}
	global, err := compileRules("global", c.RelabelConfigs)
	if err != nil {
		return nil, err
	}
	out := &compiled{global: global, cluster: c.ClusterLabel, defaults: c.Defaults, sizeIdx: map[string]int{}}
	names := map[string]bool{}
	for _, s := range c.Sources {
		if names[s.Name] {
			return nil, fmt.Errorf("duplicate source %q", s.Name)
		}
		names[s.Name] = true
		src, err := compileSource(s)
		if err != nil {
			return nil, err
		}
		out.sources = append(out.sources, src)
	}
	for i, r := range c.SizeRules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if _, dup := out.sizeIdx[r.Metric]; dup {
			return nil, fmt.Errorf("size rule %s: metric appears twice", r.Metric)
		}
		out.sizeIdx[r.Metric] = i
	}
	out.sizes = c.SizeRules
	return out, nil
}
