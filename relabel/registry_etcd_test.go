package relabel

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// TestEtcdRegistry registers a cluster under the prefix and checks that
// its new series get the registry's labels without any reload, that a
// bad value changes nothing, and that deleting the key falls back to
// the defaults.
func TestEtcdRegistry(t *testing.T) {
	client := etcdtest.Start(t, etcdtest.Options{}).Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "/etcdgate/clusters/"
	// One cluster exists before the watcher starts: the list finds it.
	if _, err := client.Put(ctx, prefix+"etcd-old", `{"product": "legacy"}`); err != nil {
		t.Fatal(err)
	}
	p := newTestPipeline(t, DefaultConfig())
	var refused atomic.Int64
	w := NewEtcdWatcher(client, prefix, p.Registry(), nil, func(error) { refused.Add(1) })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(runCtx) }()
	defer func() { stop(); <-done }()

	series := func(i int) labels.Labels {
		return labels.FromStrings("__name__", "etcd_server_has_leader", "cluster", "etcd-new", "pod", string(rune('a'+i)))
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the listed cluster", func() bool { return p.Registry().Lookup("etcd-old") != nil })
	if out, _, _ := p.Relabel(series(0)); out.Get("scenario") != "unknown" || out.Get("size") != "default" {
		t.Fatalf("before registration: %s", out)
	}
	value := "product: payments\nscenario: key-account\nsize: large\nregion: eu-west\nlabels: {team: storage}\n"
	if _, err := client.Put(ctx, prefix+"etcd-new", value); err != nil {
		t.Fatal(err)
	}
	n := 1
	waitFor("the registration", func() bool {
		out, _, _ := p.Relabel(series(n))
		n++
		return out.Get("product") == "payments"
	})
	out, _, _ := p.Relabel(series(n))
	if out.Get("scenario") != "key-account" || out.Get("size") != "large" || out.Get("region") != "eu-west" || out.Get("team") != "storage" {
		t.Fatalf("after registration: %s", out)
	}
	if _, err := client.Put(ctx, prefix+"etcd-new", "size: enormous\n"); err != nil {
		t.Fatal(err)
	}
	waitFor("the refusal", func() bool { return refused.Load() > 0 })
	if out, _, _ := p.Relabel(series(n + 1)); out.Get("product") != "payments" {
		t.Fatalf("a bad value changed the labels: %s", out)
	}
	if _, err := client.Delete(ctx, prefix+"etcd-new"); err != nil {
		t.Fatal(err)
	}
	waitFor("the removal", func() bool {
		out, _, _ := p.Relabel(series(n))
		return out.Get("product") == "" && out.Get("scenario") == "unknown" && out.Get("size") == "default"
	})
}
