package evaluator

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/teststorage"

	"github.com/etcdgate/etcdgate/bench"
	"github.com/etcdgate/etcdgate/tsdb"
)

// fusedHistogramQueries are histogram functions over range functions of
// bucket selectors, fused and not (the last ones), with every modifier
// the fused path must honour.
var fusedHistogramQueries = []string{
	`histogram_quantile(0.9, rate(lat_bucket[5m]))`,
	`histogram_quantile(0.5, increase(lat_bucket[10m] offset 3m))`,
	`histogram_quantile(0.99, irate(lat_bucket{cluster="c1"}[2m]))`,
	`histogram_quantile(0.99, sum by (cluster, le) (rate(lat_bucket[5m])))`,
	`histogram_quantile(0.9, sum without (instance) (rate(lat_bucket[2m])))`,
	`histogram_quantile(0.75, sum by (le) (rate(lat_bucket[5m])))`,
	`histogram_quantile(0.9, rate(lat_bucket{instance=~"i[12]"}[5m] @ end()))`,
	`histogram_quantile(-1, rate(lat_bucket[5m]))`,
	`histogram_quantile(1.5, sum by (cluster, le) (rate(lat_bucket[5m])))`,
	`histogram_quantile(0.9, rate(lat_bucket[5m])) > 0.3`,
	`histogram_fraction(0, 0.5, rate(lat_bucket[5m]))`,
	`histogram_fraction(0.1, 1, sum by (le, cluster) (increase(lat_bucket[5m])))`,
	`histogram_quantile(0.8, last_over_time(lat_bucket[5m]))`,
	`histogram_quantile(0.8, sum by (le, cluster) (max_over_time(lat_bucket{instance!="i0"}[3m])))`,
	`histogram_quantile(0.9, rate(nope_bucket[5m]))`,
	`histogram_quantile(0.9, sum without (le) (rate(lat_bucket[5m])))`,
	`histogram_quantile(0.9, max by (cluster, le) (rate(lat_bucket[5m])))`,
	`histogram_quantile(0.9, rate(lat_bucket[5m])[10m:1m])`,
}

