package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/tsdb"
)

// pageEnv is an API over a head filled with a small fleet: one cluster
// of scenario business in region eu with three members, a cluster whose
// labels carry markup, SLO series, cluster info, a firing alert and
// inspection records.
type pageEnv struct {
	t      *testing.T
	api    *API
	server *httptest.Server
}

const pageStep = 15 * time.Second

func newPageEnv(t *testing.T, opts Options, fill bool) *pageEnv {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	targets := ingest.NewTargets("cluster", 0)
	in, err := ingest.New(head, ingest.Options{Limits: ingest.DefaultLimits(), Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts.Ingester, opts.Storage, opts.Registerer, opts.Targets = in, head, reg, targets
	a := New(opts)
	a.SetQueryEngine(evaluator.NewEngine(head, evaluator.Options{}))
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	e := &pageEnv{t: t, api: a, server: srv}
	if fill {
		e.fill()
	}
	return e
}

// fill writes 20 minutes of samples, one scrape every 15 s, ending now.
func (e *pageEnv) fill() {
	now := time.Now().Truncate(pageStep)
	std := []string{"job", "etcd", "cluster", "etcd-pay-1", "product", "pay", "scenario", "business", "size", "small", "region", "eu"}
	var ts []prompb.TimeSeries
	add := func(v func(i int) float64, lbls ...string) {
		s := prompb.TimeSeries{}
		for j := 0; j+1 < len(lbls); j += 2 {
			s.Labels = append(s.Labels, prompb.Label{Name: lbls[j], Value: lbls[j+1]})
		}
		for i := 0; i < 80; i++ {
			s.Samples = append(s.Samples, prompb.Sample{Timestamp: now.Add(-time.Duration(79-i) * pageStep).UnixMilli(), Value: v(i)})
		}
		ts = append(ts, s)
	}
	c := func(x float64) func(int) float64 { return func(int) float64 { return x } }
	for m, inst := range []string{"m1:2379", "m2:2379", "m3:2379"} {
		member := append([]string{"instance", inst}, std...)
		l := func(name string, extra ...string) []string {
			return append(append([]string{"__name__", name}, member...), extra...)
		}
		add(c(1), l("etcd_server_has_leader")...)
		add(c(map[bool]float64{true: 1}[m == 0]), l("etcd_server_is_leader")...)
		add(c(1e9), l("etcd_mvcc_db_total_size_in_bytes")...)
		add(c(5e8), l("etcd_mvcc_db_total_size_in_use_in_bytes")...)
		add(c(8<<30), l("etcd_server_quota_backend_bytes")...)
		add(c(1234), l("etcd_debugging_mvcc_keys_total")...)
		add(func(i int) float64 { return float64(i / 40) }, l("etcd_server_leader_changes_seen_total")...)
		for _, le := range []struct {
			le   string
			frac float64
		}{{"0.001", 0}, {"0.008", 0.5}, {"0.016", 1}, {"+Inf", 1}} {
			add(func(i int) float64 { return le.frac * float64(i*100) }, l("etcd_disk_wal_fsync_duration_seconds_bucket", "le", le.le)...)
			add(func(i int) float64 { return le.frac * float64(i*10) }, l("etcd_disk_backend_commit_duration_seconds_bucket", "le", le.le)...)
		}
	}
	add(c(0.42), "__name__", "slo:period_error_budget_remaining:ratio", "slo", "availability", "cluster", "etcd-pay-1", "region", "eu", "scenario", "business", "size", "small")
	add(c(0.003), "__name__", "slo:sli_error:ratio_rate1h", "slo", "availability", "cluster", "etcd-pay-1", "region", "eu", "scenario", "business", "size", "small")
	add(c(0.001), "__name__", "slo:sli_error:ratio_rate5m", "slo", "availability", "cluster", "etcd-pay-1", "region", "eu", "scenario", "business", "size", "small")
	add(c(0.999), "__name__", "slo:objective:ratio", "slo", "availability")
	// An SLO whose objective is not recorded yet (hourly): the fleet
	// reads it from its rule.
	add(c(0.001), "__name__", "slo:sli_error:ratio_rate5m", "slo", "latency", "cluster", "etcd-pay-1", "region", "eu", "scenario", "business", "size", "small")
	add(c(0.002), "__name__", "slo:sli_error:ratio_rate1h", "slo", "latency", "cluster", "etcd-pay-1", "region", "eu", "scenario", "business", "size", "small")
	add(c(1), "__name__", "etcdgate_cluster_info", "cluster", "etcd-pay-1", "kubernetes_cluster", "k8s-shop-1", "product", "pay", "scenario", "business", "size", "small", "region", "eu")
	// A cluster whose scenario is markup: every page must escape it.
	add(c(1), "__name__", "etcd_server_has_leader", "job", "etcd", "instance", "x:2379", "cluster", "etcd-x", "scenario", "<b>evil</b>", "region", "us")
	body := encode(e.t, ts...)
	hreq, _ := http.NewRequest(http.MethodPost, e.server.URL+"/api/v1/write", strings.NewReader(string(body)))
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("Content-Encoding", "snappy")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		e.t.Fatalf("write: %d %s", resp.StatusCode, b)
	}
}

func (e *pageEnv) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.server.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNotFound || strings.HasPrefix(path, "/cluster/") || strings.HasPrefix(path, "/scenario/") {
		if !strings.HasPrefix(ct, "text/html") {
			e.t.Errorf("GET %s: %d with Content-Type %q, want an HTML page", path, resp.StatusCode, ct)
		}
	}
	return resp.StatusCode, string(b)
}

