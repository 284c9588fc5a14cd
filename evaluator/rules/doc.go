// Package rules evaluates Prometheus rule files in-process: recording rules
// whose results go back through the write path, and alerting rules with
// Prometheus's state machine (pending, firing, inactive; for and
// keep_firing_for), ALERTS and ALERTS_FOR_STATE series, restore of alert
// clocks after a restart, and a Manager that reloads groups without losing
// the state of unchanged rules.
//
// The package knows neither the query engine's wiring nor the ingest path:
// cmd hands the Manager a QueryFunc, an Appendable and a NotifyFunc
// (interface.go).
package rules
