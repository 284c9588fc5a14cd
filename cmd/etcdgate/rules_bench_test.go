package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/tsdb"
)

// benchFleet writes the series the default pack and SLOs read for
// clusters × 3 members: rounds samples 30 s apart ending at end. Other
// etcd series only add index entries the selectors skip, so they are
// left out to keep 30,000 members in one process (~110 series each).
type benchFleet struct {
	app   tsdb.Appender
	refs  map[string]tsdb.SeriesRef
	scen  []string
	sizes []string
}

var (
	diskBuckets  = []string{"0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "0.512", "1.024", "2.048", "4.096", "8.192", "+Inf"}
	rttBuckets   = []string{"0.0001", "0.0002", "0.0004", "0.0008", "0.0016", "0.0032", "0.0064", "0.0128", "0.0256", "0.0512", "0.1024", "0.2048", "0.4096", "0.8192", "1.6384", "+Inf"}
	applyBuckets = []string{"0.0001", "0.0002", "0.0004", "0.0008", "0.0016", "0.0032", "0.0064", "0.0128", "0.0256", "0.0512", "0.1024", "0.2048", "0.4096", "0.8192", "1.6384", "+Inf"}
	grpcMethods  = []string{"Range", "Txn", "Put", "DeleteRange", "LeaseGrant"}
)

// member appends one round (i) of one member's series.
func (f *benchFleet) member(b *testing.B, c, m, i int, t int64) {
	std := []string{"cluster", fmt.Sprintf("etcd-%05d", c), "instance", fmt.Sprintf("etcd-%05d-%d", c, m), "job", "etcd",
		"product", fmt.Sprintf("p%d", c%20), "region", fmt.Sprintf("r%d", c%5), "scenario", f.scen[c%len(f.scen)], "size", f.sizes[c%len(f.sizes)]}
	add := func(v float64, name string, kv ...string) {
		ls := labels.FromStrings(append(append([]string{"__name__", name}, std...), kv...)...)
		key := ls.String()
		if ref, ok := f.refs[key]; ok {
			if ok, err := f.app.AppendRef(ref, t, v); ok && err == nil {
				return
			}
		}
		ref, err := f.app.AppendSeries(ls, t, v)
		if err != nil {
			b.Fatal(err)
		}
		f.refs[key] = ref
	}
	fi := float64(i)
	slow := 1.0
	if c%97 == 0 { // one cluster in 97 has a slow disk
		slow = 0
	}
	add(1, "up")
	add(1, "etcd_server_has_leader")
	add(1e8+fi*1e4, "etcd_mvcc_db_total_size_in_bytes")
	add(8e7, "etcd_mvcc_db_total_size_in_use_in_bytes")
	add(2147483648, "etcd_server_quota_backend_bytes")
	add(float64(c%3), "etcd_server_leader_changes_seen_total")
	add(0, "etcd_server_proposals_failed_total")
	for k, le := range diskBuckets {
		frac := min(1, float64(k+1)/8)
		if k < 9 {
			frac *= slow
		}
		add(fi*50*frac, "etcd_disk_wal_fsync_duration_seconds_bucket", "le", le)
		add(fi*20*frac, "etcd_disk_backend_commit_duration_seconds_bucket", "le", le)
	}
	for p := range 2 {
		peer := strconv.Itoa((m + p + 1) % 3)
		for k, le := range rttBuckets {
			add(fi*10*min(1, float64(k+1)/6), "etcd_network_peer_round_trip_time_seconds_bucket", "To", peer, "le", le)
		}
	}
	for k, le := range applyBuckets {
		add(fi*100*min(1, float64(k+1)/10), "etcd_server_apply_duration_seconds_bucket", "op", "Put", "success", "true", "le", le)
	}
	add(fi*100, "etcd_server_apply_duration_seconds_count", "op", "Put", "success", "true")
	for _, meth := range grpcMethods {
		add(fi*100, "grpc_server_handled_total", "grpc_type", "unary", "grpc_method", meth, "grpc_code", "OK")
		add(fi*(1-slow), "grpc_server_handled_total", "grpc_type", "unary", "grpc_method", meth, "grpc_code", "Unavailable")
	}
}

func loadBenchFleet(b *testing.B, head *tsdb.Head, clusters, rounds int, end time.Time) {
	f := &benchFleet{refs: map[string]tsdb.SeriesRef{}, scen: []string{"business", "platform", "key-account", "unknown"},
		sizes: []string{"small", "default", "large"}}
	for i := range rounds {
		t := end.Add(-time.Duration(rounds-1-i) * 30 * time.Second).UnixMilli()
		for c := range clusters {
			if c%500 == 0 {
				if f.app != nil {
					if err := f.app.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				f.app = head.Appender()
			}
			for m := range 3 {
				f.member(b, c, m, i, t)
			}
		}
	}
	if err := f.app.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRulePackRound evaluates one round of the default rule pack
// (deploy/rules: thresholds, etcd alerts, four SLOs) over a synthetic
// fleet with 12 rounds (6 minutes) of history. mode=sequential runs the
// groups one after the other (the CPU a round costs); mode=concurrent
// runs each group in its own goroutine, as the manager's schedules do.
//
//	go test -run '^$' -bench RulePackRound -benchtime 3x ./cmd/etcdgate/
func BenchmarkRulePackRound(b *testing.B) {
	for _, clusters := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("clusters=%d", clusters), func(b *testing.B) {
			m, end := benchPackManager(b, clusters)
			ctx := context.Background()
			for _, concurrent := range []bool{false, true} {
				mode := map[bool]string{false: "sequential", true: "concurrent"}[concurrent]
				b.Run("mode="+mode, func(b *testing.B) {
					i := 0
					for b.Loop() {
						i++
						evalRound(ctx, m, end.Add(time.Duration(i)*time.Second), concurrent)
					}
					b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/round")
					slowest(b, m)
				})
				// The next mode's rounds come later, still within the 5m
				// lookback of the raw samples.
				end = end.Add(time.Minute)
			}
			for _, g := range m.Groups() {
				for _, r := range g.Rules() {
					if h := r.Health(); h.Health != rules.HealthGood {
						b.Errorf("%s/%s: %s", g.Name(), r.Name(), h.LastError)
					}
				}
			}
		})
	}
}

// benchPackManager loads the fleet and the pack and runs a first round
// (it creates the recorded series and restores alert state).
func benchPackManager(b *testing.B, clusters int) (*rules.Manager, time.Time) {
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	end := time.Unix(1_800_000_000, 0)
	start := time.Now()
	loadBenchFleet(b, head, clusters, 12, end)
	m := packManager(b, head)
	n := 0
	for _, g := range m.Groups() {
		n += len(g.Rules())
		g.Eval(context.Background(), end)
		g.RestoreForState(context.Background(), end)
	}
	b.Logf("%d raw series loaded in %v; %d rules in %d groups; %d series after the first round",
		head.NumSeries(), time.Since(start).Round(time.Second), n, len(m.Groups()), head.NumSeries())
	return m, end
}

func evalRound(ctx context.Context, m *rules.Manager, ts time.Time, concurrent bool) {
	var wg sync.WaitGroup
	for _, g := range m.Groups() {
		if concurrent {
			wg.Go(func() { g.Eval(ctx, ts) })
		} else {
			g.Eval(ctx, ts)
		}
	}
	wg.Wait()
}

// slowest logs the groups' last durations in one line (go test keeps
// only the first lines a benchmark logs).
func slowest(b *testing.B, m *rules.Manager) {
	var sb strings.Builder
	for _, g := range m.Groups() {
		_, took := g.Status()
		fmt.Fprintf(&sb, " %s=%.3fs", g.Name(), took.Seconds())
	}
	b.Log("last round by group:" + sb.String())
}
