package slo

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/etcdgate/etcdgate/evaluator/rules"
)

// builtin is a built-in SLI: recording rules it needs first (evaluated
// every round, before the ratios), then the error and total queries with
// {{.window}}.
type builtin struct {
	pre        []rules.RuleSpec
	errorQuery string
	totalQuery string
}

// builtinParams lists each built-in's parameters with their defaults.
var builtinParams = map[string]map[string]string{
	"availability":   {},
	"request_errors": {"methods": "Range|Txn|Put|DeleteRange|LeaseGrant", "codes": failureCodes},
	"request_latency": {
		"source": "apply", "threshold": "", "methods": "Range|Txn|Put|DeleteRange|LeaseGrant",
	},
	"disk":              {"wal_fsync_p99_seconds": "0.5", "backend_commit_p99_seconds": "0.25"},
	"inspection_health": {},
}

// failureCodes are the gRPC codes the etcd mixin counts as failed
// requests: server-side faults, not a client's bad request.
const failureCodes = "Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"

// latencySources are the histograms request_latency reads, with their
// default threshold (a bucket boundary: the SLI counts requests in the
// bucket at or under it).
var latencySources = map[string]struct{ metric, matchers, threshold string }{
	// etcd's apply duration, exposed by every etcd: buckets are powers of
	// two times 100µs.
	"apply": {"etcd_server_apply_duration_seconds", `success="true"`, "0.1024"},
	// gRPC handling time; needs etcd --metrics=extensive.
	"grpc": {"grpc_server_handling_seconds", `grpc_type="unary",grpc_method=~"%s"`, "0.1"},
}

// builtinSLI returns the built-in SLI name for the SLO slo. Its recording
// rules carry the label slo, so that two SLOs on one built-in do not
// write the same series.
func builtinSLI(name string, params map[string]string, by []string, slo string) (builtin, error) {
	defaults, ok := builtinParams[name]
	if !ok {
		names := make([]string, 0, len(builtinParams))
		for n := range builtinParams {
			names = append(names, n)
		}
		sort.Strings(names)
		return builtin{}, fmt.Errorf("sli: unknown builtin %q (want one of %s)", name, strings.Join(names, ", "))
	}
	p := map[string]string{}
	for k, v := range defaults {
		p[k] = v
	}
	for k, v := range params {
		if _, ok := defaults[k]; !ok {
			return builtin{}, fmt.Errorf("sli: builtin %s has no parameter %q", name, k)
		}
		p[k] = v
	}
	b := strings.Join(by, ", ")
	switch name {
	case "availability":
		return availability(b, slo), nil
	case "request_errors":
		sel := fmt.Sprintf(`grpc_server_handled_total{grpc_type="unary",grpc_method=~"%s"`, p["methods"])
		return builtin{
			errorQuery: fmt.Sprintf(`sum by (%s) (rate(%s,grpc_code=~"%s"}[{{.window}}]))`, b, sel, p["codes"]),
			totalQuery: fmt.Sprintf(`sum by (%s) (rate(%s}[{{.window}}]))`, b, sel),
		}, nil
	case "request_latency":
		return requestLatency(p, b)
	case "disk":
		return disk(p, b, slo)
	}
	return builtin{
		errorQuery: fmt.Sprintf(`sum by (%s) (count_over_time(etcdgate_inspection_success[{{.window}}]) - sum_over_time(etcdgate_inspection_success[{{.window}}]))`, b),
		totalQuery: fmt.Sprintf(`sum by (%s) (count_over_time(etcdgate_inspection_success[{{.window}}]))`, b),
	}, nil
}

// memberTimeShare is the SLI of a 0/1 series per member recorded every
// round: the share of member-rounds that were bad.
func memberTimeShare(record, b, slo string) (string, string) {
	sel := fmt.Sprintf(`%s{slo=%q}`, record, slo)
	return fmt.Sprintf(`sum by (%s) (sum_over_time(%s[{{.window}}]))`, b, sel),
		fmt.Sprintf(`sum by (%s) (count_over_time(%s[{{.window}}]))`, b, sel)
}

func preRule(record, expr, slo string) []rules.RuleSpec {
	return []rules.RuleSpec{{Record: record, Expr: expr, Labels: map[string]string{"slo": slo}}}
}

// availability: a member is unavailable while it has no leader or its
// database reached the quota (etcd raises NOSPACE and refuses writes).
// The label c keeps both conditions apart through `or`.
func availability(b, slo string) builtin {
	const record = "slo:etcd_member_unavailable:bool"
	expr := fmt.Sprintf(`max by (%s, instance) (
  label_replace(etcd_server_has_leader == bool 0, "c", "leader", "", "")
  or
  label_replace(etcd_mvcc_db_total_size_in_bytes >= bool etcd_server_quota_backend_bytes, "c", "space", "", "")
)`, b)
	e, t := memberTimeShare(record, b, slo)
	return builtin{pre: preRule(record, expr, slo), errorQuery: e, totalQuery: t}
}

func requestLatency(p map[string]string, b string) (builtin, error) {
	src, ok := latencySources[p["source"]]
	if !ok {
		return builtin{}, fmt.Errorf("sli: request_latency source %q: want apply or grpc", p["source"])
	}
	th := p["threshold"]
	if th == "" {
		th = src.threshold
	}
	if _, err := strconv.ParseFloat(th, 64); err != nil {
		return builtin{}, fmt.Errorf("sli: request_latency threshold %q is not a number", th)
	}
	m := src.matchers
	if strings.Contains(m, "%s") {
		m = fmt.Sprintf(m, p["methods"])
	}
	return builtin{
		errorQuery: fmt.Sprintf(`sum by (%[1]s) (rate(%[2]s_count{%[3]s}[{{.window}}])) - sum by (%[1]s) (rate(%[2]s_bucket{%[3]s,le="%[4]s"}[{{.window}}]))`, b, src.metric, m, th),
		totalQuery: fmt.Sprintf(`sum by (%s) (rate(%s_count{%s}[{{.window}}]))`, b, src.metric, m),
	}, nil
}

// disk: a member's disk is slow in a round when the p99 of WAL fsync or
// backend commit over the last 5m is above its threshold (the etcd
// mixin's warning levels by default).
func disk(p map[string]string, b, slo string) (builtin, error) {
	for _, k := range []string{"wal_fsync_p99_seconds", "backend_commit_p99_seconds"} {
		if _, err := strconv.ParseFloat(p[k], 64); err != nil {
			return builtin{}, fmt.Errorf("sli: disk %s %q is not a number", k, p[k])
		}
	}
	const record = "slo:etcd_member_disk_slow:bool"
	expr := fmt.Sprintf(`max by (%[1]s, instance) (
  label_replace(histogram_quantile(0.99, sum by (%[1]s, instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m]))) > bool %[2]s, "c", "fsync", "", "")
  or
  label_replace(histogram_quantile(0.99, sum by (%[1]s, instance, le) (rate(etcd_disk_backend_commit_duration_seconds_bucket[5m]))) > bool %[3]s, "c", "commit", "", "")
)`, b, p["wal_fsync_p99_seconds"], p["backend_commit_p99_seconds"])
	e, t := memberTimeShare(record, b, slo)
	return builtin{pre: preRule(record, expr, slo), errorQuery: e, totalQuery: t}, nil
}
