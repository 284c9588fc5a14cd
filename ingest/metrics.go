package ingest

import "github.com/prometheus/client_golang/prometheus"

// metrics are the write path's self-metrics.
type metrics struct {
	requestsRejected *prometheus.CounterVec
	requestsDecoded  *prometheus.CounterVec
	decodedV1        prometheus.Counter // requestsDecoded's children, resolved once
	decodedV2        prometheus.Counter
	seriesReceived   prometheus.Counter
	seriesRejected   *prometheus.CounterVec
	samplesReceived  prometheus.Counter
	samplesAccepted  prometheus.Counter
	samplesRejected  *prometheus.CounterVec
	samplesDropped   prometheus.Counter
	samplesDeduped   prometheus.Counter
	quorumFailures   prometheus.Counter
	gateWaitSeconds  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, in *Ingester) *metrics {
	m := &metrics{
		requestsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ingest_requests_rejected_total",
			Help: "Write requests refused whole, by reason.",
		}, []string{"reason"}),
		requestsDecoded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ingest_requests_decoded_total",
			Help: "Remote write requests decoded (from senders, not from ring peers), by protocol version: 1.0 or 2.0.",
		}, []string{"protocol"}),
		seriesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_ingest_series_received_total",
			Help: "Series entries received in write requests.",
		}),
		seriesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ingest_series_rejected_total",
			Help: "Series entries refused by validation, by reason.",
		}, []string{"reason"}),
		samplesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_ingest_samples_received_total",
			Help: "Float samples received in write requests.",
		}),
		samplesAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_ingest_samples_accepted_total",
			Help: "Float samples accepted (stored, or ignored as exact duplicates).",
		}),
		samplesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ingest_samples_rejected_total",
			Help: "Samples refused, by reason.",
		}, []string{"reason"}),
		samplesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_ingest_samples_dropped_total",
			Help: "Samples of series dropped by relabeling (not stored, not an error).",
		}),
		quorumFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_ring_quorum_failures_total",
			Help: "Write requests answered 5xx because some series did not reach a majority of their owners.",
		}),
		samplesDeduped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_ring_ha_samples_deduped_total",
			Help: "Samples of HA scraper replicas not elected for their cluster (not stored, not an error).",
		}),
	}
	for _, r := range []string{"body_too_large", "request_too_large", "bad_snappy", "bad_protobuf",
		"overloaded_requests", "overloaded_bytes", "overloaded_memory", "overloaded_queue"} {
		m.requestsRejected.WithLabelValues(r)
	}
	m.decodedV1 = m.requestsDecoded.WithLabelValues("1.0")
	m.decodedV2 = m.requestsDecoded.WithLabelValues("2.0")
	inflightRequests := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "etcdgate_ingest_inflight_requests",
		Help: "Write requests admitted and not yet answered.",
	}, func() float64 { return float64(in.inflight.requests.Load()) })
	inflightBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "etcdgate_ingest_inflight_bytes",
		Help: "Bytes charged to write requests in flight: bodies, decompressed bodies, decoded structs.",
	}, func() float64 { return float64(in.inflight.bytes.Load()) })
	m.gateWaitSeconds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "etcdgate_ingest_write_queue_wait_seconds_total",
		Help: "Time admitted write requests spent waiting for their turn to decode and append (limits.max_concurrent_writes).",
	})
	gateQueued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "etcdgate_ingest_write_queue_requests",
		Help: "Admitted write requests waiting for their turn to decode and append.",
	}, func() float64 { return float64(in.gate.queued()) })
	if reg != nil {
		reg.MustRegister(m.requestsRejected, m.requestsDecoded, m.seriesReceived, m.seriesRejected,
			m.samplesReceived, m.samplesAccepted, m.samplesRejected, m.samplesDropped,
			inflightRequests, inflightBytes, m.gateWaitSeconds, gateQueued)
		if in.ring != nil {
			reg.MustRegister(m.quorumFailures)
		}
		if in.ring != nil && in.ring.HA != nil {
			reg.MustRegister(m.samplesDeduped)
		}
	}
	return m
}
