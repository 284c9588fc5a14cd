package tsdb

import "github.com/prometheus/client_golang/prometheus"

type dbMetrics struct {
	recoverySeconds    prometheus.Gauge
	checkpoints        prometheus.Counter
	checkpointFailures prometheus.Counter
	checkpointSeconds  prometheus.Gauge
	seriesRemoved      prometheus.Counter
	bucketsDropped     prometheus.Counter
}

func newDBMetrics(reg prometheus.Registerer) *dbMetrics {
	m := &dbMetrics{
		recoverySeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_tsdb_recovery_duration_seconds",
			Help: "Time the last start took to load the store and replay the WAL.",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_checkpoints_total",
			Help: "Checkpoints completed: head state written to the store and the WAL truncated.",
		}),
		checkpointFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_checkpoint_failures_total",
			Help: "Checkpoints that failed; the WAL keeps their data.",
		}),
		checkpointSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_tsdb_checkpoint_last_duration_seconds",
			Help: "Duration of the last checkpoint.",
		}),
		seriesRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_retention_series_removed_total",
			Help: "Series removed from the index because all their data aged out.",
		}),
		bucketsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_retention_buckets_dropped_total",
			Help: "Time buckets of persisted chunks dropped by retention.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.recoverySeconds, m.checkpoints, m.checkpointFailures, m.checkpointSeconds, m.seriesRemoved, m.bucketsDropped)
	}
	return m
}
