// Package slo turns short SLO specs into Prometheus rules: recording rules
// for the error ratio over the windows of the Google SRE workbook's
// multi-window multi-burn-rate alerts (5m, 30m, 1h, 2h, 6h, 1d, 3d), the
// alerts themselves (page: 14.4× over 1h and 5m, 6× over 6h and 30m;
// ticket: 3× over 1d and 2h, 1× over 3d and 6h), and the error budget
// left over the SLO window, as Sloth and Pyrra generate them. The rules
// are standard: they run in etcdgate's rule manager and in any Prometheus.
//
// Built-in SLIs cover what etcd operators measure: availability (a leader
// and no NOSPACE), request errors, request latency, disk latency and the
// probe's inspection health (sli.go).
package slo
