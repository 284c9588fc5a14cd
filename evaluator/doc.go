// Package evaluator evaluates PromQL (and the MetricsQL extensions that
// cost little) over a tsdb.Queryable with Prometheus's semantics.
//
// Queries are parsed by github.com/VictoriaMetrics/metricsql; the AST is
// evaluated here. Evaluation is step-wise like Prometheus's engine: every
// expression yields, for each step of the query range, a vector (or a
// scalar), and a range query is an instant query repeated over steps that
// share one read of the store. Where PromQL and MetricsQL differ on a query
// valid in PromQL (rate extrapolation, lookback, label handling), PromQL
// wins.
//
// A fleet-wide aggregation of a range function (sum by (cluster) of a
// rate) is evaluated fused: series are folded into partial groups as they
// are read. Over a store that implements Pushdown (the ring), the nodes
// that hold the series fold them (Engine.EvalPartial) and return their
// partial aggregates, which merge here exactly (pushdown.go).
package evaluator
