package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
)

// The recorded SLO series (evaluator/slo) the pages read, as the Grafana
// dashboards do: the budget is recorded hourly, last_over_time keeps it
// between two evaluations.
const (
	pageBudgetLeft = `last_over_time(slo:period_error_budget_remaining:ratio%s[2h])`
	pageBurn1h     = `slo:sli_error:ratio_rate1h%s / on(slo) group_left() (1 - last_over_time(slo:objective:ratio[2h]))`
)

// byKey indexes a vector by the values of names, joined with "\xff".
func byKey(v evaluator.Vector, names ...string) map[string]float64 {
	m := make(map[string]float64, len(v))
	for _, s := range v {
		m[key(s, names...)] = s.F
	}
	return m
}

func key(s evaluator.Sample, names ...string) string {
	vals := make([]string, len(names))
	for i, n := range names {
		vals[i] = s.Metric.Get(n)
	}
	return strings.Join(vals, "\xff")
}

func valueOr(m map[string]float64, k string) float64 {
	if v, ok := m[k]; ok {
		return v
	}
	return math.NaN()
}

// ---- L1: the fleet ----

type budgetRow struct {
	Region, Scenario, SLO  string
	Left, Errors1h, Burn1h float64
}

type worstCluster struct {
	Cluster, Region, Scenario, Size string
	Left, Errors1h                  float64
}

type targetRow struct {
	Cluster, Job, Instance string
	Interval               time.Duration
	Series                 int
	LastSeen               time.Time
	Ratio5m, Ratio1h       float64
	Ratio1d                float64
}

type completenessSummary struct {
	Targets, Below, Unknown int
	// Ratio is the share of the expected samples received over 1h,
	// weighted by each target's series.
	Ratio float64
	Worst []targetRow
}

type fleetData struct {
	Clusters, Members float64
	Scenarios         []string
	Firing, Pending   int
	BySeverity        []kv
	Budgets           []budgetRow
	Worst             []worstCluster
	// WorstByErrors: no budget is recorded yet, Worst ranks by the 1h
	// error ratio.
	WorstByErrors bool
	Completeness  completenessSummary
}

type kv struct {
	Key   string
	Value float64
}

