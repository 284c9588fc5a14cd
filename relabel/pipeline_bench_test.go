package relabel

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// benchConfig is a typical setup: one global rule, an etcd source with
// two rules.
func benchConfig(b *testing.B) Config {
	cfg := DefaultConfig()
	cfg.RelabelConfigs = parseRules(b, `[{source_labels: [namespace], target_label: namespace, action: lowercase}]`)
	cfg.Sources = []Source{{Name: "etcd", Match: map[string]string{"job": "etcd"}, RelabelConfigs: parseRules(b,
		`[{source_labels: [pod], regex: '(.*)-\d+', target_label: etcd_cluster, replacement: '$1'}, {regex: team, action: labeldrop}]`)}}
	return cfg
}

func benchSeries(n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		c := i / 1800
		out[i] = labels.FromStrings("__name__", fmt.Sprintf("etcd_metric_%d", i%1800), "cluster", fmt.Sprintf("etcd-%d", c),
			"instance", fmt.Sprintf("10.0.%d.%d:2379", c/250, c%250), "job", "etcd", "namespace", "kube-system",
			"pod", fmt.Sprintf("etcd-%d-0", c), "region", "eu-west", "team", "storage")
	}
	return out
}

// BenchmarkRelabel measures one series through the pipeline: new (rules,
// enrichment, cache insert) and known (cache hit).
func BenchmarkRelabel(b *testing.B) {
	series := benchSeries(1 << 16)
	newPipeline := func() *Pipeline {
		p := newTestPipeline(b, benchConfig(b))
		for c := range 40 {
			p.Registry().PutEtcd(&Record{Cluster: fmt.Sprintf("etcd-%d", c), Product: "payments", Scenario: "business", Size: SizeLarge})
		}
		return p
	}
	b.Run("series=new", func(b *testing.B) {
		p := newPipeline()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i == len(series) {
				b.StopTimer()
				p = newPipeline()
				i = 0
				b.StartTimer()
			}
			p.Relabel(series[i])
			i++
		}
	})
	// retained measures the heap an outcome keeps in the cache (input
	// copy, enriched output, entry), the figure that sizes CacheEntries.
	b.Run("retained", func(b *testing.B) {
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p := newPipeline()
			for _, s := range series {
				p.Relabel(s)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(series)), "B/series")
			runtime.KeepAlive(p)
		}
	})
	b.Run("series=known", func(b *testing.B) {
		p := newPipeline()
		for _, s := range series {
			p.Relabel(s)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Relabel(series[i&(len(series)-1)])
			i++
		}
	})
}
