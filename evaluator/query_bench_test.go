package evaluator

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/teststorage"

	"github.com/etcdgate/etcdgate/internal/etcdfleet"
	"github.com/etcdgate/etcdgate/tsdb"
)

// benchQueries are the queries etcd SLOs and dashboards run most: the
// request error ratio, p99 request latency from histograms, and leader
// changes, per cluster.
var benchQueries = []struct{ name, query string }{
	{"error_ratio", `sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m])) / sum by (cluster) (rate(grpc_server_handled_total[5m]))`},
	{"p99_latency", `histogram_quantile(0.99, sum by (cluster, le) (rate(grpc_server_handling_seconds_bucket{grpc_method="Range"}[5m])))`},
	{"leader_changes", `sum by (cluster) (increase(etcd_server_leader_changes_seen_total[15m])) > 0`},
}

// benchFleet is a synthetic etcd fleet of about series series with 30
// minutes of 15 s samples, in our head and, when withProm, in
// Prometheus's storage.
type benchFleet struct {
	head    *tsdb.Head
	prom    storage.Storage
	end     time.Time
	dur     time.Duration // of data before end
	series  int
	samples int
}

var (
	benchFleetsMu sync.Mutex
	benchFleets   = map[string]*benchFleet{}
)

const benchDuration = 30 * time.Minute

// benchEtcd generates the members' series: etcd's with --metrics=extensive,
// which adds the gRPC handling-time histograms the p99 query reads.
var benchEtcd = etcdfleet.New(etcdfleet.Options{Extensive: true})

// seriesPerMember is what a member writes.
var seriesPerMember = len(benchEtcd.LabelSets(0))

func getBenchFleet(b *testing.B, series int, withProm bool) *benchFleet {
	return getBenchFleetOf(b, series, withProm, benchDuration)
}

// getBenchFleetOf returns the fleet of about series series with dur of
// data, loading it on first use.
func getBenchFleetOf(b *testing.B, series int, withProm bool, dur time.Duration) *benchFleet {
	benchFleetsMu.Lock()
	defer benchFleetsMu.Unlock()
	key := fmt.Sprint(series, withProm, dur)
	if f := benchFleets[key]; f != nil {
		return f
	}
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFleet{head: head, end: time.Unix(1_800_000_000, 0).UTC(), dur: dur}
	if withProm {
		s, err := teststorage.NewWithError()
		if err != nil {
			b.Fatal(err)
		}
		f.prom = s
	}
	members := series / seriesPerMember
	for m := range members {
		f.member(b, m)
	}
	benchFleets[key] = f
	return f
}

func (f *benchFleet) member(b *testing.B, m int) {
	var promApp storage.Appender
	if f.prom != nil {
		promApp = f.prom.Appender(context.Background())
	}
	app := f.head.Appender()
	lsets := benchEtcd.LabelSets(m)
	// Prometheus writes up for every target it scrapes: 1, but 0 for
	// one member in 50 (the SLO alerts on members down read it).
	up := labels.NewBuilder(lsets[0]).Set(model.MetricNameLabel, "up").Labels()
	lsets = append(lsets, up)
	start := f.end.Add(-f.dur).UnixMilli()
	for si, lset := range lsets {
		for i := int64(0); i <= f.dur.Milliseconds()/15000; i++ {
			t, v := start+i*15000, float64(i*int64(si%7+1))
			if si == len(lsets)-1 {
				v = float64(min(1, m%50))
			}
			if err := app.Append(lset, t, v); err != nil {
				b.Fatal(err)
			}
			if promApp != nil {
				if _, err := promApp.Append(0, lset, t, v); err != nil {
					b.Fatal(err)
				}
			}
			f.samples++
		}
		f.series++
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	if promApp != nil {
		if err := promApp.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQuery runs the etcd SLO queries as instant queries and as
// 15-minute range queries at a 1-minute step, and dashboard range
// queries (the whole 30 minutes at a 15 s step, every window overlapping
// the next), with this engine and with
// Prometheus's over the same data. Sizes: 100k series (1M with
// -bench 'Query/series=1M'; loading it takes minutes).
func BenchmarkQuery(b *testing.B) {
	for _, size := range []struct {
		name   string
		series int
	}{{"100k", 100_000}, {"1M", 1_000_000}} {
		b.Run("series="+size.name, func(b *testing.B) {
			f := getBenchFleet(b, size.series, true)
			for _, q := range benchQueries {
				for _, kind := range []string{"instant", "range", "dashboard"} {
					b.Run(q.name+"/"+kind+"/engine=etcdgate", func(b *testing.B) { f.benchOurs(b, q.query, kind) })
					b.Run(q.name+"/"+kind+"/engine=prometheus", func(b *testing.B) { f.benchProm(b, q.query, kind) })
				}
			}
		})
	}
}

func (f *benchFleet) benchOurs(b *testing.B, query, kind string) {
	e := NewEngine(f.head, Options{})
	ctx := context.Background()
	b.ReportAllocs()
	var loaded int64
	for b.Loop() {
		var res *Result
		var err error
		switch kind {
		case "instant":
			res, err = e.Instant(ctx, query, f.end)
		case "dashboard":
			res, err = e.Range(ctx, query, f.end.Add(-benchDuration), f.end, 15*time.Second)
		default:
			res, err = e.Range(ctx, query, f.end.Add(-15*time.Minute), f.end, time.Minute)
		}
		if err != nil {
			b.Fatal(err)
		}
		loaded += res.Stats.SamplesLoaded
	}
	b.ReportMetric(float64(loaded)/b.Elapsed().Seconds(), "samples/s")
}

func (f *benchFleet) benchProm(b *testing.B, query, kind string) {
	e := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 500_000_000, Timeout: time.Hour, LookbackDelta: 5 * time.Minute,
		Parser: parser.NewParser(parser.Options{}),
	})
	ctx := context.Background()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		var q promql.Query
		var err error
		switch kind {
		case "instant", "instant-etcd":
			q, err = e.NewInstantQuery(ctx, f.prom, nil, query, f.end)
		case "range-etcd":
			q, err = e.NewRangeQuery(ctx, f.prom, nil, query, f.end.Add(-f.dur), f.end, 15*time.Second)
		case "dashboard":
			q, err = e.NewRangeQuery(ctx, f.prom, nil, query, f.end.Add(-benchDuration), f.end, 15*time.Second)
		default:
			q, err = e.NewRangeQuery(ctx, f.prom, nil, query, f.end.Add(-15*time.Minute), f.end, time.Minute)
		}
		if err != nil {
			b.Fatal(err)
		}
		if res := q.Exec(ctx); res.Err != nil {
			b.Fatal(res.Err)
		}
		q.Close()
	}
}
