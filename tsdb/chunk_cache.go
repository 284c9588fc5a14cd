package tsdb

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// chunkCache keeps the persisted chunks of recently read (bucket, series)
// pairs in memory, bounded in bytes: dashboards re-run the same queries
// every few seconds, and each run would otherwise seek badger once per
// series and bucket and copy every chunk out of it.
//
// An entry holds every chunk the store has of one series in one bucket,
// as one badger snapshot showed them, and the version of that snapshot.
// The chunks of a (bucket, series) change in two ways only, both under
// DB.checkpointMu: a checkpoint adds chunks (closed in-order chunks, and
// out-of-order ones in any bucket of the out-of-order window), and
// retention drops whole buckets. Eviction of a series from the head
// writes no chunks. A query must read exactly what its snapshot holds:
// an extra chunk could be one retention dropped, and a missing one is
// lost data (the checkpoint has released it from the head).
//
// Versions. Every chunk write is bracketed by beginWrite and end, which
// raise gen to an odd value G and then to G+1. A querier's snapshot is
// taken between two loads of gen; if both saw the same value g, the
// snapshot holds every write below g and none above it, and a write at
// g itself (g odd: one under way) only for the pairs it had marked when
// the snapshot was taken (marks come before the writes they announce, see
// below). The reader's version is g rounded down to even. Each write
// marks the pairs it changes with its G before it queues them in badger:
// lastWrite(k) is an upper bound of the newest write to k that any
// snapshot can show. An entry read at version e serves a reader at
// version v exactly when lastWrite(k) < min(e, v): no write to k falls
// between the two snapshots, so both hold the same chunks. A write under
// way when an entry was filled marks the pair before the fill's snapshot
// could show it, so lastWrite(k) ≥ G > e and the entry never serves.
//
// Eviction is a segmented LRU: an entry enters on probation and is
// protected from its second read on; the least recently used entry on
// probation goes first. A query that reads many series once (a
// fleet-wide rate over every member) then cycles through probation and
// leaves in place the entries that dashboards read again and again, which
// a plain LRU would all have lost to it.
//
// lastWrite is kept per bucket: a floor (retention's drop of the bucket,
// or a summary of older writes) and, for the few buckets written lately,
// writeSlots slots that each hold the newest write to any series hashed
// to them. Collisions only cost misses.
type chunkCache struct {
	shards [cacheShards]cacheShard

	writeMu sync.Mutex    // held from beginWrite to end: writes one at a time
	gen     atomic.Uint64 // odd while a write is under way
	// buckets maps a bucket to its write marks. Replaced whole (copy on
	// write) under writeMu; the marks inside are atomics.
	buckets atomic.Pointer[map[int64]*bucketWrites]
	slotted []int64 // guarded by writeMu: buckets with slots, oldest first

	// max is the cache's size; used and entries what it holds (bulk
	// sizes selections from their average).
	max           int64
	used, entries atomic.Int64

	hits, misses prometheus.Counter
	evictions    prometheus.Counter
	bytes        prometheus.Gauge
}

const (
	cacheShards = 16
	// writeSlots is how many series slots a recently written bucket has:
	// 32 KiB of marks. A checkpoint of many series marks most of them,
	// which is what it should do: it changed most of those series.
	writeSlots = 4096
	// slottedBuckets is how many buckets keep slots; older ones collapse
	// to their floor. Checkpoints write the newest one or two buckets.
	slottedBuckets = 4
	// cacheEntryOverhead is what an entry costs besides its chunks: the
	// entry, its map slot and the slice headers.
	cacheEntryOverhead = 160
	// protectedPercent is the share of a shard that protected entries
	// may fill; the rest is probation's, where new entries prove useful.
	protectedPercent = 80
)

type cacheKey struct {
	bucket int64
	ref    SeriesRef
	// merged: the reader's badger snapshot holds the bucket compacted,
	// and it skips the journal's records of it (storeReader.compacted).
	// Readers on either side of the mark read different chunks of the
	// same samples, so they keep entries of their own.
	merged bool
}

