package evaluator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/bench"
)

// BenchmarkEtcdQueries runs the queries of bench.StandardQueries (the
// etcd SLO alerts and dashboard panels the load test times) over 1 h of
// a 100k-series fleet, as instant queries and as 1 h range queries at a
// 15 s step, with this engine and with Prometheus's. Prometheus's copy
// of the data loads only when a Prometheus sub-benchmark runs.
func BenchmarkEtcdQueries(b *testing.B) {
	const series, dur = 100_000, time.Hour
	for _, q := range bench.StandardQueries() {
		expr := strings.ReplaceAll(q.Expr, "{{cluster}}", benchEtcd.ClusterName(0))
		for _, kind := range []string{"instant", "range"} {
			b.Run(q.Name+"/"+kind+"/engine=etcdgate", func(b *testing.B) {
				getBenchFleetOf(b, series, false, dur).benchEtcd(b, expr, kind, false)
			})
			b.Run(q.Name+"/"+kind+"/engine=prometheus", func(b *testing.B) {
				getBenchFleetOf(b, series, true, dur).benchEtcd(b, expr, kind, true)
			})
		}
	}
}

// benchEtcd times expr as an instant query at the end of the data or as
// a range query over all of it at a 15 s step, and reports its CPU time
// (cpu-ns/op) besides the wall time.
func (f *benchFleet) benchEtcd(b *testing.B, expr, kind string, prom bool) {
	if prom {
		f.benchProm(b, expr, kind+"-etcd")
		return
	}
	e := NewEngine(f.head, Options{})
	ctx := context.Background()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		var err error
		if kind == "instant" {
			_, err = e.Instant(ctx, expr, f.end)
		} else {
			_, err = e.Range(ctx, expr, f.end.Add(-f.dur), f.end, 15*time.Second)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports, when the function it returns is called at the end
// of the benchmark, the process's CPU time per iteration (cpu-ns/op),
// every goroutine and the garbage collector included.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}