func (p *pages) fleet(w http.ResponseWriter, r *http.Request) {
	pg := &page{Title: "Fleet", Nav: "fleet"}
	q, cancel := p.querier(w, r, pg)
	if q == nil {
		return
	}
	defer cancel()
	d := &fleetData{Clusters: q.scalar(`count(count by (cluster) (etcd_server_has_leader))`),
		Members: q.scalar(`count(etcd_server_has_leader)`)}
	for _, s := range q.vector(fmt.Sprintf(`topk(%d, count by (scenario) (etcd_server_has_leader))`, pageMaxRows)) {
		if sc := s.Metric.Get("scenario"); sc != "" {
			d.Scenarios = append(d.Scenarios, sc)
		}
	}
	slices.Sort(d.Scenarios)
	budget := fmt.Sprintf(pageBudgetLeft, "")
	// Rows are the region, scenario and SLO sets of the 1h error ratio
	// (recorded at every evaluation) and of the budget (recorded hourly).
	keyOf := func(s evaluator.Sample) string { return key(s, "region", "scenario", "slo") }
	leftV := q.vector(fmt.Sprintf(`bottomk(%d, min by (region, scenario, slo) (%s))`, pageMaxRows, budget))
	left := byKey(leftV, "region", "scenario", "slo")
	burn := byKey(q.vector(fmt.Sprintf(`topk(%d, max by (region, scenario, slo) (%s))`, pageMaxRows, fmt.Sprintf(pageBurn1h, ""))),
		"region", "scenario", "slo")
	rows := q.vector(fmt.Sprintf(`topk(%d, max by (region, scenario, slo) (slo:sli_error:ratio_rate1h))`, pageMaxRows))
	seen := map[string]bool{}
	for _, s := range rows {
		seen[keyOf(s)] = true
	}
	for _, s := range leftV {
		if !seen[keyOf(s)] && len(rows) < pageMaxRows {
			rows = append(rows, evaluator.Sample{Metric: s.Metric, F: math.NaN()})
		}
	}
	groups, warnings := p.api.allRuleGroups(q.ctx)
	pg.Warnings = append(pg.Warnings, warnings...)
	objectives := sloObjectives(groups)
	for _, s := range rows {
		k := keyOf(s)
		row := budgetRow{Region: s.Metric.Get("region"), Scenario: s.Metric.Get("scenario"), SLO: s.Metric.Get("slo"),
			Left: valueOr(left, k), Errors1h: s.F, Burn1h: valueOr(burn, k)}
		if o, ok := objectives[row.SLO]; ok && math.IsNaN(row.Burn1h) && o < 1 {
			// The objective's series is recorded hourly too; its rule
			// says it already.
			row.Burn1h = row.Errors1h / (1 - o)
		}
		d.Budgets = append(d.Budgets, row)
	}
	slices.SortFunc(d.Budgets, func(x, y budgetRow) int {
		return cmp.Or(cmp.Compare(x.Region, y.Region), cmp.Compare(x.Scenario, y.Scenario), cmp.Compare(x.SLO, y.SLO))
	})
	for _, s := range q.vector(fmt.Sprintf(`bottomk(%d, min by (cluster, region, scenario, size) (%s))`, pageTopN, budget)) {
		d.Worst = append(d.Worst, worstCluster{Cluster: s.Metric.Get("cluster"), Region: s.Metric.Get("region"),
			Scenario: s.Metric.Get("scenario"), Size: s.Metric.Get("size"), Left: s.F, Errors1h: math.NaN()})
	}
	slices.SortStableFunc(d.Worst, func(x, y worstCluster) int { return cmp.Compare(x.Left, y.Left) })
	if len(d.Worst) == 0 {
		// The budget is recorded hourly: until then, the clusters with
		// the highest 1h error ratio of any SLO.
		d.WorstByErrors = true
		for _, s := range q.vector(fmt.Sprintf(`topk(%d, max by (cluster, region, scenario, size) (slo:sli_error:ratio_rate1h))`, pageTopN)) {
			d.Worst = append(d.Worst, worstCluster{Cluster: s.Metric.Get("cluster"), Region: s.Metric.Get("region"),
				Scenario: s.Metric.Get("scenario"), Size: s.Metric.Get("size"), Left: math.NaN(), Errors1h: s.F})
		}
		slices.SortStableFunc(d.Worst, func(x, y worstCluster) int { return cmp.Compare(y.Errors1h, x.Errors1h) })
	}
	sev := map[string]float64{}
	for _, a := range collectAlerts(groups) {
		if a.State == "firing" {
			d.Firing++
			sev[cmp.Or(a.Severity, "none")]++
		} else {
			d.Pending++
		}
	}
	for k, v := range sev {
		d.BySeverity = append(d.BySeverity, kv{k, v})
	}
	slices.SortFunc(d.BySeverity, func(x, y kv) int { return cmp.Compare(x.Key, y.Key) })
	d.Completeness = p.completeness(q, pg)
	pg.Data = d
	pg.Charts = []chart{
		q.chart("errors", "SLI error ratio over 1h by region, worst cluster and SLO", "percent",
			fmt.Sprintf(`topk(%d, max by (region) (slo:sli_error:ratio_rate1h))`, pageTopN), "region"),
		q.chart("completeness", "Samples collected over 5m by region, worst target", "percent",
			fmt.Sprintf(`bottomk(%d, min by (region) (etcdgate_target_completeness_ratio{window="5m"} * on(cluster) group_left(region) max by (cluster, region) (etcdgate_cluster_info)))`, pageTopN), "region"),
		q.chart("burn", "Burn rate over 1h by region, worst cluster (1 = budget spent in the SLO window)", "",
			fmt.Sprintf(`topk(%d, max by (region) (%s))`, pageTopN, fmt.Sprintf(pageBurn1h, "")), "region"),
		q.chart("budget", "Error budget left by region, worst cluster", "percent",
			fmt.Sprintf(`bottomk(%d, min by (region) (%s))`, pageTopN, budget), "region"),
	}
	p.render(w, http.StatusOK, "fleet", pg)
}

