// Package api owns etcdgate's HTTP surface: the Prometheus-compatible
// read API (series, labels, status), remote write at /api/v1/write,
// health, readiness and reload endpoints, and /metrics.
//
// JSON shapes and error types follow Prometheus's HTTP API so that
// Grafana, promtool and scripts work unchanged.
package api
