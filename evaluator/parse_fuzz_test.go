package evaluator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// FuzzQuery parses and evaluates arbitrary query text over a small etcd
// head: any input must end in a result or a clear error, never in a
// panic inside the engine (which the engine would report as "unexpected
// error").
func FuzzQuery(f *testing.F) {
	for _, q := range diffQueries {
		f.Add(q)
	}
	for _, q := range []string{"", "(", "sum(", "x[5m", `{__name__=~"("}`, "1 +", "rate(x)", "topk(x, y)",
		"x offset", "x @ 1e400", "x[0s]", "x[5m:0s]", "histogram_quantile(2, x)", `label_replace(x, "a", "b", "c", "(")`} {
		f.Add(q)
	}
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		f.Fatal(err)
	}
	app := head.Appender()
	for i, name := range []string{"up", "grpc_server_handled_total", "etcd_disk_wal_fsync_duration_seconds_bucket"} {
		for k := range 4 {
			lset := labels.FromStrings("__name__", name, "cluster", "c", "instance", string(rune('a'+k)), "le", []string{"0.1", "1", "+Inf", "10"}[k])
			for s := range 20 {
				if err := app.Append(lset, int64(s)*15000, float64(s*(i+k))); err != nil {
					f.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		f.Fatal(err)
	}
	e := NewEngine(head, Options{Timeout: 5 * time.Second, MaxSamples: 1_000_000})
	f.Fuzz(func(t *testing.T, q string) {
		if len(q) > 512 {
			return
		}
		for _, run := range []func() (*Result, error){
			func() (*Result, error) { return e.Instant(context.Background(), q, time.UnixMilli(200_000)) },
			func() (*Result, error) {
				return e.Range(context.Background(), q, time.UnixMilli(0), time.UnixMilli(300_000), 30*time.Second)
			},
		} {
			if _, err := run(); err != nil && strings.HasPrefix(err.Error(), "unexpected error") {
				t.Fatalf("%q: %v", q, err)
			}
		}
	})
}
