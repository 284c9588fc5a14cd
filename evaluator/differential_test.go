package evaluator

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/teststorage"

	"github.com/etcdgate/etcdgate/tsdb"
)

// etcdFleet is generated etcd-like data loaded into both our head and
// Prometheus's own storage: counters with resets, classic histograms,
// gauges, series that start late, stop (with a staleness marker) or miss
// scrapes.
type etcdFleet struct {
	head  *tsdb.Head
	prom  storage.Storage
	start time.Time
	end   time.Time
}

const fleetStep = 15 * time.Second

func newEtcdFleet(t *testing.T, clusters int, duration time.Duration) *etcdFleet {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &etcdFleet{head: head, prom: teststorage.New(t), start: time.Unix(1_800_000_000, 0).UTC()}
	f.end = f.start.Add(duration)
	r := rand.New(rand.NewPCG(1, 2))
	ours, theirs := head.Appender(), f.prom.Appender(context.Background())
	add := func(lset labels.Labels, t int64, v float64) {
		if err := ours.Append(lset, t, v); err != nil {
			panic(err)
		}
		if _, err := theirs.Append(0, lset, t, v); err != nil {
			panic(err)
		}
	}
	for c := range clusters {
		for m := range 3 {
			f.member(r, add, fmt.Sprintf("c%02d", c), fmt.Sprintf("m%d", m), []string{"small", "medium", "large"}[c%3])
		}
	}
	if err := ours.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := theirs.Commit(); err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	grpcMethods = []string{"Range", "Put", "Txn", "DeleteRange", "LeaseGrant"}
	grpcCodes   = []string{"OK", "Unavailable", "DeadlineExceeded", "Canceled"}
	fsyncLE     = []string{"0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "+Inf"}
)

// member writes one etcd member's series over the fleet's duration.
func (f *etcdFleet) member(r *rand.Rand, add func(labels.Labels, int64, float64), cluster, instance, size string) {
	base := []string{"cluster", cluster, "instance", instance, "job", "etcd", "size", size}
	lset := func(name string, extra ...string) labels.Labels {
		return labels.FromStrings(append(append([]string{"__name__", name}, base...), extra...)...)
	}
	type counter struct {
		lset  labels.Labels
		value float64
		rate  float64
	}
	var counters []*counter
	for _, method := range grpcMethods {
		for _, code := range grpcCodes {
			rate := 50 * r.Float64()
			if code != "OK" {
				rate = r.Float64() * r.Float64()
			}
			counters = append(counters, &counter{lset: lset("grpc_server_handled_total", "grpc_method", method, "grpc_code", code), rate: rate})
		}
	}
	buckets := make([]*counter, len(fsyncLE))
	for i, le := range fsyncLE {
		buckets[i] = &counter{lset: lset("etcd_disk_wal_fsync_duration_seconds_bucket", "le", le)}
	}
	leader, dbSize := lset("etcd_server_has_leader"), lset("etcd_mvcc_db_total_size_in_bytes")
	changes := lset("etcd_server_leader_changes_seen_total")
	resetAt := r.IntN(200)      // restart: counters start over
	stopAt := 150 + r.IntN(400) // one series stops with a staleness marker
	var leaderChanges float64
	for i, t := 0, f.start; !t.After(f.end); i, t = i+1, t.Add(fleetStep) {
		ms := t.UnixMilli()
		if r.IntN(50) == 0 {
			continue // a missed scrape
		}
		for _, c := range counters {
			if i == resetAt {
				c.value = 0
			}
			c.value += c.rate * 15 * (0.5 + r.Float64())
			add(c.lset, ms, math.Round(c.value))
		}
		var cum float64
		for _, b := range buckets {
			cum += float64(r.IntN(20))
			b.value += cum
			add(b.lset, ms, b.value)
		}
		hasLeader := 1.0
		if r.IntN(40) == 0 {
			hasLeader, leaderChanges = 0, leaderChanges+1
		}
		add(leader, ms, hasLeader)
		add(changes, ms, leaderChanges)
		switch {
		case i < stopAt:
			add(dbSize, ms, float64(1<<20+i*4096+r.IntN(1000)))
		case i == stopAt:
			add(dbSize, ms, math.Float64frombits(staleNaNBits))
		}
	}
}

// diffQueries are the queries etcd SLOs, dashboards and alerts run.
var diffQueries = []string{
	`etcd_server_has_leader`,
	`etcd_server_has_leader{cluster="c01"} offset 5m`,
	`sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))`,
	`sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK",grpc_method=~"Range|Txn|Put|DeleteRange|LeaseGrant"}[5m])) / sum by (cluster) (rate(grpc_server_handled_total[5m]))`,
	// Folded together (fold_shared.go).
	`100 * sum without (grpc_method, grpc_code) (rate(grpc_server_handled_total{job="etcd",grpc_code=~"Unavailable|DeadlineExceeded"}[5m])) / sum without (grpc_method, grpc_code) (rate(grpc_server_handled_total{job="etcd"}[5m])) > 1`,
	`count by (cluster) (increase(grpc_server_handled_total{grpc_code!~"OK|Canceled"}[10m] offset 5m)) + avg by (cluster) (increase(grpc_server_handled_total[10m] offset 5m)) - count by (cluster) (increase(grpc_server_handled_total{grpc_method="Put"}[10m] offset 5m))`,
	`max by (instance) (max_over_time(grpc_server_handled_total{grpc_code="OK"}[30m])) / max by (instance) (max_over_time(grpc_server_handled_total{grpc_code="OK",grpc_method="Txn"}[30m]))`,
	`histogram_quantile(0.99, sum by (cluster, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))`,
	`histogram_quantile(0.5, rate(etcd_disk_wal_fsync_duration_seconds_bucket[10m]))`,
	`histogram_fraction(0, 0.01, sum by (le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))`,
	`increase(etcd_server_leader_changes_seen_total[15m]) > 2`,
	`changes(etcd_server_has_leader[30m])`,
	`resets(grpc_server_handled_total{grpc_code="OK"}[1h])`,
	`max_over_time(etcd_mvcc_db_total_size_in_bytes[10m]) / 1024`,
	`predict_linear(etcd_mvcc_db_total_size_in_bytes[30m], 3600)`,
	`deriv(etcd_mvcc_db_total_size_in_bytes[10m])`,
	`topk(3, sum by (cluster, instance) (irate(grpc_server_handled_total[2m])))`,
	`bottomk(2, avg by (cluster) (etcd_mvcc_db_total_size_in_bytes))`,
	`quantile by (size) (0.9, rate(grpc_server_handled_total{grpc_code="OK"}[5m]))`,
	`count by (size) (etcd_server_has_leader == 0)`,
	`count_values("leader", etcd_server_has_leader)`,
	`absent(etcd_server_has_leader{cluster="c99"})`,
	`absent_over_time(etcd_mvcc_db_total_size_in_bytes{instance="m0"}[5m])`,
	`sum without (instance) (rate(grpc_server_handled_total[5m])) and on (cluster) (etcd_server_has_leader == 1)`,
	`rate(grpc_server_handled_total{grpc_method="Put"}[5m]) * on (cluster, instance) group_left (size) etcd_server_has_leader`,
	`etcd_server_has_leader unless on (cluster) (sum by (cluster) (etcd_server_has_leader) < 3)`,
	`max_over_time(sum by (cluster) (rate(grpc_server_handled_total[1m]))[10m:1m])`,
	`avg_over_time(etcd_server_has_leader[1h:5m] offset 10m)`,
	`stddev by (cluster) (etcd_mvcc_db_total_size_in_bytes)`,
	`label_replace(etcd_server_has_leader, "member", "$1", "instance", "m(.*)")`,
	`clamp_max(rate(grpc_server_handled_total{grpc_code="OK"}[5m]), 20)`,
	`timestamp(etcd_mvcc_db_total_size_in_bytes)`,
	`scalar(sum(etcd_server_has_leader)) - count(etcd_server_has_leader)`,
	`delta(etcd_mvcc_db_total_size_in_bytes[20m])`,
	`quantile_over_time(0.95, etcd_mvcc_db_total_size_in_bytes[15m])`,
	`last_over_time(etcd_mvcc_db_total_size_in_bytes[30m])`,
	`sum(rate(grpc_server_handled_total[5m] @ end()))`,
	`1 - (sum by (cluster) (rate(grpc_server_handled_total{grpc_code=~"Unavailable|DeadlineExceeded"}[30m])) / sum by (cluster) (rate(grpc_server_handled_total[30m]))) > bool 0.999`,
}

// TestDifferentialAgainstPrometheus evaluates queries over the same
// etcd-like data with this engine and with Prometheus's, and requires the
// same answers.
func TestDifferentialAgainstPrometheus(t *testing.T) {
	// Every selector runs on several workers, in small batches, so that
	// the race detector sees the parallel path.
	defer func(n, b int) { minParallelSeries, seriesBatch = n, b }(minParallelSeries, seriesBatch)
	minParallelSeries, seriesBatch = 4, 3
	f := newEtcdFleet(t, 6, 3*time.Hour)
	queries := append(append([]string(nil), diffQueries...), randomQueries(rand.New(rand.NewPCG(7, 9)), 300)...)
	ours := NewEngine(f.head, Options{})
	theirs := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		EnableAtModifier: true, EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		Parser:                   parser.NewParser(parser.Options{}),
	})
	ctx := context.Background()
	mismatches, nonEmpty, failed := 0, 0, 0
	for _, q := range queries {
		for _, at := range []time.Duration{time.Hour, 2*time.Hour + 7*time.Second, 3 * time.Hour} {
			ts := f.start.Add(at)
			got, gotErr := ours.Instant(ctx, q, ts)
			if d := compareResults(got, gotErr, execPrometheus(theirs.NewInstantQuery(ctx, f.prom, nil, q, ts))); d != "" {
				mismatches++
				t.Errorf("instant %q at +%v: %s", q, at, d)
			}
		}
		start, end := f.start.Add(30*time.Minute), f.end.Add(-10*time.Minute)
		got, gotErr := ours.Range(ctx, q, start, end, 90*time.Second)
		switch {
		case gotErr != nil:
			failed++
		case len(got.Value.(Matrix)) > 0:
			nonEmpty++
		}
		if d := compareResults(got, gotErr, execPrometheus(theirs.NewRangeQuery(ctx, f.prom, nil, q, start, end, 90*time.Second))); d != "" {
			mismatches++
			t.Errorf("range %q: %s", q, d)
		}
		if mismatches > 20 {
			t.Fatal("too many mismatches")
		}
	}
	t.Logf("%d queries agree with Prometheus (instant at 3 times and as a range query); %d range results non-empty, %d errors",
		len(queries), nonEmpty, failed)
	if nonEmpty < len(queries)*2/3 {
		t.Fatalf("only %d of %d queries return data: the comparison proves little", nonEmpty, len(queries))
	}
}