// sloObjectives reads each SLO's objective (a ratio) from the rule that
// records slo:objective:ratio for it (evaluator/slo), whose query is
// the number itself.
func sloObjectives(groups []RuleGroup) map[string]float64 {
	out := map[string]float64{}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alerting || r.Name != "slo:objective:ratio" || r.Labels["slo"] == "" {
				continue
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(r.Query), 64); err == nil {
				out[r.Labels["slo"]] = v
			}
		}
	}
	return out
}

// completeness summarizes the collection of every target over 1h.
func (p *pages) completeness(q *querier, pg *page) completenessSummary {
	statuses, warnings := p.api.targetStatuses(q.ctx, targetsQuery{now: q.now}, nil)
	pg.Warnings = append(pg.Warnings, warnings...)
	var c completenessSummary
	var got, want float64
	var worst []ingest.TargetStatus
	for _, s := range statuses {
		c.Targets++
		r := s.Ratio[1]
		if math.IsNaN(r) {
			c.Unknown++
			continue
		}
		got, want = got+r*float64(s.Series), want+float64(s.Series)
		if r < 0.9999 {
			c.Below++
			worst = append(worst, s)
		}
	}
	c.Ratio = math.NaN()
	if want > 0 {
		c.Ratio = got / want
	}
	slices.SortStableFunc(worst, func(x, y ingest.TargetStatus) int { return cmp.Compare(x.Ratio[1], y.Ratio[1]) })
	for _, s := range worst[:min(len(worst), pageTopN)] {
		c.Worst = append(c.Worst, newTargetRow(s))
	}
	return c
}

func newTargetRow(s ingest.TargetStatus) targetRow {
	return targetRow{Cluster: s.Cluster, Job: s.Job, Instance: s.Instance, Interval: s.Interval, Series: s.Series, LastSeen: s.LastSeen,
		Ratio5m: s.Ratio[0], Ratio1h: s.Ratio[1], Ratio1d: s.Ratio[2]}
}

// ---- L2: a scenario ----

type regionRow struct {
	Region                                 string
	Clusters, Members, FullestRatio, Spare float64
}

type capacityRow struct {
	Cluster, Region, Size             string
	Members, DB, Quota, UsedRatio, KV float64
}

type scenarioData struct {
	Name     string
	Regions  []regionRow
	Clusters []capacityRow
	Products []kv
}

