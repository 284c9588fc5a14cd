package relabel

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// entry is the cached outcome for one input series; immutable after it
// is published.
type entry struct {
	in      labels.Labels // the key, kept to tell hash collisions apart
	out     labels.Labels
	keep    bool
	measure int // 1 + index of the size rule this series feeds, or 0
	*basis
}

// basis is what an outcome was computed from, to notice when it is
// stale. It is apart from the entry so that a caller holding an Outcome
// keeps these few fields alive, not the entry's label sets. The versions
// only move forward, when a revalidation finds the outcome still right.
type basis struct {
	rules   *compiled
	cluster string
	rec     *Record // nil for an unknown cluster
	derived string  // derived size used

	regVersion  atomic.Uint64 // registry version known to leave the outcome valid
	sizeVersion atomic.Uint64 // size tracker version, likewise
}

// cacheShards: a write request's series spread over the shards, so two
// concurrent writers rarely meet on one lock. Reads take a read lock.
const cacheShards = 64

// cache maps series hashes to outcomes with a bound on entries. When a
// shard is full it evicts an arbitrary entry (Go's map iteration starts
// at a random place): the evicted series is recomputed on its next
// sample, which is cheap next to tracking recency on every hit.
type cache struct {
	maxPerShard int // immutable
	shards      [cacheShards]cacheShard
	evictions   atomic.Uint64
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[uint64]*entry // guarded by mu
	_  [40]byte          // keep shards on separate cache lines
}

func newCache(maxEntries int) *cache {
	c := &cache{maxPerShard: max(1, maxEntries/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*entry)
	}
	return c
}

func (c *cache) shard(h uint64) *cacheShard { return &c.shards[h%cacheShards] }

// get returns the entry for in (of hash h), or nil.
func (c *cache) get(h uint64, in labels.Labels) *entry {
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	if e == nil || !labels.Equal(e.in, in) {
		return nil
	}
	return e
}

// put stores e under h. A different series already under h (a hash
// collision) keeps its place: the newcomer is recomputed each time, which
// is correct, only slower, for a one-in-2^64 event.
func (c *cache) put(h uint64, e *entry) {
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[h]; old != nil && !labels.Equal(old.in, e.in) {
		return
	}
	if _, ok := s.m[h]; !ok && len(s.m) >= c.maxPerShard {
		for k := range s.m {
			delete(s.m, k)
			c.evictions.Add(1)
			break
		}
	}
	s.m[h] = e
}

// len returns the number of entries.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// bases shares one basis among the outcomes computed from the same rules,
// cluster record and derived size: every series of a cluster. A caller
// keeping an Outcome per series (ingest) then pays a pointer a series,
// not a basis. Stale bases (an older record or rule set) are dropped
// wholesale when the map outgrows maxBases.
type bases struct {
	mu sync.Mutex
	m  map[basisKey]*basis // guarded by mu
}

type basisKey struct {
	rules   *compiled
	cluster string
	rec     *Record
	derived string
}

const maxBases = 1 << 16

// get returns the shared basis for k, publishing a new one if needed.
// version is the registry version k was computed at.
func (bs *bases) get(k basisKey, version uint64) *basis {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if shared, ok := bs.m[k]; ok {
		return shared
	}
	if bs.m == nil || len(bs.m) >= maxBases {
		bs.m = map[basisKey]*basis{}
	}
	nb := &basis{rules: k.rules, cluster: k.cluster, rec: k.rec, derived: k.derived}
	nb.regVersion.Store(version)
	bs.m[k] = nb
	return nb
}
