package notifier

import "github.com/prometheus/client_golang/prometheus"

// metrics are Prometheus's prometheus_notifications_* with the etcdgate_
// prefix.
type metrics struct {
	latency    *prometheus.SummaryVec
	errors     *prometheus.CounterVec
	sent       *prometheus.CounterVec
	retries    *prometheus.CounterVec
	dropped    prometheus.Counter
	queueLen   prometheus.GaugeFunc
	queueCap   prometheus.Gauge
	discovered prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, queueLen, alertmanagers func() float64) *metrics {
	am := []string{"alertmanager"}
	m := &metrics{
		latency: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: "etcdgate_notifications_latency_seconds", Help: "Latency quantiles for sending alert notifications.",
			Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001},
		}, am),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_notifications_errors_total", Help: "Total number of sent alerts affected by errors.",
		}, am),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_notifications_sent_total", Help: "Total number of alerts sent.",
		}, am),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_notifications_retries_total", Help: "Total number of retried batch sends.",
		}, am),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_notifications_dropped_total", Help: "Total number of alerts dropped due to errors when sending to Alertmanager or a full queue.",
		}),
		queueLen: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "etcdgate_notifications_queue_length", Help: "The number of alert notifications in the queue.",
		}, queueLen),
		queueCap: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_notifications_queue_capacity", Help: "The capacity of the alert notifications queue.",
		}),
		discovered: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "etcdgate_notifications_alertmanagers_discovered", Help: "The number of alertmanagers configured.",
		}, alertmanagers),
	}
	if reg != nil {
		reg.MustRegister(m.latency, m.errors, m.sent, m.retries, m.dropped, m.queueLen, m.queueCap, m.discovered)
	}
	return m
}
