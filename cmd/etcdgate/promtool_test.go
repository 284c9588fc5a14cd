package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// compatSamples are the series both servers get: request counters of
// three members of two clusters, a gauge, and label values that need
// quoting, one sample every 15 s for the 10 minutes before end.
func compatSamples(end time.Time) []prompb.TimeSeries {
	var out []prompb.TimeSeries
	add := func(value func(i int) float64, lset ...string) {
		ts := prompb.TimeSeries{}
		for i := 0; i < len(lset); i += 2 {
			ts.Labels = append(ts.Labels, prompb.Label{Name: lset[i], Value: lset[i+1]})
		}
		for i := 40; i >= 0; i-- {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: end.Add(-time.Duration(i) * 15 * time.Second).UnixMilli(), Value: value(40 - i)})
		}
		out = append(out, ts)
	}
	for c, cluster := range []string{"c1", "c2"} {
		for m := range 3 {
			k := float64(c*3 + m + 1)
			add(func(i int) float64 { return k * float64(i) * 7.5 }, "__name__", "etcd_requests_total", "cluster", cluster, "instance", fmt.Sprintf("m%d", m), "job", "etcd")
			add(func(i int) float64 { return float64((i + m) % 2) }, "__name__", "etcd_server_has_leader", "cluster", cluster, "instance", fmt.Sprintf("m%d", m), "job", "etcd")
		}
	}
	add(func(i int) float64 { return float64(i) / 3 }, "__name__", "odd_labels", "path", `/a "quoted"\path`, "unicode", "žluť", "job", "other")
	return out
}

// remoteWrite posts series as a remote-write 1.0 request.
func remoteWrite(t *testing.T, base string, series []prompb.TimeSeries, md ...prompb.MetricMetadata) {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: series, Metadata: md}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("remote write to %s: %d", base, resp.StatusCode)
	}
}

