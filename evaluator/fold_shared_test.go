package evaluator

import (
	"context"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/promql"
)

// TestFoldPlans: aggregations of one shape whose selectors differ only by
// filters one of them lacks are planned together, that one first; any
// other difference keeps them apart.
func TestFoldPlans(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  [][]string // each plan's members' selectors, widest first
	}{
		{`sum(rate(x{code=~"5.."}[5m])) / sum(rate(x[5m]))`, [][]string{{`x`, `x{code=~"5.."}`}}},
		{`sum(rate(x{a="1",b="2"}[5m])) / sum(rate(x{a="1"}[5m])) + sum(rate(x{a="1",c!="3"}[5m]))`,
			[][]string{{`x{a="1"}`, `x{a="1",b="2"}`, `x{a="1",c!="3"}`}}},
		{`sum(rate(x[5m])) / sum(rate(x[5m]))`, [][]string{{`x`, `x`}}},
		{`sum by (a) (rate(x{b="1"}[5m])) / sum by (a) (rate(x[5m])) > sum(rate(y{b="1"}[5m])) / sum(rate(y[5m]))`,
			[][]string{{`x`, `x{b="1"}`}, {`y`, `y{b="1"}`}}},
		// Not together: other filters on both sides, another window,
		// function, aggregation, grouping, offset, metric name.
		{`sum(rate(x{a="1"}[5m])) / sum(rate(x{b="1"}[5m]))`, nil},
		{`sum(rate(x{a="1"}[5m])) / sum(rate(x[10m]))`, nil},
		{`sum(rate(x{a="1"}[5m])) / sum(increase(x[5m]))`, nil},
		{`sum(rate(x{a="1"}[5m])) / max(rate(x[5m]))`, nil},
		{`sum by (a) (rate(x{a="1"}[5m])) / sum(rate(x[5m]))`, nil},
		{`sum(rate(x{a="1"}[5m] offset 1m)) / sum(rate(x[5m]))`, nil},
		{`sum(rate(x{a="1"}[5m])) / sum(rate(y[5m]))`, nil},
		{`sum(rate({__name__=~"x|y",a="1"}[5m])) / sum(rate({__name__=~"x|y"}[5m]))`, nil},
		{`sum(rate(x{a="1"}[5m])) / count(x)`, nil},
		// At most maxFoldMembers of one shape, the first met.
		{`sum(rate(x{a="1"}[5m])) + sum(rate(x{a="2"}[5m])) + sum(rate(x{a="3"}[5m])) + sum(rate(x{a="4"}[5m])) + sum(rate(x{a="5"}[5m])) + sum(rate(x{a="6"}[5m])) + sum(rate(x{a="7"}[5m])) + sum(rate(x{a="8"}[5m])) + sum(rate(x[5m]))`, nil},
		{`sum(rate(x[5m])) + sum(rate(x{a="2"}[5m])) + sum(rate(x{a="3"}[5m])) + sum(rate(x{a="4"}[5m])) + sum(rate(x{a="5"}[5m])) + sum(rate(x{a="6"}[5m])) + sum(rate(x{a="7"}[5m])) + sum(rate(x{a="8"}[5m])) + sum(rate(x{a="9"}[5m]))`,
			[][]string{{`x`, `x{a="2"}`, `x{a="3"}`, `x{a="4"}`, `x{a="5"}`, `x{a="6"}`, `x{a="7"}`, `x{a="8"}`}}},
		// Inside a subquery: evaluated at the subquery's steps, left out.
		{`max_over_time((sum(rate(x{a="1"}[5m])) / sum(rate(x[5m])))[30m:1m])`, nil},
		// An invalid regex: left to the evaluation to report.
		{`sum(rate(x{a=~"("}[5m])) / sum(rate(x[5m]))`, nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			expr, err := Parse(tc.query)
			if err != nil {
				if strings.Contains(tc.query, `"("`) {
					return // refused by the parser already
				}
				t.Fatal(err)
			}
			plans := foldPlans(expr)
			var got [][]string
			seen := map[*foldPlan]bool{}
			for _, m := range orderedMembers(expr) {
				p := plans[m]
				if p == nil || seen[p] {
					continue
				}
				seen[p] = true
				var sels []string
				for _, member := range p.members {
					sel := member.Args[0].(interface{ AppendString([]byte) []byte })
					s := string(sel.AppendString(nil))
					s = s[strings.Index(s, "(")+1 : strings.LastIndex(s, "[")]
					sels = append(sels, s)
				}
				got = append(got, sels)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("plans %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFoldSharedReadsOnce: an error ratio reads the widest selection
// once, agrees with the same query whose selectors cannot be folded, and
// counts its samples as Prometheus does (once per selector).
func TestFoldSharedReadsOnce(t *testing.T) {
	defer func(n, b int) { minParallelSeries, seriesBatch = n, b }(minParallelSeries, seriesBatch)
	minParallelSeries, seriesBatch = 4, 3 // several workers, each with partials of every member
	f := newEtcdFleet(t, 3, time.Hour)
	e := NewEngine(f.head, Options{})
	theirs := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	ctx := context.Background()
	start, end := f.start.Add(10*time.Minute), f.end
	// 3 clusters × 3 members × 5 methods × 4 codes.
	const all, errors = 180, 90
	for _, tc := range []struct{ shared, unshared string }{
		{`sum by (cluster) (rate(grpc_server_handled_total{job="etcd",grpc_code=~"Unavailable|DeadlineExceeded"}[5m])) / sum by (cluster) (rate(grpc_server_handled_total{job="etcd"}[5m]))`,
			`sum by (cluster) (rate(grpc_server_handled_total{job="etcd",grpc_code=~"Unavailable|DeadlineExceeded"}[5m])) / sum by (cluster) (rate(grpc_server_handled_total{job="etcd",instance!=""}[5m]))`},
		{`sum by (cluster) (rate(grpc_server_handled_total{job="etcd"}[5m])) - sum by (cluster) (rate(grpc_server_handled_total{job="etcd",grpc_code!~"OK|Canceled"}[5m]))`,
			`sum by (cluster) (rate(grpc_server_handled_total{job="etcd",instance!=""}[5m])) - sum by (cluster) (rate(grpc_server_handled_total{job="etcd",grpc_code!~"OK|Canceled"}[5m]))`},
	} {
		t.Run(tc.shared, func(t *testing.T) {
			opts := QueryOpts{PerStepStats: true}
			got, err := e.RangeWith(ctx, tc.shared, start, end, time.Minute, opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := e.RangeWith(ctx, tc.unshared, start, end, time.Minute, opts)
			if err != nil {
				t.Fatal(err)
			}
			if d := compareResults(got, nil, &promql.Result{Value: toPromValue(want.Value)}); d != "" {
				t.Fatalf("folded and separate evaluations differ: %s", d)
			}
			if d := compareResults(got, nil, execPrometheus(theirs.NewRangeQuery(ctx, f.prom, nil, tc.shared, start, end, time.Minute))); d != "" {
				t.Fatalf("differs from Prometheus: %s", d)
			}
			if len(got.Value.(Matrix)) != 3 {
				t.Fatalf("%d series, want one per cluster", len(got.Value.(Matrix)))
			}
			if got.Stats.SeriesLoaded != all || want.Stats.SeriesLoaded != all+errors {
				t.Errorf("series read folded %d, separately %d; want %d and %d",
					got.Stats.SeriesLoaded, want.Stats.SeriesLoaded, all, all+errors)
			}
			if got.Stats.QueryableSamples != want.Stats.QueryableSamples || got.Stats.SamplesRead != want.Stats.SamplesRead ||
				!reflect.DeepEqual(got.Stats.PerStep, want.Stats.PerStep) || !reflect.DeepEqual(got.Stats.ReadPerStep, want.Stats.ReadPerStep) {
				t.Errorf("samples folded %d (read %d), separately %d (read %d): a folded selector must count as its own",
					got.Stats.QueryableSamples, got.Stats.SamplesRead, want.Stats.QueryableSamples, want.Stats.SamplesRead)
			}
			// Instant: the same at the last step.
			gi, err := e.Instant(ctx, tc.shared, end)
			if err != nil {
				t.Fatal(err)
			}
			if d := compareResults(gi, nil, execPrometheus(theirs.NewInstantQuery(ctx, f.prom, nil, tc.shared, end))); d != "" {
				t.Fatalf("instant differs from Prometheus: %s", d)
			}
		})
	}
}

// orderedMembers returns expr's aggregations in the order they are met.
func orderedMembers(expr metricsql.Expr) []*metricsql.AggrFuncExpr {
	var out []*metricsql.AggrFuncExpr
	metricsql.VisitAll(expr, func(e metricsql.Expr) {
		if a, ok := e.(*metricsql.AggrFuncExpr); ok {
			out = append(out, a)
		}
	})
	return out
}

// TestFusedGroupsSharedByWorkers: the workers of a fused aggregation fold
// into one table of groups, so the points it holds at its peak do not grow
// with the workers; a folded pair holds two tables, not two per worker.
func TestFusedGroupsSharedByWorkers(t *testing.T) {
	defer func(n, b int) { minParallelSeries, seriesBatch = n, b }(minParallelSeries, seriesBatch)
	minParallelSeries, seriesBatch = 1, 1
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	f := newEtcdFleet(t, 3, time.Hour)
	e := NewEngine(f.head, Options{})
	start, end := f.start.Add(10*time.Minute), f.end
	steps := int64(end.Sub(start)/time.Minute) + 1
	// 3 clusters × 3 members × 5 methods groups.
	table := 45 * steps * int64(fusedCellSamples)
	for _, tc := range []struct {
		query  string
		tables int64
	}{
		{`sum by (cluster, instance, grpc_method) (rate(grpc_server_handled_total[5m]))`, 1},
		{`sum by (cluster, instance, grpc_method) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m])) / sum by (cluster, instance, grpc_method) (rate(grpc_server_handled_total[5m]))`, 2},
	} {
		res, err := e.Range(context.Background(), tc.query, start, end, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Besides the tables: one series' samples per worker, results.
		if peak := res.Stats.PeakSamples; peak < tc.tables*table || peak > tc.tables*table+table/2 {
			t.Errorf("%s: peak %d points held, want %d tables of %d (8 workers)", tc.query, peak, tc.tables, table)
		}
	}
}
