package grafana

// The classic dashboard schema (v1) is deprecated in the SDK in favour of
// dashboardv2, which only Grafana 12 with the v2 schema enabled imports;
// v1 JSON imports into every Grafana in use.
//lint:file-ignore SA1019 the v1 dashboard builder is chosen on purpose.

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Every series of an etcd fleet carries the standard labels cluster,
// product, scenario, size and region (the registry stamps them). The
// selectors below filter on them through the template variables.
const (
	// sel is the filter of the region, scenario and size variables.
	sel = `region=~"$region", scenario=~"$scenario", size=~"$size"`
	// one is the filter of the cluster variable.
	one = `cluster="$cluster"`
	// members is the series the variables read their values from: one a
	// member, present while the member is scraped.
	members = `etcd_server_has_leader{job="etcd"}`
	// budgetLeft and objective are recorded hourly (evaluator/slo):
	// last_over_time keeps them between two evaluations.
	budgetLeft = `last_over_time(slo:period_error_budget_remaining:ratio{%s}[2h])`
	objective  = `last_over_time(slo:objective:ratio[2h])`
	// info joins a series having only cluster (etcdgate's own per-target
	// series) to the standard labels: etcdgate_cluster_info has one
	// series per Kubernetes cluster of an etcd cluster, max folds them.
	info = `max by (cluster, product, scenario, size, region) (etcdgate_cluster_info{` + sel + `})`
)

// fleetVariables are region, scenario and size, each narrowing the next.
func fleetVariables(d *dashboard.DashboardBuilder) *dashboard.DashboardBuilder {
	return d.
		WithVariable(labelVariable("region", "region", members, true)).
		WithVariable(labelVariable("scenario", "scenario", `etcd_server_has_leader{job="etcd", region=~"$region"}`, true)).
		WithVariable(labelVariable("size", "size", `etcd_server_has_leader{job="etcd", region=~"$region", scenario=~"$scenario"}`, true))
}

// fleet is L1: the SLOs' error budget left and burn rate by region and
// scenario, the worst clusters, collection completeness, firing alerts.
func fleet() *dashboard.DashboardBuilder {
	budget := sprintf(budgetLeft, sel)
	burn := `slo:sli_error:ratio_rate%s{` + sel + `} / on(slo) group_left() (1 - ` + objective + `)`
	d := fleetVariables(newDashboard("etcdgate-fleet", "etcd fleet (L1)",
		"SLO error budget and burn rate by region and scenario, the worst clusters, collection completeness."))
	return d.
		WithRow(dashboard.NewRowBuilder("Service levels")).
		WithPanel(single("Error budget left, worst cluster per SLO", "percentunit", 12, 6,
			query(`min by (slo) (`+budget+`)`, "{{slo}}"))).
		WithPanel(single("Firing alerts by severity", "none", 6, 6,
			query(`count by (severity) (ALERTS{alertstate="firing", `+sel+`})`, "{{severity}}"))).
		WithPanel(single("Clusters", "none", 6, 6,
			query(`count(count by (cluster) (etcd_server_has_leader{job="etcd", `+sel+`}))`, "clusters"))).
		WithPanel(graph("Error budget left by region and scenario (worst cluster)", "percentunit", 12, 8,
			query(`min by (region, scenario, slo) (`+budget+`)`, "{{region}} {{scenario}} {{slo}}"))).
		WithPanel(graph("Burn rate over 1h by region and scenario (1 = budget spent in the SLO window)", "none", 12, 8,
			query(`max by (region, scenario, slo) (`+sprintf(burn, "1h")+`)`, "{{region}} {{scenario}} {{slo}}"))).
		WithPanel(graph("Burn rate over 5m, worst cluster per SLO", "none", 12, 8,
			query(`max by (slo) (`+sprintf(burn, "5m")+`)`, "{{slo}}"))).
		WithPanel(linkClusters(grid("Worst clusters", "The 10 clusters with the least error budget left in any SLO.", 12, 8,
			tableQuery(`bottomk(10, min by (cluster, region, scenario, size) (`+budget+`))`)))).
		WithRow(dashboard.NewRowBuilder("Collection completeness")).
		WithPanel(single("Samples received over the last hour", "percentunit", 6, 6,
			query(`sum(etcdgate_target_completeness_ratio{window="1h"} * on(cluster, job, instance) etcdgate_target_series * on(cluster) group_left() `+info+`)
/ sum(etcdgate_target_series * on(cluster) group_left() `+info+`)`, "completeness"))).
		WithPanel(graph("Completeness over 5m by region (worst target)", "percentunit", 18, 6,
			query(`min by (region) (etcdgate_target_completeness_ratio{window="5m"} * on(cluster) group_left(region) `+info+`)`, "{{region}}"))).
		WithPanel(linkClusters(grid("Least complete targets (1h)", "Scrape targets that delivered the smallest share of the samples their series and interval expect.", 24, 8,
			tableQuery(`bottomk(10, etcdgate_target_completeness_ratio{window="1h"} * on(cluster) group_left(region, scenario, size) `+info+`)`))))
}

