package tsdb

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
)

// cacheTestOptions: one-minute buckets, chunks of 4 samples, so that a
// few hundred samples make many buckets and chunks.
// checkpointedSeries opens a DB with opts holding one series, m, of n
// samples a second apart from 0, checkpointed, and returns its ref.
func checkpointedSeries(t *testing.T, opts Options, n int64) (*DB, SeriesRef) {
	t.Helper()
	db := openTestDB(t, t.TempDir(), opts)
	ls := labels.FromStrings("__name__", "m")
	for i := range n {
		if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	return db, cachedSeriesRefs(t, db)[0]
}

func cacheTestOptions(cacheBytes int64) Options {
	o := testDBOptions()
	o.Head.ChunkRange = time.Minute
	o.Head.ChunkSamples = 4
	o.Head.OutOfOrderWindow = 30 * time.Second
	o.Retention = 3 * time.Minute
	o.ChunkCacheBytes = cacheBytes
	return o
}

// uncached returns a reader over r's snapshot that bypasses the cache:
// what badger itself shows that snapshot. Its iterators are closed by
// closeUncached; the transaction stays r's.
func uncached(r *storeReader) *storeReader {
	return &storeReader{st: r.st, txn: r.txn, compacted: r.compacted}
}

func closeUncached(r *storeReader) {
	for _, it := range r.all {
		it.it.Close()
	}
}

func cachedSeriesRefs(t testing.TB, db *DB) []SeriesRef {
	t.Helper()
	q, err := db.Querier(minInt64, maxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var refs []SeriesRef
	set := q.SelectUnsorted(context.Background(), matchAll)
	for set.Next() {
		refs = append(refs, set.At().(*headSeries).s.ref)
	}
	return refs
}

func sameChunks(a, b []memChunk) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].minT != b[i].minT || a[i].maxT != b[i].maxT || !bytes.Equal(a[i].data, b[i].data) {
			return false
		}
	}
	return true
}

func fmtChunks(cs []memChunk) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("[%d,%d %dB] ", c.minT, c.maxT, len(c.data))
	}
	return s
}

// readStore returns the store's chunks of ref in [mint, maxt] through a
// new querier (and so the cache), and as its snapshot holds them.
func readStore(t testing.TB, db *DB, ref SeriesRef, mint, maxt int64) (got, want []memChunk) {
	t.Helper()
	q, err := db.Querier(mint, maxt)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	r := q.(*headQuerier).store
	u := uncached(r)
	defer closeUncached(u)
	chain := db.head.series.refs.chain(ref) // once: both reads see the same chain
	if got, err = r.chunks(nil, ref, chain, mint, maxt); err != nil {
		t.Fatal(err)
	}
	if want, err = u.chunks(nil, ref, chain, mint, maxt); err != nil {
		t.Fatal(err)
	}
	return got, want
}

