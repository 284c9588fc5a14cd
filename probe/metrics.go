package probe

import "github.com/prometheus/client_golang/prometheus"

// metrics are the prober's self-metrics; the findings themselves are
// series emitted through the Emitter.
type metrics struct {
	runs       *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	requests   *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	emitErrors prometheus.Counter
	targets    prometheus.Gauge
	running    prometheus.Gauge
	delayed    prometheus.Counter
	panics     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_probe_runs_total",
			Help: "Inspection runs, by inspection and status (success, warning, failed).",
		}, []string{"inspection", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcdgate_probe_run_duration_seconds",
			Help:    "Time an inspection run took, by inspection.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"inspection"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_probe_etcd_requests_total",
			Help: "Requests sent to etcd clusters by inspections, retries included.",
		}, []string{"inspection"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_probe_etcd_received_bytes_total",
			Help: "Response bytes received from etcd clusters by inspections.",
		}, []string{"inspection"}),
		emitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_probe_emit_errors_total",
			Help: "Inspection runs whose series could not be stored.",
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_probe_targets",
			Help: "etcd clusters being inspected.",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_probe_running_inspections",
			Help: "Inspection runs in progress.",
		}),
		delayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_probe_delayed_runs_total",
			Help: "Times a due inspection waited because the concurrency limit was reached.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_probe_panics_total",
			Help: "Inspection runs that panicked (each is a failed record), by inspection.",
		}, []string{"inspection"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.duration, m.requests, m.bytes, m.emitErrors, m.targets, m.running, m.delayed, m.panics)
	}
	return m
}
