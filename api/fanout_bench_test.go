package api

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/internal/etcdfleet"
	"github.com/etcdgate/etcdgate/tsdb"
)

// fanoutBenchQueries are etcd SLO queries (as evaluator's BenchmarkQuery).
var fanoutBenchQueries = []struct{ name, query string }{
	{"error_ratio", `sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m])) / sum by (cluster) (rate(grpc_server_handled_total[5m]))`},
	{"p99_latency", `histogram_quantile(0.99, sum by (cluster, le) (rate(grpc_server_handling_seconds_bucket{grpc_method="Range"}[5m])))`},
	{"wal_fsync_p99", `histogram_quantile(0.99, sum by (cluster, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))`},
	{"leader_changes", `sum by (cluster) (increase(etcd_server_leader_changes_seen_total[15m])) > 0`},
}

// BenchmarkFanoutQuery runs the etcd SLO queries over the same data on
// one node (its store) and through node 0 of three nodes with RF 3
// (every node holds every series: the fan-out reads three copies and
// merges them), and the same with aggregations pushed down to the
// nodes (each evaluates a third of the series), all in this process: the
// nodes share this machine's cores, so the pushdown's figure is its
// total work, not the latency of nodes working side by side. It reports the compressed bytes
// node 0 received from its peers per query. 100k series with 30 minutes
// of 15 s samples (loading takes ~30 s); ETCDGATE_BENCH_SERIES sets
// another count (1000000: loading takes minutes and ~8 GiB).
func BenchmarkFanoutQuery(b *testing.B) {
	series := 100_000
	if v := os.Getenv("ETCDGATE_BENCH_SERIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("ETCDGATE_BENCH_SERIES=%q: want a positive count", v)
		}
		series = n
	}
	fleet := etcdfleet.New(etcdfleet.Options{Extensive: true})
	nodes := newFanoutRing(b, 3, 3)
	end := testNow
	n := 0
	for m := 0; n < series; m++ {
		lsets := fleet.LabelSets(m)
		for _, fn := range nodes {
			app := fn.head.Appender()
			for si, lset := range lsets {
				for i := int64(0); i <= 120; i++ {
					t := end.Add(-30*time.Minute).UnixMilli() + i*15000
					if err := app.Append(lset, t, float64(i*int64(si%7+1))); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		n += len(lsets)
	}
	engines := []struct {
		name  string
		store tsdb.Queryable
	}{{"nodes=1", nodes[0].head}, {"nodes=3-rf=3", nodes[0].reads},
		{"nodes=3-rf=3-pushdown", PushdownStore(nodes[0].reads, evaluator.DefaultMaxSeries)}}
	for _, q := range fanoutBenchQueries {
		for _, kind := range []string{"instant", "range"} {
			for _, e := range engines {
				b.Run(fmt.Sprintf("%s/%s/%s", q.name, kind, e.name), func(b *testing.B) {
					eng := evaluator.NewEngine(e.store, evaluator.Options{})
					ctx := context.Background()
					before := nodes[0].reads.ReceivedBytes()
					var loaded int64
					b.ReportAllocs()
					for b.Loop() {
						var res *evaluator.Result
						var err error
						if kind == "instant" {
							res, err = eng.Instant(ctx, q.query, end)
						} else {
							res, err = eng.Range(ctx, q.query, end.Add(-15*time.Minute), end, time.Minute)
						}
						if err != nil {
							b.Fatal(err)
						}
						loaded = res.Stats.SeriesLoaded
					}
					b.ReportMetric(float64(nodes[0].reads.ReceivedBytes()-before)/float64(b.N), "wire-bytes/op")
					b.ReportMetric(float64(loaded), "series/op")
				})
			}
		}
	}
}
