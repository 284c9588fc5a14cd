package rules

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the rule manager's self-metrics, named after Prometheus's
// prometheus_rule_* with the etcdgate_ prefix. rule_group is "file;name".
type metrics struct {
	evalDuration        prometheus.Summary
	groupDuration       prometheus.Summary
	iterationsMissed    *prometheus.CounterVec
	iterations          *prometheus.CounterVec
	evalTotal           *prometheus.CounterVec
	evalFailures        *prometheus.CounterVec
	groupInterval       *prometheus.GaugeVec
	groupLastEvalTime   *prometheus.GaugeVec
	groupLastDuration   *prometheus.GaugeVec
	groupRules          *prometheus.GaugeVec
	groupLastEvalSample *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	objectives := map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}
	vec := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"rule_group"})
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"rule_group"})
	}
	m := &metrics{
		evalDuration: prometheus.NewSummary(prometheus.SummaryOpts{
			Name: "etcdgate_rule_evaluation_duration_seconds", Help: "The duration for a rule to execute.", Objectives: objectives,
		}),
		groupDuration: prometheus.NewSummary(prometheus.SummaryOpts{
			Name: "etcdgate_rule_group_duration_seconds", Help: "The duration of rule group evaluations.", Objectives: objectives,
		}),
		iterationsMissed:    counter("etcdgate_rule_group_iterations_missed_total", "The total number of rule group evaluations missed due to slow rule group evaluation."),
		iterations:          counter("etcdgate_rule_group_iterations_total", "The total number of scheduled rule group evaluations, whether executed or missed."),
		evalTotal:           counter("etcdgate_rule_evaluations_total", "The total number of rule evaluations."),
		evalFailures:        counter("etcdgate_rule_evaluation_failures_total", "The total number of rule evaluation failures."),
		groupInterval:       vec("etcdgate_rule_group_interval_seconds", "The interval of a rule group."),
		groupLastEvalTime:   vec("etcdgate_rule_group_last_evaluation_timestamp_seconds", "The timestamp of the last rule group evaluation in seconds."),
		groupLastDuration:   vec("etcdgate_rule_group_last_duration_seconds", "The duration of the last rule group evaluation."),
		groupRules:          vec("etcdgate_rule_group_rules", "The number of rules."),
		groupLastEvalSample: vec("etcdgate_rule_group_last_evaluation_samples", "The number of samples returned during the last rule group evaluation."),
	}
	if reg != nil {
		reg.MustRegister(m.evalDuration, m.groupDuration, m.iterationsMissed, m.iterations, m.evalTotal,
			m.evalFailures, m.groupInterval, m.groupLastEvalTime, m.groupLastDuration, m.groupRules, m.groupLastEvalSample)
	}
	return m
}

// deleteGroup drops the series of a group that a reload removed.
func (m *metrics) deleteGroup(key string) {
	for _, v := range []*prometheus.CounterVec{m.iterationsMissed, m.iterations, m.evalTotal, m.evalFailures} {
		v.DeleteLabelValues(key)
	}
	for _, v := range []*prometheus.GaugeVec{m.groupInterval, m.groupLastEvalTime, m.groupLastDuration, m.groupRules, m.groupLastEvalSample} {
		v.DeleteLabelValues(key)
	}
}
