package relabel

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
)

// TestCacheComputesOncePerSeries checks that the rules run once per
// series however many samples it gets, and again only for the clusters
// whose registry entry changed.
func TestCacheComputesOncePerSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := DefaultOptions()
	opts.Registerer = reg
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	a := labels.FromStrings("__name__", "up", "cluster", "a")
	b := labels.FromStrings("__name__", "up", "cluster", "b")
	for range 100 {
		p.Relabel(a)
		p.Relabel(b)
	}
	computed := func() float64 { return testutil.ToFloat64(p.metrics.computed) }
	if computed() != 2 {
		t.Fatalf("computed %v times, want 2", computed())
	}
	p.Registry().PutEtcd(&Record{Cluster: "a", Product: "pay"})
	out, _, _ := p.Relabel(a)
	p.Relabel(b)
	if out.Get("product") != "pay" || computed() != 3 {
		t.Fatalf("after registering a: %s, computed %v, want product=pay and 3", out, computed())
	}
	p.Registry().DeleteEtcd("a")
	if out, _, _ := p.Relabel(a); out.Get("product") != "" || out.Get("scenario") != "unknown" {
		t.Fatalf("after deleting a: %s", out)
	}
	if err := p.SetConfig(DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	p.Relabel(a)
	p.Relabel(b)
	if computed() != 6 {
		t.Fatalf("computed %v times after a config change, want 6", computed())
	}
}

// TestCacheBound checks that the cache holds at most its bound and
// still answers correctly past it.
func TestCacheBound(t *testing.T) {
	opts := DefaultOptions()
	opts.CacheEntries = cacheShards * 2
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 * opts.CacheEntries {
		in := labels.FromStrings("__name__", "up", "cluster", fmt.Sprint(i))
		if out, _, _ := p.Relabel(in); out.Get("size") != "default" {
			t.Fatalf("%s", out)
		}
	}
	if n := p.cache.len(); n > opts.CacheEntries {
		t.Fatalf("%d entries, bound %d", n, opts.CacheEntries)
	}
	if p.cache.evictions.Load() == 0 {
		t.Fatal("no evictions")
	}
}

// TestDroppedSeriesCountedByReason checks the drop reasons.
func TestDroppedSeriesCountedByReason(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RelabelConfigs = parseRules(t, `[{source_labels: [job], regex: drop, action: drop}, {regex: 'x_(.*)', replacement: '$1', action: labelmap}]`)
	cfg.Sources = []Source{{Name: "etcd", Match: map[string]string{"job": "etcd"},
		RelabelConfigs: parseRules(t, `[{source_labels: [__name__], regex: 'grpc_.*', action: drop}, {regex: '__name__', action: labeldrop}]`)}}
	p := newTestPipeline(t, cfg)
	for in, reason := range map[string]string{
		`{__name__="up", job="drop"}`:                 reasonGlobalRule,
		`{__name__="grpc_x", job="etcd"}`:             reasonSourceRule,
		`{__name__="up", job="etcd"}`:                 reasonNoMetricName,
		`{__name__="up", job="node", x_9lives="cat"}`: reasonInvalidResult,
	} {
		if out, keep, _ := p.Relabel(mustParse(t, in)); keep {
			t.Errorf("%s kept as %s", in, out)
		}
		if n := testutil.ToFloat64(p.metrics.dropped.WithLabelValues(reason)); n != 1 {
			t.Errorf("%s: %v drops with reason %s, want 1", in, n, reason)
		}
	}
}

// TestDerivedSize checks that measured figures set the size of clusters
// that do not declare one, and that a declared size wins.
func TestDerivedSize(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SizeRules = []SizeRule{
		{Metric: "etcd_mvcc_db_total_size_in_bytes", SmallBelow: 100 << 20, LargeFrom: 4 << 30},
		{Metric: "etcd_debugging_mvcc_keys_total", SmallBelow: 10000, LargeFrom: 1000000},
	}
	p := newTestPipeline(t, cfg)
	p.Registry().PutEtcd(&Record{Cluster: "declared", Size: SizeSmall})
	measure := func(cluster, metric string, v float64) {
		t.Helper()
		out, keep, measured := p.Relabel(labels.FromStrings("__name__", metric, "cluster", cluster))
		if !keep || !measured {
			t.Fatalf("%s of %s not measured", metric, cluster)
		}
		p.Measure(out, v)
	}
	size := func(cluster string) string {
		out, _, _ := p.Relabel(labels.FromStrings("__name__", "up", "cluster", cluster))
		return out.Get("size")
	}
	measure("c", "etcd_mvcc_db_total_size_in_bytes", 1<<20)
	measure("c", "etcd_debugging_mvcc_keys_total", 100)
	if s := size("c"); s != SizeSmall {
		t.Fatalf("size %q, want small", s)
	}
	measure("c", "etcd_debugging_mvcc_keys_total", 5000000)
	if s := size("c"); s != SizeLarge {
		t.Fatalf("size %q, want large after the key count grew", s)
	}
	measure("declared", "etcd_mvcc_db_total_size_in_bytes", 8<<30)
	if s := size("declared"); s != SizeSmall {
		t.Fatalf("size %q, want the declared small", s)
	}
	if got := p.Status().DerivedSizes; got["c"] != SizeLarge || got["declared"] != SizeLarge {
		t.Fatalf("derived sizes %v", got)
	}
}

// TestConcurrentRelabel races lookups against registry changes and
// reloads: run with -race.
func TestConcurrentRelabel(t *testing.T) {
	p := newTestPipeline(t, DefaultConfig())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				in := labels.FromStrings("__name__", "up", "cluster", fmt.Sprint(i%50), "w", fmt.Sprint(w))
				if out, keep, _ := p.Relabel(in); !keep || out.Get("size") == "" {
					t.Errorf("%s", out)
					return
				}
			}
		})
	}
	for i := range 200 {
		p.Registry().PutEtcd(&Record{Cluster: fmt.Sprint(i % 50), Product: fmt.Sprint(i)})
		if i%50 == 0 {
			if err := p.SetConfig(DefaultConfig()); err != nil {
				t.Error(err)
			}
		}
	}
	wg.Wait()
}

// TestOutputDoesNotAliasInput checks that a series the pipeline leaves
// unchanged is stored from the pipeline's own copy: the ingester hands
// in scratch memory that the next series overwrites.
func TestOutputDoesNotAliasInput(t *testing.T) {
	p := newTestPipeline(t, DefaultConfig())
	b := labels.NewScratchBuilder(4)
	var scratch labels.Labels
	b.Add("__name__", "up")
	b.Add("job", "node")
	b.Overwrite(&scratch)
	out, _, _ := p.Relabel(scratch)
	b.Reset()
	b.Add("__name__", "xy")
	b.Add("job", "abcd")
	b.Overwrite(&scratch)
	if scratch.Get("job") != "abcd" {
		t.Fatalf("scratch not reused: %s", scratch)
	}
	if out.String() != `{__name__="up", job="node"}` {
		t.Fatalf("output changed with the scratch memory: %s", out)
	}
}