func (p *pages) scenario(w http.ResponseWriter, r *http.Request) {
	name := p.pathName(w, r, "scenario")
	if name == "" {
		return
	}
	pg := &page{Title: "Scenario " + name, Nav: "fleet"}
	q, cancel := p.querier(w, r, pg)
	if q == nil {
		return
	}
	defer cancel()
	sel := `{scenario=` + quote(name) + `}`
	m := func(metric string) string { return metric + sel }
	used := `(` + m("etcd_mvcc_db_total_size_in_bytes") + ` / ` + m("etcd_server_quota_backend_bytes") + `)`
	clusters := q.vector(fmt.Sprintf(`topk(%d, count by (region) (count by (cluster, region) (%s)))`, pageMaxRows, m("etcd_server_has_leader")))
	if len(clusters) == 0 && len(pg.Warnings) == 0 {
		p.fail(w, http.StatusNotFound, fmt.Sprintf("no etcd cluster of scenario %q reports (etcd_server_has_leader{scenario=%q} is empty)", name, name))
		return
	}
	d := &scenarioData{Name: name}
	members := byKey(q.vector(`count by (region) (`+m("etcd_server_has_leader")+`)`), "region")
	fullest := byKey(q.vector(`max by (region) `+used), "region")
	spare := byKey(q.vector(`min by (region) (`+m("etcd_server_quota_backend_bytes")+` - `+m("etcd_mvcc_db_total_size_in_bytes")+`)`), "region")
	for _, s := range clusters {
		reg := s.Metric.Get("region")
		d.Regions = append(d.Regions, regionRow{Region: reg, Clusters: s.F, Members: valueOr(members, reg),
			FullestRatio: valueOr(fullest, reg), Spare: valueOr(spare, reg)})
	}
	slices.SortFunc(d.Regions, func(x, y regionRow) int { return cmp.Compare(x.Region, y.Region) })
	// The fullest clusters, then their sizes, quotas and members asked of
	// exactly those clusters.
	top := q.vector(fmt.Sprintf(`topk(%d, max by (cluster, region, size) %s)`, pageTopN*2, used))
	if len(top) > 0 {
		names := make([]string, len(top))
		for i, s := range top {
			names[i] = regexp.QuoteMeta(s.Metric.Get("cluster"))
		}
		one := `{scenario=` + quote(name) + `, cluster=~` + quote(strings.Join(names, "|")) + `}`
		db := byKey(q.vector(`max by (cluster) (etcd_mvcc_db_total_size_in_bytes`+one+`)`), "cluster")
		quota := byKey(q.vector(`max by (cluster) (etcd_server_quota_backend_bytes`+one+`)`), "cluster")
		mem := byKey(q.vector(`count by (cluster) (etcd_server_has_leader`+one+`)`), "cluster")
		keys := byKey(q.vector(`max by (cluster) (etcd_debugging_mvcc_keys_total`+one+`)`), "cluster")
		for _, s := range top {
			c := s.Metric.Get("cluster")
			d.Clusters = append(d.Clusters, capacityRow{Cluster: c, Region: s.Metric.Get("region"), Size: s.Metric.Get("size"),
				UsedRatio: s.F, DB: valueOr(db, c), Quota: valueOr(quota, c), Members: valueOr(mem, c), KV: valueOr(keys, c)})
		}
		slices.SortStableFunc(d.Clusters, func(x, y capacityRow) int { return cmp.Compare(y.UsedRatio, x.UsedRatio) })
	}
	for _, s := range q.vector(fmt.Sprintf(`topk(%d, sum by (product) (max by (cluster, product) (%s)))`, pageTopN, m("etcd_mvcc_db_total_size_in_bytes"))) {
		d.Products = append(d.Products, kv{s.Metric.Get("product"), s.F})
	}
	slices.SortStableFunc(d.Products, func(x, y kv) int { return cmp.Compare(y.Value, x.Value) })
	pg.Data = d
	pg.Charts = []chart{
		q.chart("fullest", "Fullest member's db size / quota by region", "percent", fmt.Sprintf(`topk(%d, max by (region) %s)`, pageTopN, used), "region"),
		q.chart("members", "Members by region", "", fmt.Sprintf(`topk(%d, count by (region) (%s))`, pageTopN, m("etcd_server_has_leader")), "region"),
	}
	p.render(w, http.StatusOK, "scenario", pg)
}

// ---- L3: a cluster ----

type memberRow struct {
	Instance                         string
	HasLeader, IsLeader, Changes1h   float64
	DB, InUse, Quota, WALp99, Commit float64
}

type sliRow struct {
	SLO                  string
	Good5m, Left, Burn1h float64
}

type infoRow struct{ Kubernetes, Product, Scenario, Size, Region string }

type clusterData struct {
	Name                             string
	Product, Scenario, Size, Region  string
	Kubernetes                       []infoRow
	Members                          []memberRow
	LeaderChanges1h, Leaders         float64
	SLIs                             []sliRow
	Inspections                      []InspectionRecord
	Alerts                           []alertRow
	InspectionsLimit, AlertsTruncate int
}