// scenario is L2: capacity and headroom per region for the chosen
// scenarios, and the scale of the biggest products and clusters.
func scenario() *dashboard.DashboardBuilder {
	m := func(name string) string { return name + `{job="etcd", ` + sel + `}` }
	d := fleetVariables(newDashboard("etcdgate-scenario", "etcd scenario (L2)",
		"Capacity and headroom per region: db size against quota, members, keys; the biggest products and clusters."))
	return d.
		WithRow(dashboard.NewRowBuilder("Capacity per region")).
		WithPanel(graph("Fullest member's db size / quota by region", "percent", 12, 8,
			query(`max by (region) (instance:etcd_db_used_quota:percent{`+sel+`})`, "{{region}}"))).
		WithPanel(graph("Least headroom (quota - db size) by region", "bytes", 12, 8,
			query(`min by (region) (`+m("etcd_server_quota_backend_bytes")+` - `+m("etcd_mvcc_db_total_size_in_bytes")+`)`, "{{region}}"))).
		WithPanel(graph("Members and clusters by region", "none", 12, 8,
			query(`count by (region) (`+m("etcd_server_has_leader")+`)`, "{{region}} members"),
			query(`count by (region) (count by (cluster, region) (`+m("etcd_server_has_leader")+`))`, "{{region}} clusters"))).
		WithPanel(graph("Keys by region", "short", 12, 8,
			query(`sum by (region) (max by (cluster, region) (`+m("etcd_debugging_mvcc_keys_total")+`))`, "{{region}}"))).
		WithPanel(graph("Requests by region", "reqps", 12, 8,
			query(`sum by (region) (rate(`+m("grpc_server_started_total")+`[$__rate_interval]))`, "{{region}}"))).
		WithPanel(graph("WAL fsync p99, slowest member by region", "s", 12, 8,
			query(`max by (region) (instance:etcd_disk_wal_fsync_duration_seconds:p99_5m{`+sel+`})`, "{{region}}"))).
		WithRow(dashboard.NewRowBuilder("Biggest")).
		WithPanel(grid("Biggest products by db size", "Sum of each cluster's largest member.", 8, 8,
			tableQuery(`topk(10, sum by (product) (max by (cluster, product) (`+m("etcd_mvcc_db_total_size_in_bytes")+`)))`))).
		WithPanel(linkClusters(grid("Biggest clusters by db size", "Each cluster's largest member.", 8, 8,
			tableQuery(`topk(10, max by (cluster, region, size) (`+m("etcd_mvcc_db_total_size_in_bytes")+`))`)))).
		WithPanel(linkClusters(grid("Biggest clusters by keys", "From the members' metrics; inspections count them exactly.", 8, 8,
			tableQuery(`topk(10, max by (cluster, region, size) (`+m("etcd_debugging_mvcc_keys_total")+`))`))))
}

