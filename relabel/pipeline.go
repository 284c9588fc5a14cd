package relabel

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// Pipeline computes, once per series, the labels a series is stored
// with, and caches the outcome. It is safe for concurrent use; a reload
// or registry change swaps immutable state and never pauses callers.
type Pipeline struct {
	rules    atomic.Pointer[compiled]
	registry *Registry // immutable pointer; the registry publishes snapshots
	sizes    *sizeTracker
	cache    *cache
	bases    bases
	metrics  *metrics
	logger   *slog.Logger
}

// New returns a pipeline for opts.
func New(opts Options) (*Pipeline, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c, _ := compile(opts.Config)
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{registry: opts.Registry, sizes: newSizeTracker(), cache: newCache(opts.CacheEntries), logger: opts.Logger}
	p.rules.Store(c)
	p.metrics = newMetrics(opts.Registerer, p)
	return p, nil
}

// Registry returns the registry the pipeline enriches from.
func (p *Pipeline) Registry() *Registry { return p.registry }

// RegistryErrorCounter returns a function counting refused registry loads
// of the given source ("file" or "etcd"), for the watchers.
func (p *Pipeline) RegistryErrorCounter(source string) func(error) {
	c := p.metrics.registryErrors.WithLabelValues(source)
	return func(error) { c.Inc() }
}

// SetConfig swaps in a new configuration. Every cached outcome becomes
// stale and is recomputed on its series' next sample; ingestion does not
// wait.
func (p *Pipeline) SetConfig(c Config) error {
	next, err := Compile(c)
	if err != nil {
		return err
	}
	p.SetCompiled(next)
	return nil
}

// Compiled is a configuration compiled and validated by Compile, ready
// to swap in with SetCompiled, which cannot fail: a reload prepares
// every part before it changes any.
type Compiled struct{ c *compiled }

// Compile compiles and validates c.
func Compile(c Config) (Compiled, error) {
	next, err := compile(c)
	if err != nil {
		return Compiled{}, err
	}
	return Compiled{next}, nil
}

// SetCompiled swaps in a compiled configuration, as SetConfig does.
func (p *Pipeline) SetCompiled(c Compiled) {
	if c.c == nil {
		panic("BUG: relabel: SetCompiled with a Compiled not made by Compile")
	}
	prev := p.rules.Swap(c.c)
	if !sameSizeRules(prev.sizes, c.c.sizes) {
		p.sizes.reset()
	}
}

