package tsdb

import (
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkChunkBoundary measures what a chunk-range boundary costs a
// head of etcd series (ETCDGATE_BENCH_SERIES, default 200,000): the first
// sample past it closes every open chunk, which the head holds until the
// next checkpoint writes them to badger. It reports the live heap per
// series before the boundary, with the closed chunks held, and the most
// the heap's objects took while the boundary was crossed and
// checkpointed (garbage not yet collected included, sampled every
// millisecond), with the time of that checkpoint. The GC runs at 30%,
// as etcdgate serve sets it for a large head: the peak is the live heap
// and what garbage the collector lets accumulate. Run it with
// -benchtime 1x: each round builds its own DB.
func BenchmarkChunkBoundary(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(30))
	n := benchSeries(b, 200_000)
	fleet := etcdFleet(n)
	o := testDBOptions()
	boundary := o.Head.ChunkRange.Milliseconds()
	var before, held, peak uint64
	var checkpointTime time.Duration
	for b.Loop() {
		b.StopTimer()
		db := openTestDB(b, b.TempDir(), o)
		for ts := boundary - 4*15000; ts < boundary; ts += 15000 {
			appendFleet(b, db, fleet, ts, func(int) float64 { return float64(ts) })
		}
		checkpoint(b, db)
		before = liveHeap()
		stop := samplePeakHeap(&peak, nil)
		b.StartTimer()
		appendFleet(b, db, fleet, boundary, func(int) float64 { return float64(boundary) }) // closes every chunk
		b.StopTimer()
		held = liveHeap()
		b.StartTimer()
		start := time.Now()
		checkpoint(b, db)
		checkpointTime = time.Since(start)
		b.StopTimer()
		stop()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(before)/float64(n), "heap-B/series-before")
	b.ReportMetric(float64(held)/float64(n), "heap-B/series-closed")
	b.ReportMetric(float64(peak)/float64(n), "peak-heap-B/series")
	b.ReportMetric(checkpointTime.Seconds(), "checkpoint-s")
}

// appendFleet appends one scrape of fleet at ts in requests of 2,000
// samples, the value of series i being value(i).
func appendFleet(b *testing.B, db *DB, fleet []labels.Labels, ts int64, value func(i int) float64) {
	for i := 0; i < len(fleet); i += 2000 {
		app := db.Appender()
		for j, ls := range fleet[i:min(i+2000, len(fleet))] {
			if err := app.Append(ls, ts, value(i+j)); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// samplePeakHeap records in *peak the most the heap's objects take, and
// in *mean (unless nil) their mean, sampled every millisecond until the
// returned function is called.
func samplePeakHeap(peak, mean *uint64) (stop func()) {
	runtime.GC()
	*peak = 0
	var sum, n uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			v := s[0].Value.Uint64()
			*peak, sum, n = max(*peak, v), sum+v, n+1
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if mean != nil {
			*mean = sum / n
		}
	}
}

// BenchmarkChunkFill measures what a head of etcd series
// (ETCDGATE_BENCH_SERIES, default 200,000) holds as its open chunks fill
// in production, where the 10M scenario's minutes never take them:
// scrapes every 15 s from a chunk-range boundary, with the values of a
// synthetic etcd fleet (nextValue), a checkpoint every 2 minutes (8
// scrapes), for ChunkSamples+8 scrapes, so that chunks close and the
// next checkpoint writes them. It reports the live heap per series
// after the first scrape, its mean and most over every fourth scrape,
// and the peak of the heap's objects (garbage included, sampled every
// millisecond) from the second scrape on. GC at 30%, as in
// BenchmarkChunkBoundary. Run it with -benchtime 1x.
func BenchmarkChunkFill(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(30))
	fleet := etcdFleet(benchSeries(b, 200_000))
	benchChunkFill(b, testDBOptions(), fleet)
}

func benchChunkFill(b *testing.B, o Options, fleet []labels.Labels) {
	n := float64(len(fleet))
	start := 10 * o.Head.ChunkRange.Milliseconds()
	var first, most, sum, peak, mostLive, sumLive uint64
	var measured int
	for b.Loop() {
		db := openTestDB(b, b.TempDir(), o)
		rng := rand.New(rand.NewPCG(1, 2))
		values := make([]float64, len(fleet))
		first, most, sum, measured, mostLive, sumLive = 0, 0, 0, 0, 0, 0
		var stop func()
		for k := 1; k <= o.Head.ChunkSamples+8; k++ {
			if k == 2 {
				stop = samplePeakHeap(&peak, nil)
			}
			appendFleet(b, db, fleet, start+int64(k-1)*15000, func(i int) float64 {
				values[i] = nextValue(rng, fleet[i], values[i])
				return values[i]
			})
			if k == 1 || k%4 == 0 {
				b.StopTimer()
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				b.StartTimer()
				if k == 1 {
					first = ms.HeapInuse
				} else {
					most, sum, measured = max(most, ms.HeapInuse), sum+ms.HeapInuse, measured+1
					mostLive, sumLive = max(mostLive, ms.HeapAlloc), sumLive+ms.HeapAlloc
				}
			}
			if k%8 == 0 {
				checkpoint(b, db)
			}
		}
		stop()
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(first)/n, "heap-B/series-first")
	b.ReportMetric(float64(sum)/float64(measured)/n, "heap-B/series-mean")
	b.ReportMetric(float64(most)/n, "heap-B/series-most")
	b.ReportMetric(float64(sumLive)/float64(measured)/n, "live-B/series-mean")
	b.ReportMetric(float64(mostLive)/n, "live-B/series-most")
	b.ReportMetric(float64(peak)/n, "peak-heap-B/series")
}

// etcdFleet returns the label sets of n series of etcd members.
func etcdFleet(n int) []labels.Labels {
	var fleet []labels.Labels
	for m := 0; len(fleet) < n; m++ {
		fleet = append(fleet, etcdLabelSets(m)...)
	}
	return fleet[:n]
}