// execPrometheus runs a query of Prometheus's engine; a query it cannot
// even create is a result with an error.
func execPrometheus(q promql.Query, err error) *promql.Result {
	if err != nil {
		return &promql.Result{Err: err}
	}
	defer q.Close()
	return q.Exec(context.Background())
}

// compareResults returns "" when both engines agree.
func compareResults(got *Result, gotErr error, want *promql.Result) string {
	if want.Err != nil || gotErr != nil {
		if want.Err != nil && gotErr != nil {
			return ""
		}
		return fmt.Sprintf("errors differ: ours %v, prometheus %v", gotErr, want.Err)
	}
	a, b := canonical(toPromValue(got.Value)), canonical(want.Value)
	if len(a) != len(b) {
		return fmt.Sprintf("%d series, prometheus %d:\nours %v\nprom %v", len(a), len(b), keys(a), keys(b))
	}
	for k, pa := range a {
		pb, ok := b[k]
		if !ok {
			return fmt.Sprintf("series %s not in prometheus's result", k)
		}
		if len(pa) != len(pb) {
			return fmt.Sprintf("series %s: %d points, prometheus %d", k, len(pa), len(pb))
		}
		for i := range pa {
			if pa[i].T != pb[i].T || !almostEqual(pa[i].F, pb[i].F, 1e-9) && !(math.IsNaN(pa[i].F) && math.IsNaN(pb[i].F)) {
				return fmt.Sprintf("series %s point %d: %v, prometheus %v", k, i, pa[i], pb[i])
			}
		}
	}
	return ""
}

