package ingest

import (
	"encoding/binary"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/etcdgate/etcdgate/relabel"
	"github.com/etcdgate/etcdgate/tsdb"
)

// seriesCache remembers, per series as sent (its decoded labels, before
// validation), what relabeling made of it and which stored series that
// became. A later sample of the series then skips validation, relabeling
// and the store's lookup by labels: one hash of the sent labels, one map
// lookup and a check that the relabeling outcome is still current. It is
// used only with relabeling on, where those steps cost the most.
//
// Entries are keyed by a 64-bit hash of the sent labels and carry a
// second, independent 64-bit hash, so that two label sets are confused
// only if both collide (about 2^-128). Each costs ~40 bytes; the cache
// holds at most maxEntries, dropping a shard's entries when it fills.
//
// The entry type is a parameter: a node alone caches cachedSeries, a node
// of a ring cachedPlacement, which also holds the stored label set and its
// place on the ring, so that a node alone pays nothing for the ring.
type seriesCache[E checked] struct {
	maxPerShard int // immutable
	shards      [seriesCacheShards]seriesCacheShard[E]
}

// checked is a cache entry: it carries the second hash of its sent labels.
type checked interface{ checkHash() uint64 }

const seriesCacheShards = 64

type seriesCacheShard[E checked] struct {
	mu sync.RWMutex
	m  map[uint64]E // guarded by mu
	_  [40]byte     // keep shards on separate cache lines
}

// cachedSeries is a relabeling outcome and the stored series it gave.
type cachedSeries struct {
	check   uint64          // second hash of the sent labels
	ref     tsdb.SeriesRef  // 0: the series is dropped by relabeling
	outcome relabel.Outcome // the relabeling this entry holds for
}

func (c cachedSeries) checkHash() uint64 { return c.check }

func newSeriesCache[E checked](maxEntries int) *seriesCache[E] {
	c := &seriesCache[E]{maxPerShard: max(1, maxEntries/seriesCacheShards)}
	for i := range c.shards {
		c.shards[i].m = map[uint64]E{}
	}
	return c
}

func (c *seriesCache[E]) get(h, check uint64) (E, bool) {
	sh := &c.shards[h%seriesCacheShards]
	sh.mu.RLock()
	e, ok := sh.m[h]
	sh.mu.RUnlock()
	return e, ok && e.checkHash() == check
}

func (c *seriesCache[E]) put(h uint64, e E) {
	sh := &c.shards[h%seriesCacheShards]
	sh.mu.Lock()
	if len(sh.m) >= c.maxPerShard {
		clear(sh.m) // cheap and rare: each dropped series pays one slow path
	}
	sh.m[h] = e
	sh.mu.Unlock()
}

// reset empties the cache.
func (c *seriesCache[E]) reset() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

// sentHashes hashes decoded labels as sent, using buf as scratch. The
// second hash is over the same bytes behind a one-byte prefix, which
// makes it independent of the first for xxhash.
//
// Each name and value is length-prefixed, so the hashed bytes encode the
// label list one to one: with separator bytes instead, a value holding
// the separators (a label set that validation refuses) hashed like a
// valid series with more labels, hit its cache entry and skipped
// validation.
func sentHashes(ls []Label, buf []byte) (h, check uint64, scratch []byte) {
	buf = append(buf[:0], 0x5a)
	for _, l := range ls {
		buf = binary.AppendUvarint(buf, uint64(len(l.Name)))
		buf = append(buf, l.Name...)
		buf = binary.AppendUvarint(buf, uint64(len(l.Value)))
		buf = append(buf, l.Value...)
	}
	return xxhash.Sum64(buf[1:]), xxhash.Sum64(buf), buf
}