// histogramFleet writes classic histograms that misbehave in every way
// the histogram functions must cope with: counter resets, NaN counts,
// staleness markers and restarts, missed scrapes, buckets below the
// bucket before them, a bound spelt two ways, a histogram without +Inf
// and series whose le is malformed or missing.
func histogramFleet(t *testing.T) (*tsdb.Head, *teststorage.TestStorage, time.Time) {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	prom := teststorage.New(t)
	start := time.Unix(1_800_000_000, 0).UTC()
	ours, theirs := head.Appender(), prom.Appender(context.Background())
	r := rand.New(rand.NewPCG(3, 5))
	type series struct {
		lset               labels.Labels
		v                  float64
		resetAt, staleFrom int
	}
	var all []*series
	for c := range 2 {
		for i := range 4 {
			les := []string{"0.1", "0.5", "1", "2.5", "+Inf"}
			switch {
			case c == 1 && i == 3:
				les = []string{"0.1", "0.5", "1", "1.0", "+Inf"} // 1 spelt twice
			case c == 1 && i == 2:
				les = les[:4] // no +Inf
			}
			for _, le := range les {
				all = append(all, &series{lset: labels.FromStrings("__name__", "lat_bucket",
					"cluster", fmt.Sprintf("c%d", c), "instance", fmt.Sprintf("i%d", i), "job", "etcd", "le", le),
					resetAt: r.IntN(600), staleFrom: -1})
			}
		}
	}
	all[7].staleFrom = 300 // stops with a marker, comes back 40 scrapes later
	for _, le := range []string{"x", ""} {
		all = append(all, &series{lset: labels.FromStrings("__name__", "lat_bucket", "cluster", "c0", "instance", "bad", "le", le), resetAt: -1, staleFrom: -1})
	}
	for k := 0; k <= 720; k++ {
		ts := start.Add(time.Duration(k) * 15 * time.Second).UnixMilli()
		cum := 0.0
		for j, s := range all {
			if s.lset.Get("le") == "0.1" {
				cum = 0
			}
			cum += float64(r.IntN(10))
			s.v += cum
			v := s.v
			switch {
			case k == s.resetAt:
				s.v, v = 0, 0
			case j%11 == 4 && k%97 == 13:
				v = math.NaN()
			case j%13 == 6 && k%50 == 7:
				v = s.v / 3 // below the bucket before it
			case s.staleFrom >= 0 && k == s.staleFrom:
				v = math.Float64frombits(staleNaNBits)
			case s.staleFrom >= 0 && k > s.staleFrom && k < s.staleFrom+40, r.IntN(40) == 0:
				continue // stale, or a missed scrape
			}
			if err := ours.Append(s.lset, ts, v); err != nil {
				t.Fatal(err)
			}
			if _, err := theirs.Append(0, s.lset, ts, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ours.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := theirs.Commit(); err != nil {
		t.Fatal(err)
	}
	return head, prom, start
}

// TestFusedHistogramMatchesPrometheus evaluates histogram functions over
// misbehaving histograms fused, node by node and with Prometheus's
// engine: the three must agree, and the fused and node-by-node paths must
// give the same annotations.
func TestFusedHistogramMatchesPrometheus(t *testing.T) {
	defer func(n, b int, f bool) { minParallelSeries, seriesBatch, histogramFusion = n, b, f }(minParallelSeries, seriesBatch, histogramFusion)
	head, prom, start := histogramFleet(t)
	// With several workers (sums over few histograms then take the
	// node-by-node path), and with one, where every shape is fused.
	for _, par := range []int{4, 1 << 30} {
		minParallelSeries, seriesBatch = par, 3
		t.Run(fmt.Sprint("minParallelSeries=", par), func(t *testing.T) { compareFusedHistograms(t, head, prom, start) })
	}
}

func compareFusedHistograms(t *testing.T, head *tsdb.Head, prom *teststorage.TestStorage, start time.Time) {
	ours := NewEngine(head, Options{})
	theirs := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		EnableAtModifier: true, EnableNegativeOffset: true,
		Parser: parser.NewParser(parser.Options{}),
	})
	ctx := context.Background()
	run := func(fused bool, q string, instant bool, ts, end time.Time) (*Result, error) {
		histogramFusion = fused
		if instant {
			return ours.Instant(ctx, q, ts)
		}
		return ours.Range(ctx, q, ts, end, 45*time.Second)
	}
	nonEmpty := 0
	for _, q := range fusedHistogramQueries {
		for _, c := range []struct {
			instant    bool
			start, end time.Time
		}{
			{true, start.Add(90 * time.Minute), time.Time{}},
			{true, start.Add(80*time.Minute + 7*time.Second), time.Time{}},
			{false, start.Add(10 * time.Minute), start.Add(3 * time.Hour)},
		} {
			name := fmt.Sprintf("%q instant=%v at %v", q, c.instant, c.start.Sub(start))
			fused, fusedErr := run(true, q, c.instant, c.start, c.end)
			plain, plainErr := run(false, q, c.instant, c.start, c.end)
			var want *promql.Result
			if c.instant {
				want = execPrometheus(theirs.NewInstantQuery(ctx, prom, nil, q, c.start))
			} else {
				want = execPrometheus(theirs.NewRangeQuery(ctx, prom, nil, q, c.start, c.end, 45*time.Second))
			}
			if d := compareResults(fused, fusedErr, want); d != "" {
				t.Errorf("%s, fused: %s", name, d)
			}
			if d := compareResults(plain, plainErr, want); d != "" {
				t.Errorf("%s, node by node: %s", name, d)
			}
			if fusedErr == nil && plainErr == nil {
				// In no particular order: the node-by-node path meets
				// the buckets in the order of an aggregation's groups.
				if !reflect.DeepEqual(sortedAnnotations(fused.Warnings), sortedAnnotations(plain.Warnings)) {
					t.Errorf("%s: fused annotations %v, node by node %v", name, fused.Warnings, plain.Warnings)
				}
				if fused.Stats.SamplesLoaded != plain.Stats.SamplesLoaded || fused.Stats.QueryableSamples != plain.Stats.QueryableSamples {
					t.Errorf("%s: fused stats %+v, node by node %+v", name, fused.Stats, plain.Stats)
				}
				if len(canonical(toPromValue(fused.Value))) > 0 {
					nonEmpty++
				}
			}
		}
	}
	// All but nope_bucket, sum without (le) and the subquery (a type error).
	if nonEmpty < 3*(len(fusedHistogramQueries)-3) {
		t.Fatalf("only %d results have data: the comparison proves little", nonEmpty)
	}
}

// TestFusedHistogramShapes checks which bucket arguments are fused: the
// etcd latency queries' must be, shapes whose result the fused path
// cannot compute must not.
func TestFusedHistogramShapes(t *testing.T) {
	ev := &evaluator{queryState: &queryState{store: &tsdb.Head{}}, start: 0, end: 3600_000, interval: 15_000}
	bucketsArg := func(q string) metricsql.Expr {
		e, err := metricsql.Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		call, ok := e.(*metricsql.FuncExpr)
		for !ok || (call.Name != "histogram_quantile" && call.Name != "histogram_fraction") {
			be, isBinary := e.(*metricsql.BinaryOpExpr)
			if !isBinary {
				t.Fatalf("%s: no histogram function", q)
			}
			e = be.Left
			call, ok = e.(*metricsql.FuncExpr)
		}
		return call.Args[len(call.Args)-1]
	}
	fusedEtcd := 0
	for _, q := range bench.StandardQueries() {
		e, err := metricsql.Parse(q.Expr)
		if err != nil {
			t.Fatal(err)
		}
		var has bool
		metricsql.VisitAll(e, func(x metricsql.Expr) {
			if f, ok := x.(*metricsql.FuncExpr); ok && f.Name == "histogram_quantile" {
				has = true
			}
		})
		if !has {
			continue
		}
		if _, ok := ev.fusedHistogramShapeOf(bucketsArg(q.Expr)); !ok {
			t.Errorf("%s: %s is not fused", q.Name, q.Expr)
		}
		fusedEtcd++
	}
	if fusedEtcd < 3 {
		t.Fatalf("only %d etcd queries use histogram_quantile", fusedEtcd)
	}
	for q, want := range map[string]bool{
		`histogram_quantile(0.9, rate(x_bucket[5m]))`:                                      true,
		`histogram_quantile(0.9, sum by (le) (increase(x_bucket[5m])))`:                    true,
		`histogram_fraction(0, 1, sum without (pod) (rate(x_bucket[5m])))`:                 true,
		`histogram_quantile(0.9, sum without (le) (rate(x_bucket[5m])))`:                   false,
		`histogram_quantile(0.9, sum by (pod) (rate(x_bucket[5m])))`:                       false,
		`histogram_quantile(0.9, max by (le) (rate(x_bucket[5m])))`:                        false,
		`histogram_quantile(0.9, rate({__name__=~"x_bucket|y_bucket"}[5m]))`:               false,
		`histogram_quantile(0.9, rate(x_bucket[5m:1m]))`:                                   false,
		`histogram_quantile(0.9, x_bucket)`:                                                false,
		`histogram_quantile(0.9, quantile_over_time(0.5, x_bucket[5m]))`:                   false,
		`histogram_quantile(0.9, sum by (le) (rate({__name__=~"x_bucket|y_bucket"}[5m])))`: false,
	} {
		if _, got := ev.fusedHistogramShapeOf(bucketsArg(q)); got != want {
			t.Errorf("%s: fused %v, want %v", q, got, want)
		}
	}
}

func sortedAnnotations(a Annotations) []string {
	var out []string
	for _, x := range a {
		out = append(out, fmt.Sprint(x.Info, x.Msg))
	}
	slices.Sort(out)
	return out
}

// TestFusedHistogramBalance: a histogram is one worker's, so sums over
// histograms too few to share out among the workers take the
// node-by-node path; with one worker everything is fused.
func TestFusedHistogramBalance(t *testing.T) {
	defer func(n int) { minParallelSeries = n }(minParallelSeries)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	head, _, start := histogramFleet(t)
	ev := &evaluator{
		queryState: &queryState{ctx: context.Background(), store: head, lookback: 300_000, maxSamples: 1 << 40, maxSeries: 1 << 30},
		start:      start.Add(time.Hour).UnixMilli(), end: start.Add(2 * time.Hour).UnixMilli(), interval: 60_000,
	}
	ev.counts = newStepCounts(ev.numSteps(), false)
	for _, tc := range []struct {
		par   int
		query string
		fused bool
	}{
		{4, `histogram_quantile(0.9, rate(lat_bucket[5m]))`, true}, // 8 histograms of 4-5 series, 2 a bad le
		{4, `histogram_quantile(0.9, sum by (cluster, instance, le) (rate(lat_bucket[5m])))`, true},
		{4, `histogram_quantile(0.9, sum by (cluster, le) (rate(lat_bucket[5m])))`, false}, // 2 of ~20
		{4, `histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))`, false},
		{1 << 30, `histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))`, true},
	} {
		minParallelSeries = tc.par
		e, err := metricsql.Parse(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		sh, ok := ev.fusedHistogramShapeOf(e.(*metricsql.FuncExpr).Args[1])
		if !ok {
			t.Fatalf("%s: not of the fused shape", tc.query)
		}
		var m Matrix
		if err := ev.protect(func() {
			m, ok = ev.fusedHistogram(sh, func(_ int, bs []bucket) (float64, bool) { return float64(len(bs)), true })
		}); err != nil {
			t.Fatal(err)
		}
		if ok != tc.fused || (ok && len(m) == 0) {
			t.Errorf("minParallelSeries=%d %s: fused %v with %d series, want fused %v", tc.par, tc.query, ok, len(m), tc.fused)
		}
	}
}
