package ingest

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// BenchmarkValidate measures building and validating the label sets of a
// decoded 2,000-series request of etcd series.
func BenchmarkValidate(b *testing.B) {
	req := etcdWriteRequests(2, 3, 2000, 0)[0]
	raw, _ := req.Marshal()
	var wr WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		b.Fatal(err)
	}
	lim := DefaultLimits()
	builder := labels.NewScratchBuilder(16)
	var lset labels.Labels
	b.ReportAllocs()
	for b.Loop() {
		for i := range wr.Timeseries {
			if r := buildLabels(wr.Timeseries[i].Labels, &lim, &builder, &lset); r != nil {
				b.Fatal(r)
			}
		}
	}
	n := float64(len(wr.Timeseries))
	b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "series/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/series")
}

// BenchmarkWrite measures the whole write path of one request (snappy
// decode, protobuf decode, validation, head append) for a settled fleet:
// every series already exists, each request carries 2,000 samples.
func BenchmarkWrite(b *testing.B) {
	for _, completeness := range []bool{false, true} {
		b.Run(fmt.Sprintf("completeness=%v", completeness), func(b *testing.B) {
			head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
			if err != nil {
				b.Fatal(err)
			}
			opts := Options{Limits: DefaultLimits(), Now: func() time.Time { return testNow }}
			if completeness {
				opts.Targets = NewTargets("cluster", 0)
			}
			in, err := New(head, opts)
			if err != nil {
				b.Fatal(err)
			}
			benchSteadyWrites(b, in, 10) // ~10,000 series: 6 requests a scrape
		})
	}
}

// benchSteadyWrites sends one scrape to create the series, then measures
// the following scrapes. They are encoded ahead in rounds with the timer
// stopped, and their allocations are excluded from the per-sample figure.
func benchSteadyWrites(b *testing.B, in *Ingester, clusters int) {
	start := testNow.Add(-24 * time.Hour).UnixMilli()
	scrape := func(k int) [][]byte {
		var bodies [][]byte
		for _, req := range etcdWriteRequests(clusters, 3, 2000, start+int64(k)*15000) {
			bodies = append(bodies, marshalSnappy(req))
		}
		return bodies
	}
	for _, body := range scrape(0) {
		if _, err := in.Write(body); err != nil {
			b.Fatal(err)
		}
	}
	var queue [][]byte
	k, samples := 1, 0
	var ms0, ms1, pause0, pause1 runtime.MemStats
	var setupMallocs uint64
	b.ReportAllocs()
	runtime.ReadMemStats(&ms0)
	for b.Loop() {
		if len(queue) == 0 {
			b.StopTimer()
			runtime.ReadMemStats(&pause0)
			for range 20 {
				queue = append(queue, scrape(k)...)
				k++
			}
			runtime.ReadMemStats(&pause1)
			setupMallocs += pause1.Mallocs - pause0.Mallocs
			b.StartTimer()
		}
		res, err := in.Write(queue[0])
		if err != nil || res.Err() != nil {
			b.Fatal(err, res.Err())
		}
		samples += res.Accepted
		queue = queue[1:]
	}
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples), "ns/sample")
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs-setupMallocs)/float64(samples), "allocs/sample")
}

// BenchmarkWriteNewSeries measures series creation through the whole
// write path into a DB (WAL, series records written to the store): one
// op sends a fleet of etcd members never seen before (ETCDGATE_BENCH_CLUSTERS
// clusters of 3 members, 5,490 series a cluster; default 40, ~220,000
// series) to a fresh DB. It reports series created per second.
func BenchmarkWriteNewSeries(b *testing.B) {
	clusters := 40
	if s := os.Getenv("ETCDGATE_BENCH_CLUSTERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("ETCDGATE_BENCH_CLUSTERS=%q: want a positive count", s)
		}
		clusters = n
	}
	var bodies [][]byte
	series := 0
	for _, req := range etcdWriteRequests(clusters, 3, 2000, testNow.UnixMilli()) {
		bodies = append(bodies, marshalSnappy(req))
		series += len(req.Timeseries)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		o := tsdb.DefaultOptions()
		o.CheckpointInterval = time.Hour
		db, err := tsdb.Open(b.TempDir(), o, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		in, err := New(db, Options{Limits: DefaultLimits(), Now: func() time.Time { return testNow }})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, body := range bodies {
			res, err := in.Write(body)
			if err != nil || res.Err() != nil {
				b.Fatal(err, res.Err())
			}
		}
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(series)*float64(b.N)/b.Elapsed().Seconds(), "series/s")
}
