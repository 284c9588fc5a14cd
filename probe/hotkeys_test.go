package probe

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// TestHotKeys writes one key in a loop, and a few other keys slowly,
// while hot_keys samples, and checks that the loop's key is the top hot
// key with about the rate the loop wrote at. The rate is compared with
// the loop's own count of acknowledged writes over the window, loosely:
// a loaded machine slows the loop, not the comparison.
func TestHotKeys(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
	kv := c.Client(t)
	const hot = "/registry/leases/kube-system/hot"
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var written []time.Time // when each write of the hot key was acknowledged
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := kv.Put(ctx, hot, fmt.Sprint(i)); err == nil {
				mu.Lock()
				written = append(written, time.Now())
				mu.Unlock()
			}
			if i%20 == 0 {
				kv.Put(ctx, fmt.Sprintf("/registry/pods/ns/p%d", i), "v")
			}
		}
	})
	defer func() { stop(); wg.Wait() }()
	time.Sleep(100 * time.Millisecond) // the loop is running

	h := DefaultHotKeys()
	h.Window, h.TopN, h.WarnWritesPerSecond = 1500*time.Millisecond, 3, 5
	rec, _, col := inspect(t, testTarget("etcd-hot", c), h, 30*time.Second, nil)
	// The loop's own rate over the window: the watch ran for the last
	// Window of the run.
	from := rec.End.Add(-h.Window)
	mu.Lock()
	n := 0
	for _, at := range written {
		if !at.Before(from) && !at.After(rec.End) {
			n++
		}
	}
	mu.Unlock()
	loopRate := float64(n) / h.Window.Seconds()

	wantRecord(t, rec, StatusWarning, "hottest: "+hot+" ", "keys written 5 times a second or more")
	rate, ok := col.value("etcdgate_inspection_hot_key_writes_per_second", "key", hot, "prefix", "/registry/leases/", "cluster", "etcd-hot")
	if !ok || rate < 0.5*loopRate || rate > 1.5*loopRate {
		t.Fatalf("hot key rate %.1f/s (found %v), loop wrote %.1f/s", rate, ok, loopRate)
	}
	for _, f := range col.series {
		if f.Labels.Get("__name__") == "etcdgate_inspection_hot_key_writes_per_second" && f.Samples[0].V > rate {
			t.Fatalf("%s is hotter than the loop's key", f.Labels)
		}
	}
	if v, _ := col.value("etcdgate_inspection_hot_prefix_writes_per_second", "prefix", "/registry/leases/"); v != rate {
		t.Fatalf("prefix rate %v, key rate %v", v, rate)
	}
}

// TestHotKeysWarns checks the warning threshold on a result.
func TestHotKeysWarns(t *testing.T) {
	h := DefaultHotKeys()
	h.WarnWritesPerSecond = 10
	res := h.result(map[string]int{"/a": 50, "/b": 5}, map[string]int{"/a": 55}, 55, 2*time.Second)
	if res.Status != StatusWarning || res.Message != "55 writes in 2s (27.5/s) to 2 keys; hottest: /a 25.0/s, /b 2.5/s; keys written 10 times a second or more" {
		t.Fatalf("%s: %s", res.Status, res.Message)
	}
}
