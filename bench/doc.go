// Package bench is the capacity harness behind `etcdgate bench`: a
// synthetic etcd fleet generated from the /metrics page of a real etcd
// member, remote-written by many concurrent senders shaped like
// Prometheus's queue manager, while the harness measures what the target
// accepts, how fast it answers and what it costs in memory and CPU.
//
// The package talks to its targets over HTTP only and imports nothing of
// etcdgate, so it measures etcdgate, Prometheus and VictoriaMetrics alike.
//
// A run is one mode (steady, ramp, churn or query) played against each
// target in turn on the same fleet; the Report holds the figures side by
// side and renders them as Markdown, JSON and an SVG chart.
package bench
