package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// TestParseAndFormatQuerySameAsPrometheus3: /api/v1/parse_query and
// /api/v1/format_query answer as Prometheus 3 itself, and refuse what it
// refuses.
func TestParseAndFormatQuerySameAsPrometheus3(t *testing.T) {
	bin := testbin.Prometheus3(t)
	_, gw := startGateway(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte("global: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testnet.FreePort(t)
	startProcess(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	prom := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 60*time.Second, "prometheus 3 ready", func() bool {
		code, _ := httpGet(prom + "/-/ready")
		return code == http.StatusOK
	})
	answer := func(base, path, q string) (int, any) {
		code, body := httpGet(base + path + "?" + url.Values{"query": {q}}.Encode())
		var env struct {
			Status    string `json:"status"`
			ErrorType string `json:"errorType"`
			Data      any    `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Fatalf("%s%s %q: %v: %s", base, path, q, err, body)
		}
		if env.Status != "success" {
			return code, env.ErrorType
		}
		return code, env.Data
	}
	for _, q := range []string{
		`up`,
		`up{job="etcd",instance=~"10\\..*"} offset 5m`,
		`sum by (cluster) (rate(etcd_requests_total{code!="200"}[5m] @ 1700000000))`,
		`histogram_quantile(0.99, sum without (instance) (rate(x_bucket[1m:15s] offset -1m)))`,
		`topk(3, -x) / on (a, b) group_left (c) y > bool 2`,
		`count_values("v", x) unless ignoring (z) w`,
		`max_over_time((x + 1)[1h:] @ end())`,
		`"a string"`, `1e3`, `-(1 + 2) ^ 3`, `label_replace(x, "a", "$1", "b", "(.*)")`,
		`absent_over_time(nothing[5m])`, `{__name__=~"etcd_.+"}`, `x[5m] offset 1h`,
		`quantile(0.9, x) and y or z`, `time() - timestamp(x)`,
		`sum(x) by (a)`, ``, `sum(`, `x{a=~"("}`, `nosuchfunction(x)`, `x[5m`, `rate(x)`,
	} {
		for _, path := range []string{"/api/v1/parse_query", "/api/v1/format_query"} {
			gotCode, got := answer(gw, path, q)
			wantCode, want := answer(prom, path, q)
			if gotCode != wantCode || !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("%s %q:\netcdgate   %d %s\nprometheus %d %s", path, q, gotCode, g, wantCode, w)
			}
		}
	}
}

// startPrometheus3Receiver runs Prometheus 3 scraping nothing, receiving
// remote writes, with per-step query statistics on.
func startPrometheus3Receiver(t *testing.T) string {
	t.Helper()
	bin := testbin.Prometheus3(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte("global: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testnet.FreePort(t)
	startProcess(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--web.enable-remote-write-receiver",
		"--enable-feature=promql-per-step-stats")
	u := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 60*time.Second, "prometheus 3 ready", func() bool {
		code, _ := httpGet(u + "/-/ready")
		return code == http.StatusOK
	})
	return u
}

// TestQueryStatsSameAsPrometheus3: with stats=all, etcdgate counts the
// samples of a query, in total and per step, as Prometheus 3 counts them
// over the same samples, and answers the same stats fields.
func TestQueryStatsSameAsPrometheus3(t *testing.T) {
	_, gw := startGateway(t)
	prom := startPrometheus3Receiver(t)
	end := time.Now().Truncate(time.Minute)
	series := compatSamples(end)
	remoteWrite(t, gw, series)
	remoteWrite(t, prom, series)
	at := strconv.FormatInt(end.Add(-7*time.Second).Unix(), 10)
	start := strconv.FormatInt(end.Add(-5*time.Minute-7*time.Second).Unix(), 10)
	type stats struct {
		Timings map[string]any `json:"timings"`
		Samples map[string]any `json:"samples"`
	}
	get := func(base, path string, p url.Values) stats {
		code, body := httpGet(base + path + "?" + p.Encode())
		var env struct {
			Data struct {
				Stats stats `json:"stats"`
			} `json:"data"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &env) != nil {
			t.Fatalf("%s%s %v: %d %s", base, path, p, code, body)
		}
		return env.Data.Stats
	}
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	for _, q := range []string{
		`etcd_requests_total`,
		`sum by (cluster) (rate(etcd_requests_total[2m]))`,
		`etcd_server_has_leader{instance="m1"} == 1`,
		`max_over_time(etcd_server_has_leader[1m])`,
		`count(etcd_requests_total) + sum(odd_labels)`,
		`vector(1)`,
		`max_over_time(sum(etcd_requests_total)[3m:30s])`,
		`rate(etcd_requests_total[1m] offset 2m)`,
		`etcd_server_has_leader @ ` + strconv.FormatInt(end.Add(-3*time.Minute-7*time.Second).Unix(), 10),
		`topk(2, increase(etcd_requests_total[90s]))`,
		`absent(nothing) or count_over_time(odd_labels[45s])`,
		`etcd_requests_total[2m]`,
		`avg_over_time(rate(etcd_requests_total[1m])[4m:45s] offset 30s)`,
		`max_over_time(max_over_time(etcd_server_has_leader[30s])[2m:20s])`,
		`sum_over_time(odd_labels[2m] @ ` + strconv.FormatInt(end.Add(-2*time.Minute-7*time.Second).Unix(), 10) + `)`,
		`sum(etcd_requests_total)[2m:40s]`,
	} {
		for _, path := range []string{"/api/v1/query", "/api/v1/query_range"} {
			if strings.HasSuffix(q, "]") && path == "/api/v1/query_range" {
				continue // a range vector: instant queries only
			}
			p := url.Values{"query": {q}, "time": {at}, "start": {start}, "end": {at}, "step": {"60"}, "stats": {"all"}}
			got, want := get(gw, path, p), get(prom, path, p)
			if !reflect.DeepEqual(keys(got.Timings), keys(want.Timings)) || !reflect.DeepEqual(keys(got.Samples), keys(want.Samples)) {
				t.Errorf("%s %s: fields %v %v, Prometheus 3 %v %v", path, q, keys(got.Timings), keys(got.Samples), keys(want.Timings), keys(want.Samples))
			}
			for _, k := range []string{"totalQueryableSamples", "totalQueryableSamplesPerStep", "samplesRead", "samplesReadPerStep", "seriesTouched"} {
				if !reflect.DeepEqual(got.Samples[k], want.Samples[k]) {
					t.Errorf("%s %s: %s %v, Prometheus 3 %v", path, q, k, got.Samples[k], want.Samples[k])
				}
			}
		}
	}
}

// TestRulesPagingSameAsPrometheus3: over the same rule files, the pages
// of /api/v1/rules (group_limit, group_next_token, match[]) list the
// same groups and rules with the same tokens as Prometheus 3.
func TestRulesPagingSameAsPrometheus3(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.yml": "groups:\n  - name: g1\n    rules:\n      - record: r1\n        expr: vector(1)\n        labels: {severity: page}\n" +
			"  - name: g2\n    rules:\n      - alert: A2\n        expr: vector(1) > 2\n        labels: {severity: ticket}\n",
		"b.yml": "groups:\n  - name: g3\n    rules:\n      - record: r3\n        expr: vector(3)\n      - alert: A3\n        expr: vector(1) > 3\n        labels: {severity: page}\n" +
			"  - name: g4\n    rules:\n      - record: r4\n        expr: vector(4)\n",
	}
	var paths []string
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	ruleFiles := fmt.Sprintf("rule_files: [%q, %q]\n", paths[0], paths[1])
	gwCfg := filepath.Join(dir, "etcdgate.yml")
	if err := os.WriteFile(gwCfg, []byte(ruleFiles), 0o644); err != nil {
		t.Fatal(err)
	}
	_, gw := startGateway(t, "--config", gwCfg)

	promDir := t.TempDir()
	promCfg := filepath.Join(promDir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(ruleFiles), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testnet.FreePort(t)
	startProcess(t, testbin.Prometheus3(t), "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(promDir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	prom := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 60*time.Second, "prometheus 3 ready", func() bool {
		code, _ := httpGet(prom + "/-/ready")
		return code == http.StatusOK
	})

	type page struct {
		Groups []struct {
			Name, File string
			Rules      []struct{ Name string }
		}
		GroupNextToken string
	}
	pages := func(base string, p url.Values) []page {
		var out []page
		for token := ""; len(out) < 10; {
			q := url.Values{}
			for k, v := range p {
				q[k] = v
			}
			if token != "" {
				q.Set("group_next_token", token)
			}
			code, body := httpGet(base + "/api/v1/rules?" + q.Encode())
			var env struct{ Data page }
			if code != http.StatusOK || json.Unmarshal([]byte(body), &env) != nil {
				t.Fatalf("%s %v: %d %s", base, q, code, body)
			}
			out = append(out, env.Data)
			if token = env.Data.GroupNextToken; token == "" {
				break
			}
		}
		return out
	}
	for _, p := range []url.Values{
		{}, {"group_limit": {"1"}}, {"group_limit": {"3"}}, {"match[]": {`{severity="page"}`}},
		{"match[]": {`{severity=~"page|ticket"}`}, "group_limit": {"2"}}, {"type": {"record"}, "group_limit": {"2"}},
	} {
		got, want := pages(gw, p), pages(prom, p)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\netcdgate   %+v\nprometheus %+v", p, got, want)
		}
	}
	for _, bad := range []url.Values{{"group_limit": {"0"}}, {"group_next_token": {"abc"}}, {"group_limit": {"1"}, "group_next_token": {"abc"}}} {
		gc, _ := httpGet(gw + "/api/v1/rules?" + bad.Encode())
		pc, _ := httpGet(prom + "/api/v1/rules?" + bad.Encode())
		if gc != pc {
			t.Errorf("%v: etcdgate %d, Prometheus 3 %d", bad, gc, pc)
		}
	}
}
