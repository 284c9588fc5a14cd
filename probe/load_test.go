package probe

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// TestInspectionRoundLoad measures the load one full round of
// inspections (each of the five once, default settings) puts on a
// 3-member cluster of 100,000 keys with 1 KiB values spread over ten
// Kubernetes resources: requests sent, bytes received, duration. Filling
// the cluster takes a while, so it runs only when asked:
//
//	ETCDGATE_PROBE_LOAD=1 go test -run TestInspectionRoundLoad -v ./probe/
func TestInspectionRoundLoad(t *testing.T) {
	if os.Getenv("ETCDGATE_PROBE_LOAD") == "" {
		t.Skip("set ETCDGATE_PROBE_LOAD=1 to measure (about a minute)")
	}
	const keys = 100000
	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
	kv := c.Client(t)
	fill := time.Now()
	value := strings.Repeat("v", 1024)
	for i := 0; i < keys; i += 100 {
		ops := make([]clientv3.Op, 0, 100)
		for j := i; j < i+100; j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/registry/resource%d/ns%d/object%06d", j%10, j%50, j), value))
		}
		if _, err := kv.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitConverged(t)
	t.Logf("filled %d keys of %d bytes in %s", keys, len(value), time.Since(fill).Round(time.Millisecond))
	tg := testTarget("etcd-load", c)
	var requests, bytes int64
	var total time.Duration
	t.Logf("%-12s %8s %14s %10s  %s", "inspection", "requests", "bytes read", "duration", "message")
	for _, in := range DefaultSettings().All() {
		rec, _, _ := inspect(t, tg, in, 5*time.Minute, nil)
		if rec.Status == StatusFailed {
			t.Fatalf("%s failed: %s", in.Name(), rec.Message)
		}
		d := rec.End.Sub(rec.Start)
		requests, bytes, total = requests+rec.Requests, bytes+rec.BytesRead, total+d
		msg := rec.Message
		if len(msg) > 90 {
			msg = msg[:90] + "…"
		}
		t.Logf("%-12s %8d %14d %10s  %s", in.Name(), rec.Requests, rec.BytesRead, d.Round(time.Millisecond), msg)
	}
	t.Logf("%-12s %8d %14d %10s", "round", requests, bytes, total.Round(time.Millisecond))
}