func pageFixtures() Options {
	now := time.Now()
	return Options{
		Rules: fakeRules{{Name: "etcd", File: "etcd.rules.yml", Interval: 30 * time.Second, LastEvaluation: now, Rules: []Rule{
			{Alerting: true, Name: "EtcdNoLeader", Query: `etcd_server_has_leader == 0`, State: "firing", Health: "ok", Alerts: []Alert{{
				Labels:      labels.FromStrings("alertname", "EtcdNoLeader", "cluster", "etcd-pay-1", "severity", "critical"),
				Annotations: labels.FromStrings("summary", "member m2 lost its leader"), State: "firing", Value: 0, ActiveAt: now.Add(-time.Minute)}}},
			{Name: "slo:objective:ratio", Query: "0.99", Labels: map[string]string{"slo": "latency"}, Health: "ok"},
			{Name: "instance:etcd_db_used_quota:percent", Query: `100 * etcd_mvcc_db_total_size_in_bytes / etcd_server_quota_backend_bytes`, Health: "err", LastError: "bad thing happened"},
		}}},
		Inspections: fakeRecords{
			{Cluster: "etcd-pay-1", Inspection: "consistency", Status: "warning", Message: "hash of m3 differs at revision 77", Start: now.Add(-time.Minute), End: now},
			{Cluster: "etcd-other", Inspection: "health", Status: "success", Message: "3 of 3 members answered", Start: now, End: now},
		},
	}
}

