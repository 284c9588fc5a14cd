package evaluator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

func limitsHead(t *testing.T, series, samples int) *tsdb.Head {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := head.Appender()
	for s := range series {
		lset := labels.FromStrings("__name__", "up", "instance", string(rune('a'+s%26))+string(rune('a'+s/26)))
		for i := range samples {
			if err := app.Append(lset, int64(i)*15000, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return head
}

func TestMaxSamplesFailsTheQueryOnly(t *testing.T) {
	head := limitsHead(t, 10, 100)
	e := NewEngine(head, Options{MaxSamples: 50})
	ctx := context.Background()
	end := time.UnixMilli(99 * 15000)
	if _, err := e.Range(ctx, "up", time.UnixMilli(0), end, 15*time.Second); !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("range over 1000 points with max 50: %v", err)
	}
	if _, err := e.Instant(ctx, "sum_over_time(up[1h])", end); !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("240 raw samples per series with max 50: %v", err)
	}
	res, err := e.Instant(ctx, "sum(up)", end)
	if err != nil || res.Value.(Vector)[0].F != 10 {
		t.Fatalf("a query under the limit: %v %v", res, err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	head := limitsHead(t, 10, 10)
	e := NewEngine(head, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Instant(ctx, "up", time.UnixMilli(0)); !errors.Is(err, ErrCanceled) {
		t.Fatalf("canceled: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := e.Instant(ctx, "up", time.UnixMilli(0)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("timed out: %v", err)
	}
}

// TestConcurrencyLimit checks that a query waits for a slot while the
// engine runs its maximum, and times out if none frees.
func TestConcurrencyLimit(t *testing.T) {
	head := limitsHead(t, 1, 1)
	e := NewEngine(head, Options{MaxConcurrent: 2, Timeout: 50 * time.Millisecond})
	e.slots <- struct{}{} // two queries are running
	e.slots <- struct{}{}
	_, err := e.Instant(context.Background(), "up", time.UnixMilli(0))
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "waiting for a query slot") {
		t.Fatalf("with every slot taken: %v", err)
	}
	<-e.slots // one finishes
	if _, err := e.Instant(context.Background(), "up", time.UnixMilli(0)); err != nil {
		t.Fatalf("with a free slot: %v", err)
	}
}

// TestFleetAggregationHoldsGroupsOnly checks that an aggregation of a
// range function over many series holds its groups, not one result per
// series: under a sample limit far below the series count, the fused
// form answers while the same query written to force per-series results
// does not.
func TestFleetAggregationHoldsGroupsOnly(t *testing.T) {
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := head.Appender()
	for s := range 1000 {
		lset := labels.FromStrings("__name__", "grpc_server_handled_total", "cluster", fmt.Sprintf("c%d", s%10), "instance", fmt.Sprint(s))
		for i := range 20 {
			if err := app.Append(lset, int64(i)*15000, float64(i*s)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	e := NewEngine(head, Options{MaxSamples: 200})
	at := time.UnixMilli(19 * 15000)
	res, err := e.Instant(context.Background(), `sum by (cluster) (rate(grpc_server_handled_total[5m]))`, at)
	if err != nil {
		t.Fatalf("fused aggregation: %v", err)
	}
	if got := len(res.Value.(Vector)); got != 10 {
		t.Fatalf("%d groups, want 10", got)
	}
	if _, err := e.Instant(context.Background(), `sum by (cluster) (rate(grpc_server_handled_total[5m]) * 1)`, at); !errors.Is(err, ErrTooManySamples) {
		t.Fatalf("per-series results under a limit of 200: %v", err)
	}
}
