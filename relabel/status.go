package relabel

// Status is what /api/v1/status/relabel shows. Counts are of series
// (computations), since the rules run once per new series; the rule
// counters restart at each reload.
type Status struct {
	Enabled              bool              `json:"enabled"`
	Rules                []RuleStatus      `json:"rules"`
	RegistryClusters     int               `json:"registryClusters"`
	UnknownClusterSeries uint64            `json:"unknownClusterSeries"`
	DerivedSizes         map[string]string `json:"derivedSizes"`
	CacheEntries         int               `json:"cacheEntries"`
	CacheEvictions       uint64            `json:"cacheEvictions"`
}

// RuleStatus counts the outcomes of one rule.
type RuleStatus struct {
	Scope   string `json:"scope"` // "global" or "source NAME"
	Index   int    `json:"index"`
	Rule    string `json:"rule"`
	Kept    uint64 `json:"kept"`
	Dropped uint64 `json:"dropped"`
	Changed uint64 `json:"changed"`
}

// Status returns the current counts.
func (p *Pipeline) Status() Status {
	c := p.rules.Load()
	st := Status{
		Enabled:              true,
		Rules:                []RuleStatus{},
		RegistryClusters:     p.registry.Len(),
		UnknownClusterSeries: uint64(readCounter(p.metrics.unknown)),
		DerivedSizes:         *p.sizes.derived.Load(),
		CacheEntries:         p.cache.len(),
		CacheEvictions:       p.cache.evictions.Load(),
	}
	add := func(rules []*rule) {
		for _, r := range rules {
			st.Rules = append(st.Rules, RuleStatus{Scope: r.scope, Index: r.index, Rule: r.desc,
				Kept: r.kept.Load(), Dropped: r.dropped.Load(), Changed: r.changed.Load()})
		}
	}
	add(c.global)
	for _, s := range c.sources {
		add(s.rules)
	}
	return st
}