func (p *pages) cluster(w http.ResponseWriter, r *http.Request) {
	name := p.pathName(w, r, "cluster")
	if name == "" {
		return
	}
	pg := &page{Title: "Cluster " + name, Nav: "fleet"}
	q, cancel := p.querier(w, r, pg)
	if q == nil {
		return
	}
	defer cancel()
	sel := `{cluster=` + quote(name) + `}`
	m := func(metric string) string { return metric + sel }
	if n := q.scalar(`count(` + m("etcd_server_has_leader") + `) or count(` + m("etcdgate_cluster_info") + `)`); math.IsNaN(n) && len(pg.Warnings) == 0 {
		p.fail(w, http.StatusNotFound, fmt.Sprintf("no etcd cluster %q reports (neither etcd_server_has_leader nor etcdgate_cluster_info has cluster=%q)", name, name))
		return
	}
	d := &clusterData{Name: name, InspectionsLimit: 20}
	for i, s := range q.vector(`etcdgate_cluster_info` + sel) {
		if i == pageMaxRows {
			break
		}
		ir := infoRow{Kubernetes: s.Metric.Get("kubernetes_cluster"), Product: s.Metric.Get("product"), Scenario: s.Metric.Get("scenario"),
			Size: s.Metric.Get("size"), Region: s.Metric.Get("region")}
		d.Kubernetes = append(d.Kubernetes, ir)
		d.Product, d.Scenario, d.Size, d.Region = ir.Product, ir.Scenario, ir.Size, ir.Region
	}
	slices.SortFunc(d.Kubernetes, func(x, y infoRow) int { return cmp.Compare(x.Kubernetes, y.Kubernetes) })
	members := q.vector(fmt.Sprintf(`topk(%d, max by (instance, product, scenario, size, region) (%s))`, pageMaxRows, m("etcd_server_has_leader")))
	perInstance := func(query string) map[string]float64 {
		return byKey(q.vector(fmt.Sprintf(`topk(%d, max by (instance) (%s))`, pageMaxRows, query)), "instance")
	}
	isLeader := perInstance(m("etcd_server_is_leader"))
	changes := perInstance(`increase(` + m("etcd_server_leader_changes_seen_total") + `[1h])`)
	db := perInstance(m("etcd_mvcc_db_total_size_in_bytes"))
	inUse := perInstance(m("etcd_mvcc_db_total_size_in_use_in_bytes"))
	quota := perInstance(m("etcd_server_quota_backend_bytes"))
	wal := perInstance(`histogram_quantile(0.99, sum by (instance, le) (rate(` + m("etcd_disk_wal_fsync_duration_seconds_bucket") + `[5m])))`)
	commit := perInstance(`histogram_quantile(0.99, sum by (instance, le) (rate(` + m("etcd_disk_backend_commit_duration_seconds_bucket") + `[5m])))`)
	for _, s := range members {
		in := s.Metric.Get("instance")
		d.Members = append(d.Members, memberRow{Instance: in, HasLeader: s.F, IsLeader: valueOr(isLeader, in), Changes1h: valueOr(changes, in),
			DB: valueOr(db, in), InUse: valueOr(inUse, in), Quota: valueOr(quota, in), WALp99: valueOr(wal, in), Commit: valueOr(commit, in)})
		if d.Scenario == "" {
			d.Product, d.Scenario, d.Size, d.Region = s.Metric.Get("product"), s.Metric.Get("scenario"), s.Metric.Get("size"), s.Metric.Get("region")
		}
		if v := valueOr(isLeader, in); v == 1 {
			d.Leaders++
		}
	}
	slices.SortFunc(d.Members, func(x, y memberRow) int { return cmp.Compare(x.Instance, y.Instance) })
	d.LeaderChanges1h = q.scalar(`max(increase(` + m("etcd_server_leader_changes_seen_total") + `[1h]))`)
	good := byKey(q.vector(fmt.Sprintf(`topk(%d, 1 - max by (slo) (slo:sli_error:ratio_rate5m%s))`, pageMaxRows, sel)), "slo")
	burn := byKey(q.vector(fmt.Sprintf(`topk(%d, max by (slo) (%s))`, pageMaxRows, fmt.Sprintf(pageBurn1h, sel))), "slo")
	for _, s := range q.vector(fmt.Sprintf(`topk(%d, min by (slo) (%s))`, pageMaxRows, fmt.Sprintf(pageBudgetLeft, sel))) {
		slo := s.Metric.Get("slo")
		d.SLIs = append(d.SLIs, sliRow{SLO: slo, Left: s.F, Good5m: valueOr(good, slo), Burn1h: valueOr(burn, slo)})
		delete(good, slo)
	}
	for slo, g := range good { // an SLI whose budget is not recorded yet
		d.SLIs = append(d.SLIs, sliRow{SLO: slo, Good5m: g, Left: math.NaN(), Burn1h: valueOr(burn, slo)})
	}
	groups, warnings := p.api.allRuleGroups(q.ctx)
	pg.Warnings = append(pg.Warnings, warnings...)
	objectives := sloObjectives(groups)
	var errors1h map[string]float64
	for i := range d.SLIs {
		row := &d.SLIs[i]
		if o, ok := objectives[row.SLO]; ok && math.IsNaN(row.Burn1h) && o < 1 {
			if errors1h == nil { // the objective's series is recorded hourly: its rule says it already
				errors1h = byKey(q.vector(fmt.Sprintf(`topk(%d, max by (slo) (slo:sli_error:ratio_rate1h%s))`, pageMaxRows, sel)), "slo")
			}
			row.Burn1h = valueOr(errors1h, row.SLO) / (1 - o)
		}
	}
	slices.SortFunc(d.SLIs, func(x, y sliRow) int { return cmp.Compare(x.SLO, y.SLO) })
	f := InspectionFilter{Cluster: name, Limit: d.InspectionsLimit}
	recs, warnings := p.api.allInspections(q.ctx, f, url.Values{"cluster": {name}, "limit": {strconv.Itoa(f.Limit)}}.Encode())
	d.Inspections, pg.Warnings = recs, append(pg.Warnings, warnings...)
	for _, a := range collectAlerts(groups) {
		if a.Cluster == name {
			d.Alerts = append(d.Alerts, a)
		}
	}
	d.Alerts = d.Alerts[:min(len(d.Alerts), pageMaxRows)]
	pg.Data = d
	pg.Charts = []chart{
		q.chart("wal", "WAL fsync p99 (seconds)", "s",
			`histogram_quantile(0.99, sum by (instance, le) (rate(`+m("etcd_disk_wal_fsync_duration_seconds_bucket")+`[5m])))`, "instance"),
		q.chart("commit", "Backend commit p99 (seconds)", "s",
			`histogram_quantile(0.99, sum by (instance, le) (rate(`+m("etcd_disk_backend_commit_duration_seconds_bucket")+`[5m])))`, "instance"),
		q.chart("db", "db size vs quota (bytes)", "bytes",
			fmt.Sprintf(`topk(%d, max by (instance) (%s)) or label_replace(max(%s), "instance", "quota", "", "")`,
				pageTopN-1, m("etcd_mvcc_db_total_size_in_bytes"), m("etcd_server_quota_backend_bytes")), "instance"),
		q.chart("leader", "Leader changes over 15m", "",
			fmt.Sprintf(`topk(%d, max by (instance) (increase(%s[15m])))`, pageTopN, m("etcd_server_leader_changes_seen_total")), "instance"),
	}
	p.render(w, http.StatusOK, "cluster", pg)
}