// cacheEntry is one (bucket, series) read. chunks and the bytes they
// point to are immutable: queries share them.
type cacheEntry struct {
	key        cacheKey
	ver        uint64
	chunks     []memChunk
	size       int64
	protected  bool        // in the protected list, else on probation
	prev, next *cacheEntry // in its list
}

type cacheShard struct {
	mu sync.Mutex
	m  map[cacheKey]*cacheEntry
	// Sentinels of the two lists; .next is the most recently used.
	probation, protected cacheEntry
	bytes                int64 // of all entries
	protectedBytes       int64
	max                  int64
}

// bucketWrites is the write marks of one bucket.
type bucketWrites struct {
	floor atomic.Uint64
	slots *[writeSlots]atomic.Uint64 // nil: the floor stands for every series
}

// newChunkCache returns a cache of maxBytes, or nil when maxBytes is 0
// (no cache: every method of a nil cache is a no-op or a miss).
func newChunkCache(maxBytes int64, reg prometheus.Registerer) *chunkCache {
	if maxBytes <= 0 {
		return nil
	}
	c := &chunkCache{
		max: maxBytes,
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_chunk_cache_hits_total",
			Help: "Reads of a series' persisted chunks in one time bucket served by the chunk cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_chunk_cache_misses_total",
			Help: "Reads of a series' persisted chunks in one time bucket that went to the store.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_chunk_cache_evictions_total",
			Help: "Entries the chunk cache dropped to stay within its size.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_tsdb_chunk_cache_bytes",
			Help: "Bytes the chunk cache holds, chunks and bookkeeping.",
		}),
	}
	if reg != nil {
		reg.MustRegister(c.hits, c.misses, c.evictions, c.bytes)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.m = map[cacheKey]*cacheEntry{}
		sh.probation.next, sh.probation.prev = &sh.probation, &sh.probation
		sh.protected.next, sh.protected.prev = &sh.protected, &sh.protected
		sh.max = maxBytes / cacheShards
	}
	empty := map[int64]*bucketWrites{}
	c.buckets.Store(&empty)
	return c
}