func TestPages(t *testing.T) {
	e := newPageEnv(t, pageFixtures(), true)
	for _, tc := range []struct {
		path   string
		status int
		want   []string
		absent []string
	}{
		{"/", 200, []string{`id="clusters">2<`, "42.00%", `href="/cluster/etcd-pay-1"`, `href="/scenario/business"`, "etcd-pay-1",
			"critical: 1", `"id":"budget"`, `<td>availability</td><td class="num bad">42.00%</td><td class="num">0.30%</td><td class="num">3</td>`,
			`<td>latency</td><td class="num nodata">no data</td><td class="num">0.20%</td><td class="num">0.2</td>`, "&lt;b&gt;evil&lt;/b&gt;", "samples collected (1h)"}, []string{"<b>evil</b>"}},
		{"/scenario/business", 200, []string{"<td>eu</td>", "11.64%", "7.1 GiB", "etcd-pay-1", "<td>pay</td>", `"id":"fullest"`, "1234"}, nil},
		{"/scenario/nope", 404, []string{"no etcd cluster of scenario"}, nil},
		{"/scenario/bad%20name", 400, []string{"invalid scenario name"}, nil},
		{"/cluster/etcd-pay-1", 200, []string{"k8s-shop-1", "m1:2379", "m3:2379", "EtcdNoLeader", "member m2 lost its leader", "hash of m3 differs at revision 77",
			"availability", "42.00%", "99.90%", `<td>latency</td><td class="num">99.90%</td><td class="num nodata">no data</td><td class="num">0.2</td>`, `id="leaders">1<`, "953.7 MiB", "8.0 GiB", `"id":"wal"`, `"id":"commit"`, `"id":"db"`, "uPlot.iife.min.js"},
			[]string{"3 of 3 members answered"}},
		{"/cluster/missing", 404, []string{"no etcd cluster"}, nil},
		{"/cluster/a%3Cscript%3E", 400, []string{"invalid cluster name", "&lt;script&gt;"}, []string{"<script>\""}},
		{"/cluster/..%2F..%2Fetc", 400, []string{"invalid cluster name"}, nil},
		{"/alerts", 200, []string{"1 firing", "EtcdNoLeader", `href="/cluster/etcd-pay-1"`, "critical"}, nil},
		{"/rules", 200, []string{"etcd.rules.yml", "EtcdNoLeader", "bad thing happened", "instance:etcd_db_used_quota:percent"}, nil},
		{"/inspections", 200, []string{"hash of m3 differs", "3 of 3 members answered"}, nil},
		{"/inspections?cluster=etcd-other", 200, []string{"3 of 3 members answered"}, []string{"hash of m3 differs"}},
		{"/inspections?status=bogus", 400, []string{"invalid parameter"}, nil},
		{"/targets", 200, []string{"m1:2379", "x:2379", "15s"}, nil},
		{"/targets?below=0.5", 200, []string{"no target below 0.5"}, []string{"m1:2379"}},
		{"/targets?below=2", 400, []string{"invalid parameter"}, nil},
		{"/targets?window=2h", 400, []string{"invalid parameter"}, nil},
		{"/ring", 200, []string{"not in a ring"}, nil},
		{"/nonexistent", 404, nil, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := e.get(tc.path)
			if code != tc.status {
				t.Fatalf("GET %s: %d, want %d\n%s", tc.path, code, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: no %q in the page:\n%s", tc.path, w, body)
				}
			}
			for _, w := range tc.absent {
				if strings.Contains(body, w) {
					t.Errorf("GET %s: %q in the page", tc.path, w)
				}
			}
			if code == 200 && strings.Contains(body, `id="warnings"`) {
				t.Errorf("GET %s: warnings on a page with all its data:\n%s", tc.path, body)
			}
		})
	}
}

// TestPagesWithoutData: an empty store, no rules, no prober: every page
// renders and says "no data".
func TestPagesWithoutData(t *testing.T) {
	e := newPageEnv(t, Options{}, false)
	for _, path := range []string{"/", "/alerts", "/rules", "/inspections", "/targets"} {
		code, body := e.get(path)
		if code != 200 || !strings.Contains(body, "no data") {
			t.Errorf("GET %s: %d, want 200 with \"no data\":\n%s", path, code, body)
		}
	}
	if code, _ := e.get("/cluster/etcd-pay-1"); code != 404 {
		t.Errorf("GET /cluster of an empty store: %d, want 404", code)
	}
}

