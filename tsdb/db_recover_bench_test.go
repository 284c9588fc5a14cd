package tsdb

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkDBOpen measures a restart: Open of a store of etcd-like
// series (12 labels) checkpointed with their open chunks, then closed
// cleanly; series/s of recovery. ETCDGATE_BENCH_SERIES sets the count
// (default 200,000). It reports the live heap (HeapInuse after a GC) per
// series before the close and after the open: a restart should not come
// back fatter than it went down.
func BenchmarkDBOpen(b *testing.B) {
	series := benchSeries(b, 200_000)
	dir := b.TempDir()
	o := testDBOptions()
	db := openTestDB(b, dir, o)
	app := db.Appender()
	for s := range series {
		ls := labels.FromStrings("__name__", "etcd_server_proposals_committed_total", "cluster", fmt.Sprintf("etcd-%d", s/1830),
			"instance", fmt.Sprintf("10.0.%d.%d:2379", s/1830%256, s%3), "job", "etcd", "product", "payments", "scenario", "business",
			"size", "large", "region", "eu-west", "grpc_method", fmt.Sprint("m", s%61), "grpc_service", "etcdserverpb.KV",
			"le", strconv.Itoa(s%17), "series", strconv.Itoa(s))
		for i := int64(0); i < 4; i++ {
			if err := app.Append(ls, i*15000, float64(i)); err != nil {
				b.Fatal(err)
			}
		}
		if s%5000 == 4999 {
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
	before := liveHeap()
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	var after uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		db := openTestDB(b, dir, o)
		if got := db.head.NumIndexedSeries(); got != int64(series) {
			b.Fatalf("%d series after the restart, want %d", got, series)
		}
		b.StopTimer()
		after = liveHeap()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(series)*float64(b.N)/b.Elapsed().Seconds(), "series/s")
	b.ReportMetric(float64(before)/float64(series), "heap-B/series-before")
	b.ReportMetric(float64(after)/float64(series), "heap-B/series-after")
}

// liveHeap returns the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