// ---- alerts and rules ----

type alertRow struct {
	Name, State, Severity, Cluster, Group string
	Labels                                string
	Summary                               string
	Value                                 float64
	ActiveAt                              time.Time
	Owner                                 string
}

// collectAlerts lists the active alerts of groups, firing first, then by
// name and labels.
func collectAlerts(groups []RuleGroup) []alertRow {
	var out []alertRow
	for gi := range groups {
		g := &groups[gi]
		for _, rule := range g.Rules {
			for _, a := range rule.Alerts {
				var ls []string
				a.Labels.Range(func(l labels.Label) {
					if l.Name != "__name__" && l.Name != "alertname" {
						ls = append(ls, l.Name+"="+strconv.Quote(l.Value))
					}
				})
				out = append(out, alertRow{Name: rule.Name, State: a.State, Severity: a.Labels.Get("severity"), Cluster: a.Labels.Get("cluster"),
					Group: g.Name, Labels: strings.Join(ls, ", "), Summary: cmp.Or(a.Annotations.Get("summary"), a.Annotations.Get("description")),
					Value: a.Value, ActiveAt: a.ActiveAt, Owner: g.Owner})
			}
		}
	}
	slices.SortStableFunc(out, func(x, y alertRow) int {
		return cmp.Or(-cmp.Compare(x.State, y.State), cmp.Compare(x.Name, y.Name), cmp.Compare(x.Labels, y.Labels))
	})
	return out
}