func (c *chunkCache) shard(k cacheKey) *cacheShard {
	h := (uint64(k.ref) ^ uint64(k.bucket)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	return &c.shards[h>>60]
}

func slotOf(ref SeriesRef) uint64 {
	return (uint64(ref) * 0x9e3779b97f4a7c15) >> (64 - bits.Len(writeSlots-1))
}

// version returns the version of a snapshot taken by open, and whether
// the snapshot may use the cache: not if a write began or ended while it
// was taken.
func (c *chunkCache) version(open func()) (uint64, bool) {
	if c == nil {
		open()
		return 0, false
	}
	g1 := c.gen.Load()
	open()
	g2 := c.gen.Load()
	return g1 &^ 1, g1 == g2
}

// lastWrite returns an upper bound of the version of the newest write
// that changed the chunks of k.
func (c *chunkCache) lastWrite(k cacheKey) uint64 {
	bw := (*c.buckets.Load())[k.bucket]
	if bw == nil {
		return 0
	}
	// The slots first: a collapse raises the floor before it drops them.
	var slot uint64
	if s := bw.slots; s != nil {
		slot = s[slotOf(k.ref)].Load()
	}
	return max(slot, bw.floor.Load())
}

// get returns the chunks of k as a reader at version v must see them,
// and counts the read for eviction unless the read is part of a bulk
// one (bulk).
func (c *chunkCache) get(k cacheKey, v uint64, bulk bool) ([]memChunk, bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	e := sh.m[k]
	// The marks are read after the entry: an entry put after they were
	// read could hold a write they do not show yet.
	var lw uint64
	if e != nil {
		lw = c.lastWrite(k)
	}
	switch {
	case e == nil:
	case lw > e.ver:
		// Written after the entry was read: it can serve no one again.
		sh.removeLocked(e)
		c.account(-e.size, -1)
		e = nil
	case lw > v:
		e = nil // the reader's snapshot is older than a write to k
	case !bulk:
		sh.protectLocked(e)
	}
	sh.mu.Unlock()
	if e == nil {
		c.misses.Inc()
		return nil, false
	}
	c.hits.Inc()
	return e.chunks, true
}

// put stores the chunks of k that a reader at version v read; the cache
// keeps them and the bytes they point to, which nobody may change.
func (c *chunkCache) put(k cacheKey, v uint64, chunks []memChunk, dataBytes int) {
	if c.lastWrite(k) > v {
		return // already out of date
	}
	size := int64(dataBytes) + int64(cap(chunks))*int64(unsafe.Sizeof(memChunk{})) + cacheEntryOverhead
	sh := c.shard(k)
	if size > sh.max {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	freed, removed := int64(0), 0
	if old := sh.m[k]; old != nil {
		if old.ver >= v {
			return // as new or newer
		}
		sh.removeLocked(old)
		freed += old.size
		removed++
	}
	evicted := 0
	for sh.bytes+size > sh.max {
		last := sh.probation.prev
		if last == &sh.probation {
			last = sh.protected.prev
		}
		sh.removeLocked(last)
		freed += last.size
		evicted++
	}
	removed += evicted
	e := &cacheEntry{key: k, ver: v, chunks: chunks, size: size}
	sh.m[k] = e
	sh.pushFrontLocked(&sh.probation, e)
	sh.bytes += size
	c.account(size-freed, 1-int64(removed))
	c.evictions.Add(float64(evicted))
}

// account records a change of the cache's bytes and entries.
func (c *chunkCache) account(bytes, entries int64) {
	c.bytes.Add(float64(bytes))
	c.used.Add(bytes)
	c.entries.Add(entries)
}

// bulkEntryGuess is the size bulk assumes of an entry while the cache
// is empty: a 2-hour bucket of a series scraped every 15 s.
const bulkEntryGuess = 1024

// bulk reports whether a read of pairs (bucket, series) pairs should
// leave the cache as it is: they would fill more than half of it (at the
// average size of its entries). Filled in, they would evict what other
// queries read again and again, and being read in a cycle longer than
// the cache (a fleet-wide query re-run by a dashboard), each would be
// evicted before its next read: a least-recently-used cache's worst case.
// A bulk read takes the entries the cache has without counting the read
// for eviction, and puts none.
func (c *chunkCache) bulk(pairs int) bool {
	if c == nil {
		return false
	}
	avg := int64(bulkEntryGuess)
	if n := c.entries.Load(); n > 0 {
		avg = max(1, c.used.Load()/n)
	}
	return int64(pairs) > c.max/2/avg
}

func (sh *cacheShard) unlinkLocked(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (sh *cacheShard) pushFrontLocked(list, e *cacheEntry) {
	e.prev, e.next = list, list.next
	list.next.prev = e
	list.next = e
}

// protectLocked moves e, just read, to the front of the protected list,
// and moves the least recently used protected entries back to probation
// while they fill more than their share.
func (sh *cacheShard) protectLocked(e *cacheEntry) {
	sh.unlinkLocked(e)
	if !e.protected {
		e.protected = true
		sh.protectedBytes += e.size
	}
	sh.pushFrontLocked(&sh.protected, e)
	for sh.protectedBytes > sh.max/100*protectedPercent {
		last := sh.protected.prev
		sh.unlinkLocked(last)
		last.protected = false
		sh.protectedBytes -= last.size
		sh.pushFrontLocked(&sh.probation, last)
	}
}

func (sh *cacheShard) removeLocked(e *cacheEntry) {
	sh.unlinkLocked(e)
	delete(sh.m, e.key)
	sh.bytes -= e.size
	if e.protected {
		sh.protectedBytes -= e.size
	}
}

// cacheWrite is one write of chunks to the store, from beginWrite to end.
// Its methods mark what it changes; they must be called before the store
// write they announce is queued.
type cacheWrite struct {
	c *chunkCache
	g uint64
}

// beginWrite starts a write of chunks. A nil cache returns a write whose
// methods do nothing.
func (c *chunkCache) beginWrite() cacheWrite {
	if c == nil {
		return cacheWrite{}
	}
	c.writeMu.Lock()
	return cacheWrite{c: c, g: c.gen.Add(1)}
}

// end ends the write, whether or not the store took it.
func (w cacheWrite) end() {
	if w.c == nil {
		return
	}
	w.c.gen.Add(1)
	w.c.writeMu.Unlock()
}

// chunk marks a chunk of ref written to bucket.
func (w cacheWrite) chunk(bucket int64, ref SeriesRef) {
	if w.c == nil {
		return
	}
	bw := w.c.slotsFor(bucket)
	s := &bw.slots[slotOf(ref)]
	if s.Load() < w.g {
		s.Store(w.g) // only writers store, one at a time
	}
}

// bucket marks every series of bucket changed without taking slots from
// the recently written buckets: compaction rewrites whole old buckets, a
// batch of series at a time. The bucket's floor rises monotonically, so
// readers may load it at any time.
func (w cacheWrite) bucket(bucket int64) {
	c := w.c
	if c == nil {
		return
	}
	old := *c.buckets.Load()
	if bw := old[bucket]; bw != nil {
		if bw.floor.Load() < w.g {
			bw.floor.Store(w.g) // only writers store, one at a time
		}
		return
	}
	c.storeFloor(old, bucket, w.g)
}

// storeFloor replaces the marks with old's, bucket's a floor of g and no
// slots. The caller holds writeMu.
func (c *chunkCache) storeFloor(old map[int64]*bucketWrites, bucket int64, g uint64) {
	next := make(map[int64]*bucketWrites, len(old)+1)
	for b, bw := range old {
		next[b] = bw
	}
	bw := &bucketWrites{}
	bw.floor.Store(g)
	next[bucket] = bw
	c.buckets.Store(&next)
}

// dropBucket marks every series of bucket changed, and frees the
// cache's entries of it.
func (w cacheWrite) dropBucket(bucket int64) {
	c := w.c
	if c == nil {
		return
	}
	c.storeFloor(*c.buckets.Load(), bucket, w.g)
	if i := indexOf(c.slotted, bucket); i >= 0 {
		c.slotted = append(c.slotted[:i], c.slotted[i+1:]...)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		freed, removed := int64(0), int64(0)
		for k, e := range sh.m {
			if k.bucket == bucket {
				sh.removeLocked(e)
				freed += e.size
				removed++
			}
		}
		sh.mu.Unlock()
		c.account(-freed, -removed)
	}
}

func indexOf(s []int64, v int64) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// slotsFor returns the marks of bucket with slots, giving it slots (and
// taking those of the bucket written longest ago) if it has none. The
// caller holds writeMu.
func (c *chunkCache) slotsFor(bucket int64) *bucketWrites {
	cur := *c.buckets.Load()
	if bw := cur[bucket]; bw != nil && bw.slots != nil {
		return bw
	}
	next := make(map[int64]*bucketWrites, len(cur)+1)
	for b, bw := range cur {
		next[b] = bw
	}
	bw := &bucketWrites{slots: new([writeSlots]atomic.Uint64)}
	if old := cur[bucket]; old != nil {
		bw.floor.Store(old.floor.Load())
	}
	next[bucket] = bw
	c.slotted = append(c.slotted, bucket)
	if len(c.slotted) > slottedBuckets {
		// The floor of the collapsed bucket becomes the newest of its
		// marks: a later write than any entry read after it, so entries
		// read since stay valid; it is stored before readers can see the
		// bucket without slots.
		oldest := c.slotted[0]
		c.slotted = c.slotted[1:]
		o := next[oldest]
		f := o.floor.Load()
		for i := range o.slots {
			f = max(f, o.slots[i].Load())
		}
		collapsed := &bucketWrites{}
		collapsed.floor.Store(f)
		next[oldest] = collapsed
	}
	c.buckets.Store(&next)
	return bw
}