func sameSizeRules(a, b []SizeRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Relabel returns the labels to store for the validated series in, and
// false if the series is dropped. measured says the series feeds a size
// rule: the caller passes its samples to Measure. in may be scratch
// memory: the pipeline copies it when it keeps it. out is immutable and
// may be kept.
func (p *Pipeline) Relabel(in labels.Labels) (out labels.Labels, keep, measured bool) {
	e := p.outcome(in)
	return e.out, e.keep, e.measure > 0
}

// Outcome is an opaque handle on one series' relabeling outcome, for a
// caller that caches what it did with the outcome (ingest keeps the
// stored series' ref) and must learn when the outcome goes stale.
type Outcome struct{ b *basis }

// RelabelOutcome is Relabel that also returns the outcome's handle.
func (p *Pipeline) RelabelOutcome(in labels.Labels) (out labels.Labels, keep, measured bool, o Outcome) {
	e := p.outcome(in)
	return e.out, e.keep, e.measure > 0, Outcome{e.basis}
}

// Current reports whether o still describes what relabeling its series
// gives now: the rules, the cluster's registry record and its derived
// size are unchanged. In the common case it is three loads and compares.
func (p *Pipeline) Current(o Outcome) bool {
	return o.b != nil && p.valid(o.b, p.rules.Load(), p.registry.snap.Load(), p.sizes.version.Load())
}

func (p *Pipeline) outcome(in labels.Labels) *entry {
	h := in.Hash()
	c := p.rules.Load()
	snap := p.registry.snap.Load()
	sizeVer := p.sizes.version.Load()
	if e := p.cache.get(h, in); e != nil && p.valid(e.basis, c, snap, sizeVer) {
		return e
	}
	e := p.compute(in, c, snap)
	e.regVersion.Store(snap.version)
	e.sizeVersion.Store(sizeVer)
	p.cache.put(h, e)
	return e
}

// valid reports whether e still holds for the current state. The common
// case is two comparisons; after a registry or size change elsewhere, the
// entry's own cluster is looked up once and the entry marked current.
func (p *Pipeline) valid(e *basis, c *compiled, snap *snapshot, sizeVer uint64) bool {
	if e.rules != c {
		return false
	}
	if e.regVersion.Load() == snap.version && e.sizeVersion.Load() == sizeVer {
		return true
	}
	if e.cluster != "" && (snap.records[e.cluster] != e.rec || p.sizes.get(e.cluster) != e.derived) {
		return false
	}
	e.regVersion.Store(snap.version)
	e.sizeVersion.Store(sizeVer)
	return true
}

// compute runs the rules and the enrichment for one series.
func (p *Pipeline) compute(in labels.Labels, c *compiled, snap *snapshot) *entry {
	p.metrics.computed.Inc()
	e := &entry{in: in.Copy()}
	b := basisKey{rules: c} // filled in, then shared: see bases
	// Built from the copy: a Builder without changes returns its base,
	// and in is the caller's scratch memory.
	lb := labels.NewBuilder(e.in)
	if reason := runRules(c, lb); reason != "" {
		e.basis = p.bases.get(b, snap.version)
		return p.drop(e, reason)
	}
	if lb.Get(model.MetricNameLabel) == "" {
		e.basis = p.bases.get(b, snap.version)
		return p.drop(e, reasonNoMetricName)
	}
	if b.cluster = lb.Get(c.cluster); b.cluster != "" {
		b.rec = snap.records[b.cluster]
		b.derived = p.sizes.get(b.cluster)
		if b.rec == nil {
			p.metrics.unknown.Inc()
		}
		enrich(lb, b.rec, b.derived, c.defaults)
	}
	e.basis = p.bases.get(b, snap.version)
	e.out = lb.Labels()
	if err := checkNames(e.out); err != nil {
		p.logger.Debug("series dropped after relabeling", "series", in.String(), "err", err)
		return p.drop(e, reasonInvalidResult)
	}
	if i, ok := c.sizeIdx[e.out.Get(model.MetricNameLabel)]; ok && e.cluster != "" {
		e.measure = i + 1
	}
	e.keep = true
	return e
}

// runRules applies the global rules, then those of every matching source,
// and returns the reason of a drop or "".
func runRules(c *compiled, lb *labels.Builder) string {
	if applyAll(c.global, lb) != nil {
		return reasonGlobalRule
	}
	for _, s := range c.sources {
		if s.matches(lb) && applyAll(s.rules, lb) != nil {
			return reasonSourceRule
		}
	}
	return ""
}

func (p *Pipeline) drop(e *entry, reason string) *entry {
	p.metrics.dropped.WithLabelValues(reason).Inc()
	e.out, e.keep = labels.EmptyLabels(), false
	return e
}

// checkNames refuses label names the write path would refuse: a
// labelmap or a replace with a templated target can make them.
func checkNames(ls labels.Labels) error {
	var err error
	ls.Range(func(l labels.Label) {
		if err == nil && !validLabelName(l.Name) {
			err = fmt.Errorf("invalid label name %q", l.Name)
		}
	})
	if err == nil && !model.LegacyValidation.IsValidMetricName(ls.Get(model.MetricNameLabel)) {
		err = fmt.Errorf("invalid metric name %q", ls.Get(model.MetricNameLabel))
	}
	return err
}

// Measure records a sample of a series Relabel said is measured (its
// stored labels out, its latest value v). When the cluster's derived
// size changes, its cached outcomes become stale.
func (p *Pipeline) Measure(out labels.Labels, v float64) {
	c := p.rules.Load()
	i, ok := c.sizeIdx[out.Get(model.MetricNameLabel)]
	cluster := out.Get(c.cluster)
	if !ok || cluster == "" {
		return
	}
	if p.sizes.observe(c.sizes, i, cluster, v) {
		p.logger.Info("derived cluster size changed", "cluster", cluster, "size", p.sizes.get(cluster))
	}
}