// cluster is L3: one cluster's SLIs, leader, latencies, db size against
// quota, the inspections' findings and its firing alerts.
func cluster() *dashboard.DashboardBuilder {
	m := func(name string) string { return name + `{job="etcd", ` + one + `}` }
	d := fleetVariables(newDashboard("etcdgate-cluster", "etcd cluster (L3)",
		"One etcd cluster: every SLI, leader, WAL fsync and backend commit latency, db size against quota, inspections, alerts."))
	return d.
		WithVariable(labelVariable("cluster", "cluster", `etcd_server_has_leader{job="etcd", `+sel+`}`, false)).
		WithRow(dashboard.NewRowBuilder("Service levels")).
		WithPanel(single("Error budget left", "percentunit", 12, 6,
			query(sprintf(budgetLeft, one), "{{slo}}"))).
		WithPanel(single("Has leader (members agreeing)", "none", 6, 6,
			query(`sum(`+m("etcd_server_has_leader")+`)`, "with a leader"),
			query(`count(`+m("etcd_server_has_leader")+`)`, "members"))).
		WithPanel(single("Firing alerts", "none", 6, 6,
			query(`count(ALERTS{alertstate="firing", `+one+`}) or vector(0)`, "alerts"))).
		WithPanel(graph("SLIs over 5m (good / total)", "percentunit", 12, 8,
			query(`1 - slo:sli_error:ratio_rate5m{`+one+`}`, "{{slo}}"))).
		WithPanel(graph("Burn rate over 1h", "none", 12, 8,
			query(`slo:sli_error:ratio_rate1h{`+one+`} / on(slo) group_left() (1 - `+objective+`)`, "{{slo}}"))).
		WithRow(dashboard.NewRowBuilder("Raft")).
		WithPanel(graph("Leader", "none", 8, 8,
			query(m("etcd_server_is_leader"), "{{instance}} is leader"),
			query(m("etcd_server_has_leader"), "{{instance}} has leader"))).
		WithPanel(graph("Leader changes (15m)", "none", 8, 8,
			query(`increase(`+m("etcd_server_leader_changes_seen_total")+`[15m])`, "{{instance}}"))).
		WithPanel(graph("Proposals pending and failed", "none", 8, 8,
			query(m("etcd_server_proposals_pending"), "{{instance}} pending"),
			query(`rate(`+m("etcd_server_proposals_failed_total")+`[$__rate_interval])`, "{{instance}} failed/s"))).
		WithRow(dashboard.NewRowBuilder("Disk and network")).
		WithPanel(graph("WAL fsync p99", "s", 8, 8,
			query(`instance:etcd_disk_wal_fsync_duration_seconds:p99_5m{`+one+`}`, "{{instance}}"))).
		WithPanel(graph("Backend commit p99", "s", 8, 8,
			query(`instance:etcd_disk_backend_commit_duration_seconds:p99_5m{`+one+`}`, "{{instance}}"))).
		WithPanel(graph("Peer round trip p99", "s", 8, 8,
			query(`instance:etcd_network_peer_round_trip_time_seconds:p99_5m{`+one+`}`, "{{instance}}"))).
		WithPanel(graph("db size vs quota", "bytes", 12, 8,
			query(m("etcd_mvcc_db_total_size_in_bytes"), "{{instance}} size"),
			query(m("etcd_mvcc_db_total_size_in_use_in_bytes"), "{{instance}} in use"),
			query(`max(`+m("etcd_server_quota_backend_bytes")+`)`, "quota"))).
		WithPanel(graph("Requests by method and code", "reqps", 12, 8,
			query(`sum by (grpc_method, grpc_code) (rate(`+m("grpc_server_handled_total")+`[$__rate_interval]))`, "{{grpc_method}} {{grpc_code}}"))).
		WithRow(dashboard.NewRowBuilder("Inspections and alerts")).
		WithPanel(grid("Inspections' findings (last run within 1h)", "Every etcdgate_inspection_* series of the cluster's latest runs.", 12, 10,
			tableQuery(`last_over_time({__name__=~"etcdgate_inspection_.+", `+one+`}[1h])`))).
		WithPanel(grid("Firing alerts", "", 12, 10,
			tableQuery(`ALERTS{alertstate="firing", `+one+`}`))).
		WithPanel(graph("Collection completeness over 5m", "percentunit", 24, 6,
			query(`etcdgate_target_completeness_ratio{window="5m", `+one+`}`, "{{instance}}")))
}

// troubleshooting goes from an etcd cluster to the Kubernetes clusters it
// serves and back, through etcdgate_cluster_info, with the alerts of
// both.
func troubleshooting() *dashboard.DashboardBuilder {
	const k8s = `kubernetes_cluster="$kubernetes_cluster"`
	return newDashboard("etcdgate-troubleshooting", "etcd troubleshooting",
		"From an etcd cluster to the Kubernetes clusters it serves and back, with the alerts of both.").
		WithVariable(labelVariable("cluster", "cluster", `etcdgate_cluster_info`, false)).
		WithVariable(labelVariable("kubernetes_cluster", "kubernetes_cluster", `etcdgate_cluster_info`, false)).
		WithRow(dashboard.NewRowBuilder("etcd cluster $cluster")).
		WithPanel(grid("Kubernetes clusters served by $cluster", "", 12, 8,
			tableQuery(`etcdgate_cluster_info{`+one+`}`))).
		WithPanel(grid("Firing alerts of $cluster", "", 12, 8,
			tableQuery(`ALERTS{alertstate="firing", `+one+`}`))).
		WithPanel(grid("Alerts of the Kubernetes clusters $cluster serves", "Alerts labelled kubernetes_cluster with a cluster that etcdgate_cluster_info links to $cluster.", 12, 8,
			tableQuery(`ALERTS{alertstate="firing"} * on(kubernetes_cluster) group_left() etcdgate_cluster_info{`+one+`}`))).
		WithPanel(graph("Members with a leader in $cluster", "none", 12, 8,
			query(`sum(etcd_server_has_leader{job="etcd", `+one+`})`, "with a leader"),
			query(`count(etcd_server_has_leader{job="etcd", `+one+`})`, "members"))).
		WithRow(dashboard.NewRowBuilder("Kubernetes cluster $kubernetes_cluster")).
		WithPanel(linkClusters(grid("etcd clusters behind $kubernetes_cluster", "", 12, 8,
			tableQuery(`etcdgate_cluster_info{`+k8s+`}`)))).
		WithPanel(grid("Firing alerts of $kubernetes_cluster", "", 12, 8,
			tableQuery(`ALERTS{alertstate="firing", `+k8s+`}`))).
		WithPanel(grid("Alerts of the etcd clusters behind $kubernetes_cluster", "", 12, 8,
			tableQuery(`ALERTS{alertstate="firing"} * on(cluster) group_left(kubernetes_cluster) etcdgate_cluster_info{`+k8s+`}`))).
		WithPanel(graph("Error budget left of the etcd clusters behind $kubernetes_cluster", "percentunit", 12, 8,
			query(``+sprintf(budgetLeft, "")+` * on(cluster) group_left(kubernetes_cluster) etcdgate_cluster_info{`+k8s+`}`, "{{cluster}} {{slo}}")))
}