func TestPagesStatic(t *testing.T) {
	e := newPageEnv(t, Options{}, false)
	for path, want := range map[string]string{"/static/uplot/uPlot.iife.min.js": "uPlot (v1.6.32)", "/static/uplot/uPlot.min.css": ".uplot",
		"/static/pages.css": "font-family"} {
		resp, err := http.Get(e.server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, resp.StatusCode, want)
		}
	}
	if resp, err := http.Get(e.server.URL + "/static/../api.go"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("GET /static/../api.go: 200")
		}
	}
}

// TestPagesNotReady: before the store has recovered a data page answers
// 503, as the API does.
func TestPagesNotReady(t *testing.T) {
	a := New(Options{})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for _, path := range []string{"/", "/cluster/etcd-pay-1", "/scenario/business"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "not ready") {
			t.Errorf("GET %s: %d %s, want 503", path, resp.StatusCode, b)
		}
	}
}

// TestPagesRoutesAreRead: every page needs the read role, as every read
// endpoint does (the guard applies it with an auth policy).
func TestPagesRoutesAreRead(t *testing.T) {
	found := 0
	for _, rt := range New(Options{}).Routes() {
		if strings.HasPrefix(rt.Name, "page_") {
			found++
			if rt.Role != RoleRead {
				t.Errorf("%s: role %v, want read", rt.Pattern, rt.Role)
			}
		}
	}
	if found != 9 {
		t.Errorf("%d page routes, want 9", found)
	}
}

// TestPagesQueryErrors: a query that fails leaves its section at "no
// data" and names the error in the page's warnings; the page itself
// answers 200. An internal error shows no stack.
func TestPagesQueryErrors(t *testing.T) {
	for _, tc := range []struct {
		err          error
		want, absent string
	}{
		{fmt.Errorf("%w: query timed out in expression evaluation", evaluator.ErrTimeout), "query timed out", ""},
		{&evaluator.PanicError{Value: "index out of range", Stack: []byte("goroutine 7 [running]:\nevaluator.go:12")}, "unexpected error", "goroutine 7"},
	} {
		e := newPageEnv(t, Options{}, false)
		e.api.SetQueryEngine(fakeEngine{tc.err})
		for _, path := range []string{"/", "/scenario/business", "/cluster/etcd-pay-1"} {
			code, body := e.get(path)
			if code != 200 || !strings.Contains(body, `id="warnings"`) || !strings.Contains(body, tc.want) || !strings.Contains(body, "no data") {
				t.Errorf("GET %s with %v: %d, want 200 with the error in the warnings and \"no data\":\n%s", path, tc.err, code, body)
			}
			if tc.absent != "" && strings.Contains(body, tc.absent) {
				t.Errorf("GET %s: %q in the page", path, tc.absent)
			}
		}
	}
}

type fakeRingStatus struct{ v any }

func (f fakeRingStatus) RingStatus(context.Context) any { return f.v }

func TestPagesRing(t *testing.T) {
	series := int64(123456)
	e := newPageEnv(t, Options{Ring: fakeRingStatus{map[string]any{"self": "node-a", "replication_factor": 3, "nodes": []map[string]any{
		{"name": "node-a", "advertise_url": "http://10.1.0.1:9390", "zone": "z1", "state": "ACTIVE", "tokens": 128, "token_share": 0.5,
			"owned_share": 0.75, "last_heartbeat": time.Now(), "head_series": series},
		{"name": "node-<b>", "advertise_url": "http://10.1.0.2:9390", "state": "LEAVING", "error": "connection refused"},
	}}}}, false)
	code, body := e.get("/ring")
	for _, w := range []string{"node-a", "replication factor 3", "http://10.1.0.1:9390", "50.00%", "75.00%", "123456", "LEAVING", "connection refused", "node-&lt;b&gt;"} {
		if code != 200 || !strings.Contains(body, w) {
			t.Errorf("GET /ring: %d, no %q:\n%s", code, w, body)
		}
	}
	if strings.Contains(body, "not in a ring") {
		t.Error("GET /ring of a ring node says it is not in a ring")
	}
}
