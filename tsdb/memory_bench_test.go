package tsdb

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

// BenchmarkHeadMemory fills a DB with etcd series, 10 samples each 15 s
// apart (ETCDGATE_BENCH_SERIES of them, default 100,000) and reports the
// Go heap in use per series after a GC: the head's share of RSS.
func BenchmarkHeadMemory(b *testing.B) {
	n := benchSeries(b, 100_000)
	fleet := etcdFleet(n)
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		o := DefaultOptions()
		o.CheckpointInterval = time.Hour
		db, err := Open(b.TempDir(), o, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for k := range 10 {
			appendFleet(b, db, fleet, int64(k)*15000, func(int) float64 { return float64(k) })
		}
		elapsed := time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(n), "heap-bytes/series")
		if path := os.Getenv("ETCDGATE_HEAP_PROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		b.ReportMetric(float64(db.head.Bytes())/float64(n), "accounted-bytes/series")
		b.ReportMetric(float64(10*n)/elapsed.Seconds(), "samples/s")
		start = time.Now()
		if err := db.Checkpoint(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "checkpoint-s")
		fleet = append(fleet[:0:0], fleet...) // keep the label sets alive through the measurement
		db.Close()
	}
}