type alertsData struct {
	Alerts          []alertRow
	Firing, Pending int
	Truncated       int
	NoRules         bool
}

func (p *pages) alerts(w http.ResponseWriter, r *http.Request) {
	pg := &page{Title: "Alerts", Nav: "alerts"}
	groups, warnings := p.api.allRuleGroups(r.Context())
	pg.Warnings = warnings
	all := collectAlerts(groups)
	d := &alertsData{NoRules: len(groups) == 0}
	for _, a := range all {
		if a.State == "firing" {
			d.Firing++
		} else {
			d.Pending++
		}
	}
	d.Alerts = all[:min(len(all), pageMaxRows)]
	d.Truncated = len(all) - len(d.Alerts)
	pg.Data = d
	p.render(w, http.StatusOK, "alerts", pg)
}

type ruleRow struct {
	Name, Type, Query, Health, LastError, State string
	For                                         time.Duration
	Active                                      int
}

type groupRow struct {
	Name, File, Owner string
	Interval          time.Duration
	LastEvaluation    time.Time
	EvaluationTime    time.Duration
	Rules             []ruleRow
}

func (p *pages) rules(w http.ResponseWriter, r *http.Request) {
	pg := &page{Title: "Rules", Nav: "rules"}
	groups, warnings := p.api.allRuleGroups(r.Context())
	pg.Warnings = warnings
	var out []groupRow
	for _, g := range groups {
		gr := groupRow{Name: g.Name, File: g.File, Owner: g.Owner, Interval: g.Interval, LastEvaluation: g.LastEvaluation, EvaluationTime: g.EvaluationTime}
		for _, rule := range g.Rules {
			rr := ruleRow{Name: rule.Name, Type: "record", Query: rule.Query, Health: rule.Health, LastError: rule.LastError}
			if rule.Alerting {
				rr.Type, rr.State, rr.For, rr.Active = "alert", rule.State, rule.For, len(rule.Alerts)
			}
			gr.Rules = append(gr.Rules, rr)
		}
		out = append(out, gr)
	}
	pg.Data = out
	p.render(w, http.StatusOK, "rules", pg)
}

// ---- inspections, targets, ring ----

type inspectionsData struct {
	Filter  InspectionFilter
	Names   []string
	Records []InspectionRecord
}

