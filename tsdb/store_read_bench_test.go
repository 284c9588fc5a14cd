package tsdb

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

const (
	persistedBenchSeries  = 20_000
	persistedBenchSamples = 480
	persistedBenchStep    = 15_000
)

// openPersistedBenchDB returns a DB holding 20,000 series of two hours
// at 15 s, checkpointed to the store: every closed chunk is read from
// badger.
func openPersistedBenchDB(b *testing.B, opts Options) *DB {
	db := openTestDB(b, b.TempDir(), opts)
	app := db.Appender()
	for s := range persistedBenchSeries {
		ls := labels.FromStrings("__name__", "m", "i", fmt.Sprint(s))
		for i := int64(0); i < persistedBenchSamples; i++ {
			if err := app.Append(ls, i*persistedBenchStep, float64(i)); err != nil {
				b.Fatal(err)
			}
		}
		if s%1000 == 999 {
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			app = db.Appender()
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil {
		b.Fatal(err)
	}
	return db
}

// readPersisted selects every series of the bench DB over [mint, maxt]
// and reads their samples on workers goroutines, as the query engine
// reads series on all cores. It returns the samples read.
func readPersisted(b *testing.B, db *DB, mint, maxt int64, workers int) int64 {
	q, err := db.Querier(mint, maxt)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	var all []Series
	set := q.SelectUnsorted(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	for set.Next() {
		all = append(all, set.At())
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	for w := range workers {
		wg.Go(func() {
			var it Iterator
			n := int64(0)
			for i := w; i < len(all); i += workers {
				it = all[i].Iterator(it)
				for it.Next() {
					n++
				}
				if it.Err() != nil {
					b.Error(it.Err())
				}
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start, garbage collection
// included: on a machine shared with other work, wall time per op
// varies with their load, CPU time much less.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPersistedSelect reads persisted chunks of 20,000 series (two
// hours at 15 s, checkpointed to the store) with 1 and 4 workers per
// querier: samples/s of the whole read. With the chunk cache off every
// read goes to badger; with it on (the default size) the reads after the
// first are served from the cache, as for a dashboard that re-runs its
// queries.
func BenchmarkPersistedSelect(b *testing.B) {
	for _, cache := range []string{"off", "on"} {
		db := openPersistedBenchDB(b, persistedBenchOptions(cache))
		for _, workers := range []int{1, 4} {
			b.Run(fmt.Sprintf("cache=%s/workers=%d", cache, workers), func(b *testing.B) {
				b.ReportAllocs()
				cpu := cpuTime(b)
				for b.Loop() {
					if n := readPersisted(b, db, 0, persistedBenchSamples*persistedBenchStep, workers); n != persistedBenchSeries*persistedBenchSamples {
						b.Fatalf("%d samples", n)
					}
				}
				reportCPU(b, cpu)
				b.ReportMetric(float64(persistedBenchSeries*persistedBenchSamples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			})
		}
		db.Close()
	}
}

// BenchmarkPersistedSelectRefresh is a dashboard refresh: the same query
// of the last hour, run twice in a row (two panels, or two refreshes),
// each with a querier of its own, on 2 workers. ns/op is per pair.
func BenchmarkPersistedSelectRefresh(b *testing.B) {
	for _, cache := range []string{"off", "on"} {
		db := openPersistedBenchDB(b, persistedBenchOptions(cache))
		maxt := int64(persistedBenchSamples-1) * persistedBenchStep
		mint := maxt - 3600_000
		b.Run("cache="+cache, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				for range 2 {
					if n := readPersisted(b, db, mint, maxt, 2); n != persistedBenchSeries*241 {
						b.Fatalf("%d samples", n)
					}
				}
			}
			reportCPU(b, cpu)
		})
		db.Close()
	}
}

// BenchmarkStoreChunks is storeReader.chunks alone, without decoding:
// the persisted chunks of the 20,000 series over their two hours (one
// bucket), in ref order, one querier per op, on one goroutine. With the
// cache on, every read after the first op is a hit.
func BenchmarkStoreChunks(b *testing.B) {
	for _, bc := range []struct{ cache, segment string }{{"off", "written"}, {"on", "written"}, {"off", "sealed"}} {
		cache := bc.cache
		db := openPersistedBenchDB(b, persistedBenchOptions(cache))
		if bc.segment == "sealed" {
			// After a restart every segment is sealed and read through
			// its mapping.
			dir := db.dir
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
			db = openTestDB(b, dir, persistedBenchOptions(cache))
		}
		var refs []SeriesRef
		q, err := db.Querier(minInt64, maxInt64)
		if err != nil {
			b.Fatal(err)
		}
		set := q.SelectUnsorted(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
		for set.Next() {
			refs = append(refs, set.At().(*headSeries).s.ref)
		}
		q.Close()
		slices.Sort(refs)
		b.Run("cache="+cache+"/segment="+bc.segment, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				q, err := db.Querier(0, persistedBenchSamples*persistedBenchStep-1)
				if err != nil {
					b.Fatal(err)
				}
				r := q.(*headQuerier).store
				n := 0
				for _, ref := range refs {
					cs, err := r.chunks(nil, ref, db.head.series.refs.chain(ref), 0, persistedBenchSamples*persistedBenchStep-1)
					if err != nil {
						b.Fatal(err)
					}
					n += len(cs)
				}
				if n < 3*persistedBenchSeries {
					b.Fatalf("%d chunks", n)
				}
				q.Close()
			}
			reportCPU(b, cpu)
		})
		db.Close()
	}
}

// persistedBenchOptions are the benchmarks' options with the chunk cache
// "off" or "on" (at its default size).
func persistedBenchOptions(cache string) Options {
	opts := testDBOptions()
	opts.ChunkCacheBytes = 0
	if cache == "on" {
		opts.ChunkCacheBytes = DefaultOptions().ChunkCacheBytes
	}
	return opts
}
