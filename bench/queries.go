package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Query is one PromQL expression an etcd operator runs all the time.
// {{cluster}} in Expr stands for one cluster's name, as a dashboard's
// cluster variable would.
type Query struct {
	Name string
	Expr string
}

// StandardQueries returns the etcd SLO alert expressions (after the
// etcd-mixin's alerts) and the panels of an etcd dashboard, fleet-wide
// and for one cluster.
func StandardQueries() []Query {
	return []Query{
		{"members_down", `max without (endpoint) (sum without (instance, pod) (up{job="etcd"} == bool 0) or count without (To) (sum without (instance, pod) (rate(etcd_network_peer_sent_failures_total{job="etcd"}[2m])) > 0.01)) > 0`},
		{"insufficient_members", `sum without (instance, pod) (up{job="etcd"} == bool 1) < ((count without (instance, pod) (up{job="etcd"}) + 1) / 2)`},
		{"no_leader", `etcd_server_has_leader{job="etcd"} == 0`},
		{"leader_changes", `increase(etcd_server_leader_changes_seen_total{job="etcd"}[15m]) >= 4`},
		{"failed_grpc_requests", `100 * sum without (grpc_type, grpc_code) (rate(grpc_server_handled_total{job="etcd",grpc_code=~"Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"}[5m])) / sum without (grpc_type, grpc_code) (rate(grpc_server_handled_total{job="etcd"}[5m])) > 1`},
		{"wal_fsync_p99", `histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{job="etcd"}[5m])) > 0.5`},
		{"backend_commit_p99", `histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket{job="etcd"}[5m])) > 0.25`},
		{"db_quota_low", `(last_over_time(etcd_mvcc_db_total_size_in_bytes{job="etcd"}[5m]) / last_over_time(etcd_server_quota_backend_bytes{job="etcd"}[5m])) * 100 > 95`},
		{"db_growth", `predict_linear(etcd_mvcc_db_total_size_in_bytes{job="etcd"}[4h], 4*60*60) > etcd_server_quota_backend_bytes{job="etcd"}`},
		{"fleet_rpc_rate", `sum by (region) (rate(grpc_server_started_total{job="etcd",grpc_type="unary"}[5m]))`},
		{"fleet_db_size_top10", `topk(10, max by (cluster) (etcd_mvcc_db_total_size_in_bytes{job="etcd"}))`},
		{"cluster_rpc_rate", `sum(rate(grpc_server_started_total{cluster="{{cluster}}",grpc_type="unary"}[5m]))`},
		{"cluster_peer_rtt_p99", `histogram_quantile(0.99, sum by (instance, le) (rate(etcd_network_peer_round_trip_time_seconds_bucket{cluster="{{cluster}}"}[5m])))`},
		{"cluster_proposals", `rate(etcd_server_proposals_committed_total{cluster="{{cluster}}"}[5m])`},
		{"cluster_memory", `process_resident_memory_bytes{cluster="{{cluster}}",job="etcd"}`},
	}
}

// queryRunner runs the query list against a target, one query at a time
// as a dashboard refresh does, and keeps every outcome.
type queryRunner struct {
	base    string
	cluster string
	opts    QueryOptions
	http    *http.Client
	queries []Query

	mu      sync.Mutex
	results map[string]*queryResult // guarded by mu, by query name and kind
}

type queryResult struct {
	name, kind string // kind: instant or range
	latencies  []time.Duration
	errors     int
	lastError  string
}

func newQueryRunner(t Target, cluster string, o QueryOptions) *queryRunner {
	return &queryRunner{
		base: baseURL(t.URL), cluster: cluster, opts: o, queries: StandardQueries(),
		http: &http.Client{Timeout: 2 * time.Minute}, results: map[string]*queryResult{},
	}
}

// run queries every opts.Every until ctx ends.
func (q *queryRunner) run(ctx context.Context) {
	t := time.NewTicker(q.opts.Every)
	defer t.Stop()
	for {
		for _, query := range q.queries {
			expr := strings.ReplaceAll(query.Expr, "{{cluster}}", q.cluster)
			now := time.Now()
			q.do(ctx, query.Name, "instant", "/api/v1/query", url.Values{"query": {expr}, "time": {unixSeconds(now)}})
			q.do(ctx, query.Name, "range", "/api/v1/query_range", url.Values{
				"query": {expr}, "start": {unixSeconds(now.Add(-q.opts.Range))}, "end": {unixSeconds(now)},
				"step": {strconv.FormatFloat(q.opts.Step.Seconds(), 'f', -1, 64)},
			})
			if ctx.Err() != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// do runs one query; an answer counts as success only when it is a 200
// with status "success", as Grafana would show it.
func (q *queryRunner) do(ctx context.Context, name, kind, path string, params url.Values) {
	start := time.Now()
	errMsg := q.get(ctx, path, params)
	if ctx.Err() != nil {
		return // cut short by the end of the run: neither a result nor an error
	}
	elapsed := time.Since(start)
	q.mu.Lock()
	defer q.mu.Unlock()
	key := name + "/" + kind
	r := q.results[key]
	if r == nil {
		r = &queryResult{name: name, kind: kind}
		q.results[key] = r
	}
	if errMsg != "" {
		r.errors++
		r.lastError = errMsg
		return
	}
	r.latencies = append(r.latencies, elapsed)
}

func (q *queryRunner) get(ctx context.Context, path string, params url.Values) (errMsg string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return err.Error()
	}
	resp, err := q.http.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	var answer struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	jerr := json.Unmarshal(body, &answer)
	switch {
	case resp.StatusCode == http.StatusOK && jerr == nil && answer.Status == "success":
		return ""
	case answer.ErrorType != "":
		return fmt.Sprintf("HTTP %d %s: %s", resp.StatusCode, answer.ErrorType, answer.Error)
	}
	return fmt.Sprintf("HTTP %d: %.80s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// report returns one QueryReport per query and kind, in list order.
func (q *queryRunner) report() []QueryReport {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []QueryReport
	for _, query := range q.queries {
		for _, kind := range []string{"instant", "range"} {
			r := q.results[query.Name+"/"+kind]
			if r == nil {
				continue
			}
			lat := slices.Clone(r.latencies)
			slices.Sort(lat)
			out = append(out, QueryReport{
				Name: query.Name, Kind: kind, Expr: query.Expr, OK: len(lat), Errors: r.errors, LastError: r.lastError,
				P50Ms: millis(percentile(lat, 0.5)), P99Ms: millis(percentile(lat, 0.99)),
			})
		}
	}
	return out
}

// percentile of sorted durations, nearest rank; 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
