// Package api owns etcdgate's HTTP surface: the Prometheus-compatible
// query API (instant and range queries, series, labels, metadata,
// rules, alerts, status), remote write at /api/v1/write and remote read
// at /api/v1/read, the SLO and inspection APIs, the built-in pages,
// health, readiness, reload and /metrics, authentication by role from a
// Prometheus web config, and in a ring the internal endpoints peers call
// (push, select, aggregate, and each node's rules, SLOs and inspections).
//
// JSON shapes and error types follow Prometheus's HTTP API so that
// Grafana, promtool and scripts work unchanged.
package api