// TestChunkCacheCheckpointAppends: a checkpoint that adds a chunk to a
// (bucket, series) the cache holds makes the next query read it; a
// querier opened before that checkpoint still reads its own snapshot,
// even after a newer querier filled the cache with the new chunk.
func TestChunkCacheCheckpointAppends(t *testing.T) {
	db, ref := checkpointedSeries(t, cacheTestOptions(1<<20), 10) // chunks of 4: two closed, in bucket 0
	defer db.Close()
	ls := labels.FromStrings("__name__", "m")
	for range 2 {
		got, want := readStore(t, db, ref, 0, 59_999)
		if len(want) != 2 || !sameChunks(got, want) {
			t.Fatalf("got %s, the snapshot holds %s", fmtChunks(got), fmtChunks(want))
		}
	}
	if h := testutil.ToFloat64(db.store.cache.hits); h != 1 {
		t.Fatalf("%v hits, want 1", h)
	}
	old, err := db.Querier(0, 59_999)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for i := int64(10); i < 20; i++ {
		if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	got, want := readStore(t, db, ref, 0, 59_999)
	if len(want) != 4 || !sameChunks(got, want) {
		t.Fatalf("after a checkpoint: got %s, the snapshot holds %s", fmtChunks(got), fmtChunks(want))
	}
	// The new querier filled the cache; the old one must not take it.
	r := old.(*headQuerier).store
	u := uncached(r)
	defer closeUncached(u)
	chain := db.head.series.refs.chain(ref) // once: both reads see the same chain
	got, _ = r.chunks(nil, ref, chain, 0, 59_999)
	want, _ = u.chunks(nil, ref, chain, 0, 59_999)
	// The chain reaches the new chunks whatever the querier's age: they
	// left the head, which it reads too.
	if len(want) != 4 || !sameChunks(got, want) {
		t.Fatalf("old querier: got %s, its chain holds %s", fmtChunks(got), fmtChunks(want))
	}
}

// TestChunkCacheRetention: after retention drops a bucket, a query does
// not get its chunks from the cache, and the cache lets go of them.
func TestChunkCacheRetention(t *testing.T) {
	db := openTestDB(t, t.TempDir(), cacheTestOptions(1<<20))
	defer db.Close()
	ls := labels.FromStrings("__name__", "m")
	for i := range int64(120) { // buckets 0 and 1
		if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	ref := cachedSeriesRefs(t, db)[0]
	got, _ := readStore(t, db, ref, 0, 119_999)
	if len(got) == 0 || got[0].minT != 0 {
		t.Fatalf("before retention: %s", fmtChunks(got))
	}
	before := testutil.ToFloat64(db.store.cache.bytes)
	// Retention of 3 minutes from t=250s drops bucket 0 only.
	for i := int64(120); i <= 250; i++ {
		if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if after := testutil.ToFloat64(db.store.cache.bytes); after >= before {
		t.Fatalf("cache bytes %v after dropping a bucket, %v before", after, before)
	}
	got, want := readStore(t, db, ref, 0, 119_999)
	if !sameChunks(got, want) {
		t.Fatalf("got %s, the snapshot holds %s", fmtChunks(got), fmtChunks(want))
	}
	for _, c := range got {
		if c.minT < 60_000 {
			t.Fatalf("chunk of a dropped bucket: %s", fmtChunks(got))
		}
	}
	if len(got) == 0 {
		t.Fatal("bucket 1 lost")
	}
}

// TestChunkCacheSize: the cache stays within its size, evicts the least
// recently used entries, and reads stay whole.
func TestChunkCacheSize(t *testing.T) {
	const series = 200
	db := openTestDB(t, t.TempDir(), cacheTestOptions(cacheShards*2048))
	defer db.Close()
	for s := range series {
		ls := labels.FromStrings("__name__", "m", "i", fmt.Sprint(s))
		for i := range int64(50) {
			if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	c := db.store.cache
	for range 2 {
		for _, ref := range cachedSeriesRefs(t, db) {
			got, want := readStore(t, db, ref, 0, 59_999)
			if len(want) == 0 || !sameChunks(got, want) {
				t.Fatalf("series %d: got %s, the snapshot holds %s", ref, fmtChunks(got), fmtChunks(want))
			}
		}
	}
	var total int64
	for i := range c.shards {
		sh := &c.shards[i]
		if sh.bytes > sh.max {
			t.Fatalf("shard %d holds %d bytes of %d", i, sh.bytes, sh.max)
		}
		n, protected := shardListBytes(t, sh)
		if n != sh.bytes || protected != sh.protectedBytes || len(sh.m) == 0 {
			t.Fatalf("shard %d: %d entries of %d bytes (%d protected), accounted %d (%d)",
				i, len(sh.m), n, protected, sh.bytes, sh.protectedBytes)
		}
		if sh.protectedBytes > sh.max/100*protectedPercent {
			t.Fatalf("shard %d: %d bytes protected, more than %d%% of %d", i, sh.protectedBytes, protectedPercent, sh.max)
		}
		total += sh.bytes
	}
	if ev := testutil.ToFloat64(c.evictions); ev == 0 {
		t.Fatal("no evictions")
	}
	if b := testutil.ToFloat64(c.bytes); b != float64(total) {
		t.Fatalf("bytes gauge %v, shards hold %d", b, total)
	}
	// The most recently read series is still there.
	refs := cachedSeriesRefs(t, db)
	hits := testutil.ToFloat64(c.hits)
	readStore(t, db, refs[len(refs)-1], 0, 59_999)
	if testutil.ToFloat64(c.hits) != hits+1 {
		t.Fatal("the most recently used entry was evicted")
	}
}

// TestChunkCacheLRU: a shard evicts its least recently used entry.
func TestChunkCacheLRU(t *testing.T) {
	c := newChunkCache(cacheShards*3*(cacheEntryOverhead+100), nil)
	data := make([]byte, 100-40) // with one memChunk header: 100 bytes
	var keys []cacheKey
	sh := c.shard(cacheKey{ref: 1})
	for ref := SeriesRef(1); len(keys) < 4; ref++ {
		if k := (cacheKey{ref: ref}); c.shard(k) == sh {
			keys = append(keys, k)
		}
	}
	for _, k := range keys[:3] {
		c.put(k, 0, []memChunk{{data: data}}, len(data))
	}
	if _, ok := c.get(keys[0], 0, false); !ok { // keys[1] is now the oldest
		t.Fatal("miss")
	}
	c.put(keys[3], 0, []memChunk{{data: data}}, len(data))
	for i, want := range []bool{true, false, true, true} {
		if _, ok := c.get(keys[i], 0, false); ok != want {
			t.Errorf("key %d: cached %v, want %v", i, ok, want)
		}
	}
}

// shardListBytes sums the sizes of the entries in a shard's two lists,
// checking that each entry is in the list its flag says and in the map.
func shardListBytes(t *testing.T, sh *cacheShard) (all, protected int64) {
	t.Helper()
	entries := 0
	for _, list := range []*cacheEntry{&sh.probation, &sh.protected} {
		for e := list.next; e != list; e = e.next {
			if e.protected != (list == &sh.protected) || sh.m[e.key] != e {
				t.Fatalf("entry %v: protected %v, in the wrong list or not in the map", e.key, e.protected)
			}
			all += e.size
			if e.protected {
				protected += e.size
			}
			entries++
		}
	}
	if entries != len(sh.m) {
		t.Fatalf("%d entries in the lists, %d in the map", entries, len(sh.m))
	}
	return all, protected
}

// TestChunkCacheScanResistant: entries read again (a dashboard's series)
// survive a scan of many entries read once (a fleet-wide query) that
// would have flushed a plain LRU; a scan's own entries are evicted first.
func TestChunkCacheScanResistant(t *testing.T) {
	const entrySize = cacheEntryOverhead + 100
	c := newChunkCache(cacheShards*10*entrySize, nil)
	data := make([]byte, 100-40) // with one memChunk header: 100 bytes
	sh := c.shard(cacheKey{ref: 1})
	var keys []cacheKey
	for ref := SeriesRef(1); len(keys) < 50; ref++ {
		if k := (cacheKey{ref: ref}); c.shard(k) == sh {
			keys = append(keys, k)
		}
	}
	hot, scan := keys[:4], keys[4:]
	for _, k := range hot {
		c.put(k, 0, []memChunk{{data: data}}, len(data))
		if _, ok := c.get(k, 0, false); !ok {
			t.Fatal("miss right after put")
		}
	}
	for _, k := range scan { // 46 entries through a shard of 10
		c.put(k, 0, []memChunk{{data: data}}, len(data))
	}
	for i, k := range hot {
		if _, ok := c.get(k, 0, false); !ok {
			t.Errorf("hot entry %d evicted by a scan", i)
		}
	}
	if _, ok := c.get(scan[0], 0, false); ok {
		t.Error("the scan's oldest entry outlived the hot ones' protection")
	}
	if _, ok := c.get(scan[len(scan)-1], 0, false); !ok {
		t.Error("the scan's newest entry is not cached")
	}
	if all, protected := shardListBytes(t, sh); all != sh.bytes || protected != sh.protectedBytes || sh.bytes > sh.max {
		t.Fatalf("shard holds %d bytes (%d protected), accounted %d (%d) of %d", all, protected, sh.bytes, sh.protectedBytes, sh.max)
	}
}

// TestChunkCacheProtectedShare: protected entries never fill more than
// their share; the least recently read go back to probation.
func TestChunkCacheProtectedShare(t *testing.T) {
	const entrySize = cacheEntryOverhead + 100
	c := newChunkCache(cacheShards*10*entrySize, nil)
	data := make([]byte, 100-40)
	sh := c.shard(cacheKey{ref: 1})
	var keys []cacheKey
	for ref := SeriesRef(1); len(keys) < 10; ref++ {
		if k := (cacheKey{ref: ref}); c.shard(k) == sh {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		c.put(k, 0, []memChunk{{data: data}}, len(data))
		c.get(k, 0, false)
	}
	if sh.protectedBytes > sh.max/100*protectedPercent {
		t.Fatalf("%d bytes protected of %d", sh.protectedBytes, sh.max)
	}
	if !sh.m[keys[len(keys)-1]].protected || sh.m[keys[0]].protected {
		t.Fatal("the last read entry is not protected, or the first read still is")
	}
	shardListBytes(t, sh)
	// A new entry evicts from probation: the demoted, least recently read.
	extra := SeriesRef(1 << 40)
	for c.shard(cacheKey{ref: extra}) != sh {
		extra++
	}
	c.put(cacheKey{ref: extra}, 0, []memChunk{{data: data}}, len(data))
	if _, ok := c.get(keys[0], 0, false); ok {
		t.Fatal("the least recently read entry outlived a new one")
	}
	if _, ok := c.get(keys[len(keys)-1], 0, false); !ok {
		t.Fatal("the most recently read entry was evicted")
	}
}

// TestChunkCacheHostileSizes: a negative size is refused, 0 is no cache,
// a cache smaller than any entry holds nothing and reads stay whole, a
// huge one allocates nothing up front.
func TestChunkCacheHostileSizes(t *testing.T) {
	o := cacheTestOptions(-1)
	if err := o.Validate(); err == nil {
		t.Fatal("negative chunk cache size accepted")
	}
	if c := newChunkCache(0, nil); c != nil {
		t.Fatal("size 0 made a cache")
	}
	if c := newChunkCache(1<<62, prometheus.NewRegistry()); c == nil || c.shards[0].max != (1<<62)/cacheShards {
		t.Fatal("huge cache")
	}
	for _, size := range []int64{0, 1, cacheShards * cacheEntryOverhead} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			db, ref := checkpointedSeries(t, cacheTestOptions(size), 50)
			defer db.Close()
			for range 2 {
				got, want := readStore(t, db, ref, 0, 59_999)
				if len(want) == 0 || !sameChunks(got, want) {
					t.Fatalf("got %s, the snapshot holds %s", fmtChunks(got), fmtChunks(want))
				}
			}
			if c := db.store.cache; c != nil {
				if b := testutil.ToFloat64(c.bytes); b != 0 {
					t.Fatalf("a cache of %d bytes holds %v", size, b)
				}
			}
		})
	}
}

// TestChunkCacheConcurrent: queries read persisted chunks through the
// cache while checkpoints add chunks (in order, and out of order into
// older buckets) and retention drops buckets; every read of a bucket
// equals what the querier's badger snapshot holds. Run with -race.
// Buckets retention is dropping are not compared: badger's DropPrefix
// removes data under open snapshots too.
func TestChunkCacheConcurrent(t *testing.T) {
	opts := cacheTestOptions(64 << 10)
	opts.Retention = time.Minute // drops a bucket every 50 steps from step 149
	db := openTestDB(t, t.TempDir(), opts)
	defer db.Close()
	const series, steps = 20, 250
	lsets := make([]labels.Labels, series)
	for s := range lsets {
		lsets[s] = labels.FromStrings("__name__", "m", "i", fmt.Sprint(s))
	}
	var dropping atomic.Int64 // buckets up to this one may be dropped
	dropping.Store(-1)
	var newest atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		for i := int64(0); i < steps; i++ {
			app := db.Appender()
			for s, ls := range lsets {
				if err := app.Append(ls, i*1000, float64(i)); err != nil {
					t.Error(err)
					return
				}
				if i > 30 && s%3 == 0 { // out of order, into the last bucket at times
					if err := app.Append(ls, i*1000-25_500, float64(-i)); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if err := app.Commit(); err != nil {
				t.Error(err)
				return
			}
			newest.Store(i * 1000)
			if i%7 == 6 {
				if err := db.Checkpoint(); err != nil {
					t.Error(err)
					return
				}
			}
			if i%50 == 49 {
				cutoff := i*1000 - db.opts.Retention.Milliseconds()
				dropping.Store(db.store.bucketOf(cutoff) - 1)
				if err := db.ApplyRetention(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	var compared atomic.Int64
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				refs := cachedSeriesRefs(t, db)
				q, err := db.Querier(minInt64, maxInt64)
				if err != nil {
					t.Error(err)
					return
				}
				r := q.(*headQuerier).store
				u := uncached(r)
				last := db.store.bucketOf(newest.Load())
				for _, ref := range refs {
					for b := max(0, dropping.Load()+1); b <= last; b++ {
						mint, maxt := b*60_000, b*60_000+59_999
						chain := db.head.series.refs.chain(ref) // once: both reads see the same chain
						got, err1 := r.chunks(nil, ref, chain, mint, maxt)
						want, err2 := u.chunks(nil, ref, chain, mint, maxt)
						if err1 != nil || err2 != nil {
							t.Error(err1, err2)
							break
						}
						if b <= dropping.Load() {
							continue
						}
						if !sameChunks(got, want) {
							t.Errorf("series %d bucket %d: got %s, the snapshot holds %s", ref, b, fmtChunks(got), fmtChunks(want))
						}
						compared.Add(1)
					}
				}
				closeUncached(u)
				q.Close()
			}
		})
	}
	wg.Wait()
	c := db.store.cache
	hits, misses := testutil.ToFloat64(c.hits), testutil.ToFloat64(c.misses)
	t.Logf("%d bucket reads compared; cache hits %v, misses %v, evictions %v", compared.Load(), hits, misses, testutil.ToFloat64(c.evictions))
	if compared.Load() == 0 || hits == 0 || misses == 0 || testutil.ToFloat64(db.metrics.bucketsDropped) == 0 {
		t.Fatal("the test exercised nothing")
	}
}

// TestChunkCacheVersions: the version rules of chunk_cache.go on their
// own, for fills that race with writes.
func TestChunkCacheVersions(t *testing.T) {
	chunks := []memChunk{{data: []byte{1}}}
	k, other := cacheKey{bucket: 3, ref: 7}, cacheKey{bucket: 3, ref: 8}
	version := func(c *chunkCache) uint64 {
		v, ok := c.version(func() {})
		if !ok {
			t.Fatal("no write under way, yet not cacheable")
		}
		return v
	}
	t.Run("fill older than a chunk write", func(t *testing.T) {
		c := newChunkCache(1<<20, nil)
		v1 := version(c)
		w := c.beginWrite()
		w.chunk(3, 7)
		w.end()
		c.put(k, v1, chunks, 1) // read before the write, stored after it
		if _, ok := c.get(k, version(c), false); ok {
			t.Fatal("a reader after the write got the chunks from before it")
		}
		c.put(other, v1, chunks, 1)
		if _, ok := c.get(other, version(c), false); !ok {
			t.Fatal("a series the write did not touch missed")
		}
	})
	t.Run("fill newer than the reader", func(t *testing.T) {
		c := newChunkCache(1<<20, nil)
		v1 := version(c)
		w := c.beginWrite()
		w.chunk(3, 7)
		w.end()
		c.put(k, version(c), chunks, 1)
		if _, ok := c.get(k, v1, false); ok {
			t.Fatal("a reader before the write got chunks read after it")
		}
		if _, ok := c.get(k, version(c), false); !ok {
			t.Fatal("a reader after the write missed")
		}
	})
	t.Run("fill older than a bucket drop", func(t *testing.T) {
		c := newChunkCache(1<<20, nil)
		v1 := version(c)
		w := c.beginWrite()
		w.dropBucket(3)
		w.end()
		c.put(k, v1, chunks, 1)
		if _, ok := c.get(k, version(c), false); ok {
			t.Fatal("a reader after the drop got the dropped chunks")
		}
	})
	t.Run("snapshot during a write", func(t *testing.T) {
		c := newChunkCache(1<<20, nil)
		c.put(k, version(c), chunks, 1)
		c.put(other, version(c), chunks, 1)
		w := c.beginWrite()
		w.chunk(3, 7) // marked before queued: a snapshot may show it
		v, ok := c.version(func() {})
		if !ok {
			t.Fatal("a snapshot during a write, between no write's start or end, not cacheable")
		}
		if _, ok := c.get(k, v, false); ok {
			t.Fatal("a reader that may see the write got the chunks from before it")
		}
		if _, ok := c.get(other, v, false); !ok {
			t.Fatal("a series the write did not touch missed")
		}
		if _, ok := c.version(func() { w.end() }); ok {
			t.Fatal("a snapshot taken while a write ended is cacheable")
		}
	})
	t.Run("collapsed slots", func(t *testing.T) {
		c := newChunkCache(1<<20, nil)
		v1 := version(c)
		w := c.beginWrite()
		w.chunk(3, 7)
		w.end()
		c.put(other, version(c), chunks, 1)
		for b := int64(4); b < 4+slottedBuckets; b++ { // bucket 3 loses its slots
			w := c.beginWrite()
			w.chunk(b, 1)
			w.end()
		}
		if bw := (*c.buckets.Load())[3]; bw.slots != nil {
			t.Fatal("bucket 3 kept its slots")
		}
		c.put(k, v1, chunks, 1)
		if _, ok := c.get(k, version(c), false); ok {
			t.Fatal("a fill older than the collapsed marks served")
		}
		if _, ok := c.get(other, version(c), false); !ok {
			t.Fatal("a fill newer than every mark of the bucket missed")
		}
	})
}

// TestChunkCacheBulk: a read of more (bucket, series) pairs than half the
// cache holds at the average entry's size is bulk; while the cache is
// empty an entry is taken for bulkEntryGuess bytes.
func TestChunkCacheBulk(t *testing.T) {
	var nilCache *chunkCache
	if nilCache.bulk(1 << 30) {
		t.Fatal("no cache: nothing is bulk")
	}
	c := newChunkCache(cacheShards*64*1024, nil) // 1 MiB
	limit := int(c.max / 2 / bulkEntryGuess)
	if c.bulk(limit) || !c.bulk(limit+1) {
		t.Fatalf("empty cache: bulk from %d pairs on, not at %d", limit+1, limit)
	}
	data := make([]byte, 4096-40-cacheEntryOverhead) // entries of 4 KiB
	for ref := range SeriesRef(8) {
		c.put(cacheKey{ref: ref}, 0, []memChunk{{data: data}}, len(data))
	}
	if got := c.entries.Load(); got != 8 {
		t.Fatalf("%d entries counted, want 8", got)
	}
	limit = int(c.max / 2 / 4096)
	if c.bulk(limit) || !c.bulk(limit+1) {
		t.Fatalf("entries of 4 KiB: bulk from %d pairs on, not at %d", limit+1, limit)
	}
}

// TestBulkSelectLeavesCache: a selection too large for the chunk cache
// reads every sample but neither fills the cache nor pushes out the
// entries a small, repeated selection keeps there.
func TestBulkSelectLeavesCache(t *testing.T) {
	db := openTestDB(t, t.TempDir(), cacheTestOptions(64<<10))
	defer db.Close()
	const series = 200
	for i := range series {
		ls := labels.FromStrings("__name__", "m", "i", fmt.Sprint(i))
		for ts := range int64(10) {
			if err := dbAppend(t, db, ls, ts*1000, float64(ts)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	c := db.store.cache
	hot := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"), labels.MustNewMatcher(labels.MatchRegexp, "i", "[0-4]")}
	all := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")}
	checkAll := func(got map[string][]sample, n int) {
		t.Helper()
		if len(got) != n {
			t.Fatalf("%d series, want %d", len(got), n)
		}
		for name, ss := range got {
			if len(ss) != 10 || ss[0].t != 0 || ss[9].t != 9000 {
				t.Fatalf("%s: %d samples %v", name, len(ss), ss)
			}
		}
	}
	q, err := db.Querier(minInt64, maxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if !q.(*headQuerier).bulk(1) {
		t.Error("one series over all time is not bulk: the pair count overflowed")
	}
	q.Close()
	checkAll(dbSelect(t, db, 0, 59_999, hot...), 5)
	entries := c.entries.Load()
	if entries != 5 {
		t.Fatalf("%d entries after the small selection, want 5", entries)
	}
	hits := testutil.ToFloat64(c.hits)
	checkAll(dbSelect(t, db, 0, 59_999, hot...), 5)
	if got := testutil.ToFloat64(c.hits) - hits; got != 5 {
		t.Fatalf("%v hits on the repeated small selection, want 5", got)
	}
	for range 3 {
		checkAll(dbSelect(t, db, 0, 59_999, all...), series)
		if got := c.entries.Load(); got != entries {
			t.Fatalf("the bulk selection changed the cache: %d entries, want %d", got, entries)
		}
	}
	hits = testutil.ToFloat64(c.hits)
	checkAll(dbSelect(t, db, 0, 59_999, hot...), 5)
	if got := testutil.ToFloat64(c.hits) - hits; got != 5 {
		t.Fatalf("%v hits on the small selection after the bulk ones, want 5", got)
	}
}
