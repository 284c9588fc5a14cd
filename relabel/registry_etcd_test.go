package relabel

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// TestEtcdRegistryLimits: records are untrusted. A value over
// max_record_bytes, too many labels, a long label value or name, or too
// many endpoints is refused and counted, the rest kept; the list pages
// through more keys than one page holds, and past max_records new
// clusters are refused, in the list and in the watch, while registered
// ones still update.
func TestEtcdRegistryLimits(t *testing.T) {
	client := etcdtest.Start(t, etcdtest.Options{}).Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "/etcdgate/clusters/"
	put := func(cluster, value string) {
		t.Helper()
		if _, err := client.Put(ctx, prefix+cluster, value); err != nil {
			t.Fatal(err)
		}
	}
	bad := map[string]string{
		"big":                   `{"product": "` + strings.Repeat("x", 600) + `"}`,
		"labels":                `{"labels": {"a": "1", "b": "2", "c": "3"}}`,
		"long":                  `{"labels": {"a": "` + strings.Repeat("v", 40) + `"}}`,
		"name":                  `{"labels": {"` + strings.Repeat("n", 40) + `": "v"}}`,
		"endpoints":             `{"endpoints": ["https://a:1", "https://b:1", "https://c:1"]}`,
		strings.Repeat("c", 40): `{"product": "p"}`,
	}
	for c, v := range bad {
		put(c, v)
	}
	const valid = listPageSize + 8
	for i := range valid {
		put(fmt.Sprintf("ok-%02d", i), `{"product": "p", "labels": {"team": "t"}}`)
	}
	lim := RecordLimits{MaxRecords: valid - 3, MaxRecordBytes: 512, MaxLabels: 2, MaxLabelNameLength: 16,
		MaxLabelValueLength: 32, MaxEndpoints: 2}
	if err := lim.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	var refused atomic.Int64
	var lastErr atomic.Value
	w := NewEtcdWatcher(client, prefix, reg, nil, func(err error) {
		if !errors.Is(err, ErrRecordLimit) {
			t.Errorf("refusal %v is not ErrRecordLimit", err)
		}
		lastErr.Store(err.Error())
		refused.Add(1)
	})
	w.SetLimits(lim)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(runCtx) }()
	defer func() { stop(); <-done }()
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s (registry %d, refused %d)", what, reg.Len(), refused.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The bad keys sort before "ok-": six refused for their content, then
	// three valid ones past max_records.
	waitUntil("the list", func() bool { return reg.Len() == lim.MaxRecords })
	if n := refused.Load(); n != int64(len(bad)+3) {
		t.Fatalf("refused %d, want %d", n, len(bad)+3)
	}
	for c := range bad {
		if reg.Lookup(c) != nil {
			t.Fatalf("refused record %q registered", c)
		}
	}
	// Watch: a new cluster past max_records is refused; an update of a
	// registered one applies.
	put("zz-new", `{"product": "p"}`)
	waitUntil("the refusal of a new cluster", func() bool { return refused.Load() == int64(len(bad)+4) })
	put("ok-00", `{"product": "updated"}`)
	waitUntil("the update", func() bool { r := reg.Lookup("ok-00"); return r != nil && r.Product == "updated" })
	if reg.Lookup("zz-new") != nil || reg.Len() != lim.MaxRecords {
		t.Fatalf("registry holds %d clusters", reg.Len())
	}
}
