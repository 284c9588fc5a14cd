package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/evaluator/slo"
)

// TestCompletenessProcess: two targets scraped every 15 s for 90 minutes
// (written through remote write, each scrape in two requests); target a
// misses 1 scrape in 100. /api/v1/status/targets shows a's completeness
// over the hour at 0.99 (one to three of its misses among the hour's 240
// scrapes, depending on where the window ends: 0.9875 to 0.9958), b's at
// 1, both with their
// interval and series; the completeness series are written and carry
// the cluster's standard labels from the registry.
func TestCompletenessProcess(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "clusters.yml"), []byte("clusters: [{cluster: etcd-1, product: payments, scenario: business}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "etcdgate.yml")
	if err := os.WriteFile(cfg, []byte("registry: {file: clusters.yml}\nevaluation_interval: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, base := startGateway(t, "--config", cfg)
	scrape := func(inst string, i int, ts int64) {
		var series []prompb.TimeSeries
		for s := range 10 {
			series = append(series, prompb.TimeSeries{
				Labels: []prompb.Label{{Name: "__name__", Value: "etcd_metric_" + strconv.Itoa(s)}, {Name: "cluster", Value: "etcd-1"},
					{Name: "instance", Value: inst}, {Name: "job", Value: "etcd"}},
				Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts}},
			})
		}
		remoteWrite(t, base, series[:3])
		remoteWrite(t, base, series[3:])
	}
	last := time.Now().Truncate(15 * time.Second)
	for i := range 360 {
		ts := last.Add(-time.Duration(359-i) * 15 * time.Second).UnixMilli()
		for _, inst := range []string{"a", "b"} {
			if inst != "a" || i%100 != 99 {
				scrape(inst, i, ts)
			}
		}
	}
	// Both targets go on being scraped, without a miss, while the test
	// waits below: a scrape that does not come when due lowers their
	// completeness over 5 minutes, and on a loaded machine the waits
	// outlast an interval. Each is sent a little ahead of its time.
	next, i := last.Add(15*time.Second), 360
	scrapeDue := func() {
		for ; time.Until(next) < 5*time.Second; next, i = next.Add(15*time.Second), i+1 {
			scrape("a", i, next.UnixMilli())
			scrape("b", i, next.UnixMilli())
		}
	}
	scrapeDue()
	code, body := httpGet(base + "/api/v1/status/targets?" + url.Values{"job": {"etcd"}}.Encode())
	var r struct {
		Data struct {
			Targets []struct {
				Instance     string              `json:"instance"`
				Interval     float64             `json:"scrape_interval_seconds"`
				Series       int                 `json:"series"`
				Completeness map[string]*float64 `json:"completeness"`
			} `json:"targets"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || code != 200 || len(r.Data.Targets) != 2 {
		t.Fatalf("%d %s", code, body)
	}
	for _, tg := range r.Data.Targets {
		h := tg.Completeness["1h"]
		if tg.Interval != 15 || tg.Series != 10 || h == nil {
			t.Fatalf("target %s: %s", tg.Instance, body)
		}
		if tg.Instance == "a" && (*h < 237.0/240 || *h > 239.0/240) || tg.Instance == "b" && *h != 1 {
			t.Fatalf("target %s: completeness over 1h %v: %s", tg.Instance, *h, body)
		}
		t.Logf("target %s: completeness %v over 5m, %v over 1h", tg.Instance, *tg.Completeness["5m"], *h)
	}
	if code, body := httpGet(base + "/api/v1/status/targets?below=0.999&window=1h"); code != 200 || !json.Valid([]byte(body)) ||
		countTargets(t, body) != 1 {
		t.Fatalf("below=0.999: %d %s, want target a alone", code, body)
	}
	for _, bad := range []string{"window=2h", "below=0", "below=x", "limit=0", "limit=-3"} {
		if code, body := httpGet(base + "/api/v1/status/targets?" + bad); code != 400 {
			t.Errorf("%s: %d %s, want 400", bad, code, body)
		}
	}
	q := url.Values{"query": {`etcdgate_target_completeness_ratio{window="1h",product="payments"}`}}
	waitFor(t, 20*time.Second, "the completeness series", func() bool {
		scrapeDue()
		_, body := httpGet(base + "/api/v1/query?" + q.Encode())
		return countResults(body) == 2
	})
	// The rule pack's completeness SLO reads these series: its SLI
	// queries answer per cluster with the standard labels, no error. Its
	// subqueries step 5m, aligned on the clock, and the series are only
	// seconds old here: the test steps 1s over 30s.
	slos, err := slo.LoadFile("../../deploy/rules/slos.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range slos {
		if d.Name != "etcd-collection" {
			continue
		}
		for _, c := range []struct {
			query  string
			answer func(v float64) bool
		}{{d.SLI.ErrorQuery, func(v float64) bool { return v == 0 }}, {d.SLI.TotalQuery, func(v float64) bool { return v >= 20 }}} {
			expr := strings.ReplaceAll(c.query, "[{{.window}}:5m]", "[30s:1s]")
			waitFor(t, 20*time.Second, "SLI "+expr, func() bool {
				scrapeDue()
				_, body := httpGet(base + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
				var r struct {
					Data struct {
						Result []struct {
							Metric map[string]string `json:"metric"`
							Value  [2]any            `json:"value"`
						} `json:"result"`
					} `json:"data"`
				}
				if json.Unmarshal([]byte(body), &r) != nil || len(r.Data.Result) != 1 || r.Data.Result[0].Metric["product"] != "payments" {
					return false
				}
				v, err := strconv.ParseFloat(r.Data.Result[0].Value[1].(string), 64)
				return err == nil && c.answer(v)
			})
		}
		return
	}
	t.Fatal("no etcd-collection SLO in the rule pack")
}

func countTargets(t *testing.T, body string) int {
	var r struct {
		Data struct {
			Targets []json.RawMessage `json:"targets"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return len(r.Data.Targets)
}

func countResults(body string) int {
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(body), &r) != nil {
		return -1
	}
	return len(r.Data.Result)
}