func keys(m map[string][]promql.FPoint) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func canonical(v parser.Value) map[string][]promql.FPoint {
	out := map[string][]promql.FPoint{}
	switch v := v.(type) {
	case promql.Vector:
		for _, s := range v {
			out[s.Metric.String()] = []promql.FPoint{{T: s.T, F: s.F}}
		}
	case promql.Matrix:
		for _, s := range v {
			out[s.Metric.String()] = s.Floats
		}
	case promql.Scalar:
		out["scalar"] = []promql.FPoint{{T: v.T, F: v.V}}
	case promql.String:
		out["string:"+v.V] = []promql.FPoint{{T: v.T}}
	}
	return out
}

// randomQueries composes queries from the parts etcd queries are made of.
func randomQueries(r *rand.Rand, n int) []string {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	selector := func() string {
		return pick(
			`grpc_server_handled_total`,
			`grpc_server_handled_total{grpc_code!="OK"}`,
			`grpc_server_handled_total{grpc_method=~"Put|Txn",cluster!="c00"}`,
			`etcd_disk_wal_fsync_duration_seconds_bucket{le="0.008"}`,
			`etcd_server_leader_changes_seen_total`,
		)
	}
	gauge := func() string {
		return pick(`etcd_server_has_leader`, `etcd_mvcc_db_total_size_in_bytes`, `etcd_mvcc_db_total_size_in_bytes offset 7m`)
	}
	window := func() string { return pick("1m", "2m", "5m", "13m", "1h") }
	by := func() string {
		return pick("by (cluster)", "by (cluster, instance)", "without (instance)", "by (size)", "")
	}
	vector := func() string {
		switch r.IntN(6) {
		case 0:
			return pick("rate", "increase", "irate", "resets", "changes") + "(" + selector() + "[" + window() + "])"
		case 1:
			return pick("avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "stddev_over_time", "last_over_time", "delta", "idelta", "deriv") + "(" + gauge() + "[" + window() + "])"
		case 2:
			return pick("sum", "avg", "max", "min", "count", "group", "stdvar") + " " + by() + " (rate(" + selector() + "[" + window() + "]))"
		case 3:
			return gauge()
		case 4:
			return pick("abs", "sqrt", "ln", "ceil", "floor", "round", "exp") + "(" + gauge() + ")"
		}
		return pick("sum", "max") + " " + by() + " (" + gauge() + ")"
	}
	var qs []string
	for range n {
		var q string
		switch r.IntN(4) {
		case 0:
			q = vector()
		case 1:
			q = vector() + " " + pick("+", "-", "*", "/", ">", "<", "==", "!= bool", ">= bool") + " " + pick("0.5", "100", "1")
		case 2:
			q = pick("sum", "max", "min", "avg") + " " + pick("by (cluster)", "") + " (" + vector() + ") " + pick("/", "+", "and", "or", "unless", "> bool") + " on() group_left " + pick("sum", "max") + " (" + vector() + ")"
		default:
			q = pick("sum", "max") + " by (cluster) (" + vector() + ") " + pick("/", "-", "or", "and") + " " + pick("sum", "min") + " by (cluster) (" + vector() + ")"
		}
		qs = append(qs, strings.ReplaceAll(q, "  ", " "))
	}
	return qs
}