// startPrometheusReceiver runs Debian's Prometheus 2.42 scraping nothing
// and receiving remote writes.
func startPrometheusReceiver(t *testing.T) string {
	t.Helper()
	bin := testbin.Prometheus(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte("global: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testnet.FreePort(t)
	startProcess(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--web.enable-remote-write-receiver")
	u := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 30*time.Second, "prometheus ready", func() bool {
		code, _ := httpGet(u + "/-/ready")
		return code == http.StatusOK
	})
	return u
}

// TestPromtoolSameAsPrometheus: promtool query instant, range, series and
// labels print the same against etcdgate as against Debian's Prometheus
// holding the same samples.
func TestPromtoolSameAsPrometheus(t *testing.T) {
	promtool := testbin.Promtool(t)
	_, gw := startGateway(t)
	prom := startPrometheusReceiver(t)
	end := time.Now().Truncate(time.Minute)
	series := compatSamples(end)
	remoteWrite(t, gw, series)
	remoteWrite(t, prom, series)

	// Query times fall between samples: a range window's edges then hold
	// no sample, where Prometheus 2.42 (closed windows) and 3 (left-open,
	// which etcdgate follows) differ.
	at := strconv.FormatInt(end.Add(-7*time.Second).Unix(), 10)
	start := strconv.FormatInt(end.Add(-8*time.Minute-7*time.Second).Unix(), 10)
	from := strconv.FormatInt(end.Add(-time.Hour).Unix(), 10)
	to := strconv.FormatInt(end.Add(time.Minute).Unix(), 10)
	cmds := [][]string{
		{"instant", "--time=" + at, "%s", `etcd_requests_total`},
		// Rounded: Prometheus 2.42 adds without Kahan compensation, 3 and
		// etcdgate with it, and the last digit may differ.
		{"instant", "--time=" + at, "%s", `round(sum by (cluster) (rate(etcd_requests_total[5m])), 0.001)`},
		{"instant", "--time=" + at, "%s", `rate(etcd_requests_total{instance="m2"}[2m])`},
		{"instant", "--time=" + at, "%s", `topk(2, etcd_requests_total)`},
		{"instant", "--time=" + at, "%s", `odd_labels`},
		{"instant", "--time=" + at, "%s", `count(etcd_server_has_leader == 0) or vector(0)`},
		{"instant", "--time=" + at, "%s", `etcd_requests_total{cluster="c1"}[1m]`},
		{"instant", "--time=" + at, "%s", `scalar(sum(etcd_server_has_leader))`},
		{"instant", "--time=" + at, "%s", `nothing_here`},
		{"range", "--start=" + start, "--end=" + at, "--step=1m", "%s", `sum by (cluster) (increase(etcd_requests_total[2m]))`},
		{"range", "--start=" + start, "--end=" + at, "--step=30s", "%s", `etcd_server_has_leader{instance="m1"}`},
		{"range", "--start=" + start, "--end=" + at, "--step=1m", "%s", `odd_labels * 2`},
		{"series", "--match=etcd_requests_total", "--start=" + from, "--end=" + to, "%s"},
		{"series", "--match={job=~\"etcd|other\"}", "--match=odd_labels", "--start=" + from, "--end=" + to, "%s"},
		{"labels", "--start=" + from, "--end=" + to, "%s", "__name__"},
		{"labels", "--start=" + from, "--end=" + to, "%s", "instance"},
		{"labels", "--match=odd_labels", "--start=" + from, "--end=" + to, "%s", "path"},
		{"labels", "--start=" + from, "--end=" + to, "%s", "no_such_label"},
	}
	for _, c := range cmds {
		run := func(server string) string {
			args := []string{"query", c[0]}
			for _, a := range c[1:] {
				args = append(args, strings.ReplaceAll(a, "%s", server))
			}
			out, err := exec.Command(promtool, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %v: %v\n%s", args, err, out)
			}
			return string(out)
		}
		got, want := run(gw), run(prom)
		if got != want {
			t.Errorf("promtool query %v:\netcdgate:\n%s\nprometheus:\n%s", c, got, want)
		}
		if strings.TrimSpace(want) == "" && !strings.Contains(strings.Join(c, " "), "nothing_here") && !strings.Contains(strings.Join(c, " "), "no_such_label") {
			t.Errorf("promtool query %v printed nothing: the comparison proves little", c)
		}
	}
}

// TestGoClientEveryEndpoint: Prometheus's Go API client calls every
// endpoint it has that etcdgate serves, without error, and reads what it
// expects.
func TestGoClientEveryEndpoint(t *testing.T) {
	dir := t.TempDir()
	rules := `groups:
  - name: etcd
    interval: 1s
    rules:
      - record: cluster:etcd_requests:sum
        expr: sum by (cluster) (etcd_requests_total)
      - alert: NoLeader
        expr: etcd_server_has_leader == 0
        labels: {severity: page}
`
	if err := os.WriteFile(filepath.Join(dir, "etcd.yml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "etcdgate.yml")
	cfg := "rule_files: [etcd.yml]\nevaluation_interval: 1s\nalerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:1']}]\n      basic_auth: {username: u, password: SECRET-am}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, gw := startGateway(t, "--config", cfgPath)
	end := time.Now().Truncate(time.Second)
	remoteWrite(t, gw, compatSamples(end), prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER,
		MetricFamilyName: "etcd_requests_total", Help: "Requests served.", Unit: "requests"})

	client, err := api.NewClient(api.Config{Address: gw})
	if err != nil {
		t.Fatal(err)
	}
	c := promv1.NewAPI(client)
	ctx := context.Background()
	check := func(what string, err error, ok bool, got any) {
		t.Helper()
		if err != nil || !ok {
			t.Errorf("%s: %v, got %+v", what, err, got)
		}
	}

	v, warns, _, err := c.Query(ctx, `etcd_requests_total`, end)
	vec, _ := v.(model.Vector)
	check("Query", err, len(vec) == 6 && len(warns) == 0, v)
	v, warns, _, err = c.Query(ctx, `etcd_requests_total`, end, promv1.WithLimit(2), promv1.WithLookbackDelta(time.Minute),
		promv1.WithTimeout(10*time.Second), promv1.WithStats(promv1.AllStatsValue))
	vec, _ = v.(model.Vector)
	check("Query with limit", err, len(vec) == 2 && len(warns) == 1 && warns[0] == "results truncated due to limit", v)
	v, _, _, err = c.QueryRange(ctx, `sum by (cluster) (etcd_requests_total)`, promv1.Range{Start: end.Add(-5 * time.Minute), End: end, Step: time.Minute})
	mat, _ := v.(model.Matrix)
	check("QueryRange", err, len(mat) == 2 && len(mat[0].Values) == 6, v)
	ls, _, _, err := c.Series(ctx, []string{`etcd_server_has_leader`}, end.Add(-time.Hour), end)
	check("Series", err, len(ls) == 6, ls)
	names, _, _, err := c.LabelNames(ctx, nil, end.Add(-time.Hour), end)
	check("LabelNames", err, len(names) > 0 && names[0] == "__name__", names)
	vals, _, _, err := c.LabelValues(ctx, "cluster", nil, end.Add(-time.Hour), end)
	check("LabelValues", err, len(vals) == 2 && vals[0] == "c1", vals)

	var rr promv1.RulesResult
	waitFor(t, 30*time.Second, "the rule group evaluated", func() bool {
		rr, err = c.Rules(ctx, nil)
		if err != nil || len(rr.Groups) != 1 || len(rr.Groups[0].Rules) == 0 {
			return false
		}
		rec, ok := rr.Groups[0].Rules[0].(promv1.RecordingRule)
		return ok && !rec.LastEvaluation.IsZero()
	})
	check("Rules", err, len(rr.Groups[0].Rules) == 2, rr)
	rr, err = c.Rules(ctx, []string{`{severity="page"}`})
	check("Rules with match[]", err, len(rr.Groups) == 1 && len(rr.Groups[0].Rules) == 1, rr)
	var ar promv1.AlertsResult
	waitFor(t, 30*time.Second, "NoLeader alerts", func() bool {
		ar, err = c.Alerts(ctx)
		return err == nil && len(ar.Alerts) > 0
	})
	check("Alerts", err, ar.Alerts[0].Labels["alertname"] == "NoLeader", ar)

	bi, err := c.Buildinfo(ctx)
	check("Buildinfo", err, semverRE.MatchString(bi.Version) && bi.GoVersion != "", bi)
	code, body := httpGet(gw + "/api/v1/status/buildinfo")
	check("buildinfo without features", nil, code == http.StatusOK && !strings.Contains(body, "features"), body)
	cr, err := c.Config(ctx)
	check("Config", err, strings.Contains(cr.YAML, "rule_files") && strings.Contains(cr.YAML, "<secret>") && !strings.Contains(cr.YAML, "SECRET-am"), cr)
	ri, err := c.Runtimeinfo(ctx)
	check("Runtimeinfo", err, !ri.StartTime.IsZero() && ri.ReloadConfigSuccess && ri.GOMAXPROCS > 0 && ri.StorageRetention == "15d" && ri.CWD != "", ri)
	ts, err := c.TSDB(ctx)
	check("TSDB", err, ts.HeadStats.NumSeries >= 13, ts)
	ex, err := c.QueryExemplars(ctx, `etcd_requests_total`, end.Add(-time.Hour), end)
	check("QueryExemplars", err, ex != nil && len(ex) == 0, ex)
	md, err := c.Metadata(ctx, "etcd_requests_total", "")
	check("Metadata", err, len(md["etcd_requests_total"]) == 1 && md["etcd_requests_total"][0] ==
		promv1.Metadata{Type: promv1.MetricTypeCounter, Help: "Requests served.", Unit: "requests"}, md)
	fq, err := c.FormatQuery(ctx, `sum(rate(x[5m]))by(job)`)
	check("FormatQuery", err, fq == `"sum by (job) (rate(x[5m]))"`, fq) // the client returns the raw JSON string
	// Not served: Flags (Grafana takes an answer as a sign of Thanos),
	// AlertManagers, Targets, TargetsMetadata, WalReplay, TSDBBlocks and
	// the admin endpoints (DeleteSeries, CleanTombstones, Snapshot).
	if _, err := c.Flags(ctx); err == nil {
		t.Error("Flags answered")
	}
}