func (p *pages) inspections(w http.ResponseWriter, r *http.Request) {
	var names []string
	if p.api.opts.Inspections != nil {
		names = p.api.opts.Inspections.InspectionNames()
	}
	f, err := parseInspectionFilter(r, names)
	if err != nil {
		p.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit = min(f.Limit, pageMaxRows)
	v := url.Values{"limit": {strconv.Itoa(f.Limit)}}
	for k, val := range map[string]string{"cluster": f.Cluster, "inspection": f.Inspection, "status": f.Status} {
		if val != "" {
			v.Set(k, val)
		}
	}
	pg := &page{Title: "Inspections", Nav: "inspections"}
	recs, warnings := p.api.allInspections(r.Context(), f, v.Encode())
	pg.Warnings = warnings
	pg.Data = &inspectionsData{Filter: f, Names: names, Records: recs}
	p.render(w, http.StatusOK, "inspections", pg)
}

type targetsData struct {
	Below     string
	Window    string
	Targets   []targetRow
	Total     int
	Truncated int
	Summary   completenessSummary
}

func (p *pages) targets(w http.ResponseWriter, r *http.Request) {
	tq, err := parseTargetsQuery(r, p.api.listingState().limits.ListingMaxResults)
	if err != nil {
		p.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	pg := &page{Title: "Targets", Nav: "targets"}
	statuses, warnings := p.api.targetStatuses(r.Context(), tq, tq.keep)
	pg.Warnings = warnings
	d := &targetsData{Below: r.FormValue("below"), Window: ingest.TargetWindows[tq.window].Name}
	var rows []ingest.TargetStatus
	for _, s := range statuses {
		d.Total++
		if tq.below > 0 && !(s.Ratio[tq.window] < tq.below) {
			continue
		}
		rows = append(rows, s)
	}
	// The least complete first; not known yet (NaN) last.
	slices.SortStableFunc(rows, func(x, y ingest.TargetStatus) int {
		a, b := x.Ratio[tq.window], y.Ratio[tq.window]
		return cmp.Or(cmp.Compare(boolInt(math.IsNaN(a)), boolInt(math.IsNaN(b))), cmp.Compare(a, b))
	})
	limit := min(tq.limit, pageMaxRows)
	for _, s := range rows[:min(len(rows), limit)] {
		d.Targets = append(d.Targets, newTargetRow(s))
	}
	d.Truncated = len(rows) - len(d.Targets)
	pg.Data = d
	p.render(w, http.StatusOK, "targets", pg)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ringPageNode is the part of a node of /api/v1/status/ring the page shows.
type ringPageNode struct {
	Name       string    `json:"name"`
	URL        string    `json:"advertise_url"`
	Zone       string    `json:"zone"`
	State      string    `json:"state"`
	Tokens     int       `json:"tokens"`
	TokenShare float64   `json:"token_share"`
	OwnedShare float64   `json:"owned_share"`
	Heartbeat  time.Time `json:"last_heartbeat"`
	HeadSeries *int64    `json:"head_series"`
	Error      string    `json:"error"`
}

type ringData struct {
	InRing            bool
	Self              string `json:"self"`
	ReplicationFactor int    `json:"replication_factor"`
	Nodes             []ringPageNode
}

func (p *pages) ring(w http.ResponseWriter, r *http.Request) {
	pg := &page{Title: "Ring", Nav: "ring"}
	d := &ringData{}
	if p.api.opts.Ring != nil {
		ctx, cancel := context.WithTimeout(r.Context(), ringStatusTimeout)
		defer cancel()
		st := p.api.opts.Ring.RingStatus(ctx)
		b, err := json.Marshal(st)
		var raw struct {
			Self              string         `json:"self"`
			ReplicationFactor int            `json:"replication_factor"`
			Nodes             []ringPageNode `json:"nodes"`
		}
		if err == nil {
			err = json.Unmarshal(b, &raw)
		}
		if err != nil {
			pg.Warnings = append(pg.Warnings, "ring status: "+err.Error())
		}
		d.InRing, d.Self, d.ReplicationFactor, d.Nodes = true, raw.Self, raw.ReplicationFactor, raw.Nodes
	}
	pg.Data = d
	p.render(w, http.StatusOK, "ring", pg)
}
