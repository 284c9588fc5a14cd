package main

import (
	"encoding/json"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestRingCompleteness: a scrape's samples reach the ring through two
// nodes (a load balancer before the ring); every node counts what it
// received, and /api/v1/status/targets on a third node, which received
// nothing, answers with every node's counts merged: the target's 10
// series, its 15 s interval, and a completeness of 1. The completeness
// series are written by one node for the whole ring.
func TestRingCompleteness(t *testing.T) {
	h := newRingHarness(t, "")
	h.top = "evaluation_interval: 1s\n"
	names := []string{"n0", "n1", "n2"}
	for _, n := range names {
		h.start(n, 2)
	}
	waitActive(t, h.nodes["n2"].url, 30*time.Second, names...)
	last := time.Now().Truncate(15 * time.Second)
	for i := range 40 {
		ts := last.Add(-time.Duration(39-i) * 15 * time.Second).UnixMilli()
		var series []prompb.TimeSeries
		for s := range 10 {
			series = append(series, prompb.TimeSeries{
				Labels: []prompb.Label{{Name: "__name__", Value: "etcd_metric_" + strconv.Itoa(s)}, {Name: "cluster", Value: "etcd-1"},
					{Name: "instance", Value: "m1"}, {Name: "job", Value: "etcd"}},
				Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts}},
			})
		}
		remoteWrite(t, h.nodes["n0"].url, series[:4])
		remoteWrite(t, h.nodes["n1"].url, series[4:])
	}
	code, body := httpGet(h.nodes["n2"].url + "/api/v1/status/targets?" + url.Values{"instance": {"m1"}}.Encode())
	var r struct {
		Data struct {
			Targets []struct {
				Interval     float64             `json:"scrape_interval_seconds"`
				Series       int                 `json:"series"`
				Completeness map[string]*float64 `json:"completeness"`
			} `json:"targets"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || code != 200 || len(r.Data.Targets) != 1 || len(r.Warnings) != 0 {
		t.Fatalf("%d %s", code, body)
	}
	tg := r.Data.Targets[0]
	if tg.Series != 10 || tg.Interval != 15 || tg.Completeness["5m"] == nil || *tg.Completeness["5m"] != 1 {
		t.Fatalf("through n2: %s", body)
	}
	q := url.Values{"query": {`etcdgate_target_series{instance="m1"}`}}
	waitFor(t, 20*time.Second, "the completeness series of the whole ring", func() bool {
		_, body := httpGet(h.nodes["n2"].url + "/api/v1/query?" + q.Encode())
		return countResults(body) == 1 && json.Valid([]byte(body)) && containsValue(body, "10")
	})
}

func containsValue(body, v string) bool {
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	return json.Unmarshal([]byte(body), &r) == nil && len(r.Data.Result) == 1 && r.Data.Result[0].Value[1] == v
}
