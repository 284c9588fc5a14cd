package tsdb

import "github.com/prometheus/client_golang/prometheus"

type dbMetrics struct {
	recoverySeconds    prometheus.Gauge
	checkpoints        prometheus.Counter
	checkpointFailures prometheus.Counter
	checkpointSeconds  prometheus.Gauge
	seriesRemoved      prometheus.Counter
	bucketsDropped     prometheus.Counter

	compactionBuckets      prometheus.Counter
	compactionChunksMerged prometheus.Counter
	compactionFailures     prometheus.Counter
	compactionMalformed    prometheus.Counter
	compactionSeconds      prometheus.Gauge

	walFsyncSeconds prometheus.Histogram
}

func newDBMetrics(reg prometheus.Registerer, journal *chunkJournal) *dbMetrics {
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
		compactionBuckets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_compaction_buckets_total",
			Help: "Time buckets whose persisted chunks were compacted into few chunks per series.",
		}),
		compactionChunksMerged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_compaction_chunks_merged_total",
			Help: "Persisted chunks that compaction replaced by merged ones.",
		}),
		compactionFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_compaction_failures_total",
			Help: "Compaction passes that failed; the chunks stay as they were and the next pass retries.",
		}),
		compactionMalformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_compaction_malformed_series_total",
			Help: "Series whose persisted chunks compaction found malformed and left as they are.",
		}),
		compactionSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_tsdb_compaction_last_duration_seconds",
			Help: "Time spent compacting the last compacted bucket, summed over its passes.",
		}),
		// From a millisecond to 16 s: an fsync queued behind a
		// checkpoint's writes takes seconds, and acknowledgements wait
		// for it.
		walFsyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "etcdgate_tsdb_wal_fsync_duration_seconds",
			Help:    "Time a round of WAL fsyncs took (the segments written since the last round and the directory); writes are acknowledged after theirs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
	}
	if reg != nil && journal != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "etcdgate_tsdb_journal_appended_bytes_total",
				Help: "Bytes of closed chunks checkpoints appended to the chunk journal since the start.",
			}, func() float64 { return float64(journal.appended.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "etcdgate_tsdb_journal_segments",
				Help: "Segment files of the chunk journal: those with records of buckets not yet compacted or dropped, and those waiting for readers.",
			}, func() float64 { return float64(journal.segments()) }),
		)
	}
	if reg != nil {
		reg.MustRegister(m.recoverySeconds, m.checkpoints, m.checkpointFailures, m.checkpointSeconds, m.seriesRemoved, m.bucketsDropped,
			m.compactionBuckets, m.compactionChunksMerged, m.compactionFailures, m.compactionMalformed, m.compactionSeconds, m.walFsyncSeconds)
	}
	return m
}
