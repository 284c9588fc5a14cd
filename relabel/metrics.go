package relabel

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Reasons a series is dropped, as used in metrics labels.
const (
	reasonGlobalRule    = "global_rule"
	reasonSourceRule    = "source_rule"
	reasonNoMetricName  = "no_metric_name"
	reasonInvalidResult = "invalid_label"
)

// metrics are the pipeline's self-metrics. Series counts are per
// computation: once per new series, again after an invalidation or an
// eviction.
type metrics struct {
	computed       prometheus.Counter
	dropped        *prometheus.CounterVec
	unknown        prometheus.Counter
	registryErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, p *Pipeline) *metrics {
	m := &metrics{
		computed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_relabel_series_computed_total",
			Help: "Series whose relabeling outcome was computed (cache misses).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_relabel_series_dropped_total",
			Help: "Series dropped by relabeling, by reason; their samples are not stored.",
		}, []string{"reason"}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_relabel_unknown_cluster_series_total",
			Help: "Series of clusters not in the registry, stamped with the defaults.",
		}),
		registryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_relabel_registry_load_errors_total",
			Help: "Registry file loads and etcd values refused, by source.",
		}, []string{"source"}),
	}
	for _, r := range []string{reasonGlobalRule, reasonSourceRule, reasonNoMetricName, reasonInvalidResult} {
		m.dropped.WithLabelValues(r)
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.computed, m.dropped, m.unknown, m.registryErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "etcdgate_relabel_cache_entries",
			Help: "Series outcomes held in the relabel cache.",
		}, func() float64 { return float64(p.cache.len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "etcdgate_relabel_cache_evictions_total",
			Help: "Outcomes evicted from the relabel cache to keep it within its bound.",
		}, func() float64 { return float64(p.cache.evictions.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "etcdgate_relabel_registry_clusters",
			Help: "Clusters in the registry (file and etcd).",
		}, func() float64 { return float64(p.registry.Len()) }),
	)
	return m
}

// readCounter returns a counter's value, for the status page.
func readCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
