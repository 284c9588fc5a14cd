package relabel

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// SizeRule derives a cluster's size from a measured figure: the latest
// value of Metric seen on ingest for the cluster is small below
// SmallBelow, large at or above LargeFrom, default between. A zero
// threshold is not applied.
type SizeRule struct {
	Metric     string  `yaml:"metric" json:"metric"`
	SmallBelow float64 `yaml:"small_below" json:"small_below"`
	LargeFrom  float64 `yaml:"large_from" json:"large_from"`
}

// Validate checks one rule.
func (r SizeRule) Validate() error {
	if r.Metric == "" {
		return fmt.Errorf("size rule: metric is empty")
	}
	if r.SmallBelow < 0 || r.LargeFrom < 0 || r.LargeFrom > 0 && r.SmallBelow > r.LargeFrom {
		return fmt.Errorf("size rule %s: small_below %g and large_from %g must be positive and ordered", r.Metric, r.SmallBelow, r.LargeFrom)
	}
	return nil
}

func (r SizeRule) classify(v float64) int {
	switch {
	case r.LargeFrom > 0 && v >= r.LargeFrom:
		return 2
	case r.SmallBelow > 0 && v < r.SmallBelow:
		return 0
	}
	return 1
}

var sizeNames = [3]string{SizeSmall, SizeDefault, SizeLarge}

// sizeTracker keeps the latest value per cluster of each size-rule metric
// and the size they derive: the largest any rule gives, since one big
// figure is enough to make a cluster large.
type sizeTracker struct {
	mu      sync.Mutex                 // serialises observations
	values  map[string]map[int]float64 // cluster → rule index → latest value; guarded by mu
	derived atomic.Pointer[map[string]string]
	version atomic.Uint64 // bumped when any derived size changes
}

func newSizeTracker() *sizeTracker {
	t := &sizeTracker{values: map[string]map[int]float64{}}
	t.derived.Store(&map[string]string{})
	return t
}

// get returns the derived size of cluster, or "".
func (t *sizeTracker) get(cluster string) string { return (*t.derived.Load())[cluster] }

// observe records v for rule i of cluster and reports whether the derived
// size changed. The derived map is copied only on a change, which happens
// when a cluster crosses a threshold: rarely.
func (t *sizeTracker) observe(rules []SizeRule, i int, cluster string, v float64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	vals := t.values[cluster]
	if vals == nil {
		vals = map[int]float64{}
		t.values[cluster] = vals
	}
	vals[i] = v
	size := 0
	for j, val := range vals {
		if j < len(rules) {
			size = max(size, rules[j].classify(val))
		}
	}
	cur := *t.derived.Load()
	if cur[cluster] == sizeNames[size] {
		return false
	}
	next := maps.Clone(cur)
	next[cluster] = sizeNames[size]
	t.derived.Store(&next)
	t.version.Add(1)
	return true
}

// reset forgets every figure, when the size rules change.
func (t *sizeTracker) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.values = map[string]map[int]float64{}
	t.derived.Store(&map[string]string{})
	t.version.Add(1)
}
