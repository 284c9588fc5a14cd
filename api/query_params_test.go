package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
)

// TestQueryLimit: limit keeps the first series and warns as Prometheus 3
// does; a limit the result fits in changes nothing.
func TestQueryLimit(t *testing.T) {
	e := seedQuery(t, evaluator.Options{})
	for _, tc := range []struct {
		path    string
		params  url.Values
		series  int
		warning bool
	}{
		{"/api/v1/query", url.Values{"limit": {"2"}}, 2, true},
		{"/api/v1/query", url.Values{"limit": {"3"}}, 3, false},
		{"/api/v1/query", url.Values{"limit": {"0"}}, 3, false},
		{"/api/v1/query", url.Values{}, 3, false},
		{"/api/v1/query_range", url.Values{"limit": {"1"}}, 1, true},
		{"/api/v1/query_range", url.Values{"limit": {"4"}}, 3, false},
	} {
		p := tc.params
		p.Set("query", "etcd_requests_total")
		p.Set("time", secs(0))
		if tc.path == "/api/v1/query_range" {
			p.Set("start", secs(5*time.Minute))
			p.Set("end", secs(0))
			p.Set("step", "60")
		}
		code, env, d := e.query(tc.path, p)
		if code != http.StatusOK {
			t.Fatalf("%s %v: %d %+v", tc.path, p, code, env)
		}
		var res []json.RawMessage
		if err := json.Unmarshal(d.Result, &res); err != nil {
			t.Fatal(err)
		}
		warned := slices.Contains(env.Warnings, "results truncated due to limit")
		if len(res) != tc.series || warned != tc.warning {
			t.Errorf("%s %v: %d series, warnings %q; want %d, warning %v", tc.path, p, len(res), env.Warnings, tc.series, tc.warning)
		}
	}
}

// TestQueryLookbackDelta: the last samples are at testNow; three minutes
// later the default 5m lookback finds them and lookback_delta=1m does not.
func TestQueryLookbackDelta(t *testing.T) {
	e := seedQuery(t, evaluator.Options{})
	later := secs(-3 * time.Minute)
	for _, tc := range []struct {
		lookback string
		series   int
	}{{"", 3}, {"1m", 0}, {"60", 0}, {"4m", 3}, {"240.5", 3}} {
		p := url.Values{"query": {"etcd_requests_total"}, "time": {later}}
		if tc.lookback != "" {
			p.Set("lookback_delta", tc.lookback)
		}
		code, env, d := e.query("/api/v1/query", p)
		var res []json.RawMessage
		if code != http.StatusOK || json.Unmarshal(d.Result, &res) != nil || len(res) != tc.series {
			t.Errorf("lookback_delta %q: %d %+v %s, want %d series", tc.lookback, code, env, d.Result, tc.series)
		}
		p.Set("start", secs(-2*time.Minute))
		p.Set("end", later)
		p.Set("step", "60")
		code, env, d = e.query("/api/v1/query_range", p)
		res = nil
		if code != http.StatusOK || json.Unmarshal(d.Result, &res) != nil || len(res) != tc.series {
			t.Errorf("range, lookback_delta %q: %d %+v %s, want %d series", tc.lookback, code, env, d.Result, tc.series)
		}
	}
}

// queryStats is Prometheus's stats object (util/stats.BuiltinStats).
type queryStats struct {
	Timings map[string]float64 `json:"timings"`
	Samples map[string]any     `json:"samples"`
}

// TestQueryStatsParam: stats=true answers timings and sample counts in
// Prometheus's shape, stats=all adds the samples of every step; no stats
// parameter, no stats object.
func TestQueryStatsParam(t *testing.T) {
	e := seedQuery(t, evaluator.Options{})
	timings := []string{"evalTotalTime", "execQueueTime", "execTotalTime", "innerEvalTime", "queryPreparationTime", "resultSortTime"}
	for _, tc := range []struct {
		stats   string
		samples []string
		perStep any
	}{
		{"", nil, nil},
		{"true", []string{"peakSamples", "samplesRead", "seriesTouched", "totalQueryableSamples"}, nil},
		{"all", []string{"peakSamples", "samplesRead", "samplesReadPerStep", "seriesTouched", "totalQueryableSamples", "totalQueryableSamplesPerStep"},
			[]any{[]any{json.Number(jsonSecs(3 * time.Minute)), json.Number("3")}, []any{json.Number(jsonSecs(2 * time.Minute)), json.Number("3")},
				[]any{json.Number(jsonSecs(time.Minute)), json.Number("3")}, []any{json.Number(jsonSecs(0)), json.Number("3")}}},
	} {
		p := url.Values{"query": {"etcd_requests_total"}, "start": {secs(3 * time.Minute)}, "end": {secs(0)}, "step": {"60"}}
		if tc.stats != "" {
			p.Set("stats", tc.stats)
		}
		code, env, raw := e.get("/api/v1/query_range", p)
		if code != http.StatusOK {
			t.Fatalf("stats=%s: %d %+v", tc.stats, code, env)
		}
		var d struct {
			Stats *queryStats `json:"stats"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if tc.stats == "" {
			if d.Stats != nil {
				t.Errorf("stats without the parameter: %s", raw)
			}
			continue
		}
		if d.Stats == nil || !reflect.DeepEqual(sortedKeys(d.Stats.Timings), timings) || !reflect.DeepEqual(sortedKeys(d.Stats.Samples), tc.samples) {
			t.Fatalf("stats=%s: %s", tc.stats, raw)
		}
		s := d.Stats.Samples
		if s["totalQueryableSamples"] != json.Number("12") || s["seriesTouched"] != json.Number("3") ||
			!reflect.DeepEqual(s["totalQueryableSamplesPerStep"], tc.perStep) {
			t.Errorf("stats=%s: samples %v, want 12 over 3 series, per step %v", tc.stats, s, tc.perStep)
		}
		if d.Stats.Timings["execTotalTime"] <= 0 {
			t.Errorf("stats=%s: timings %v", tc.stats, d.Stats.Timings)
		}
	}
}

// TestQueryParamsMalformed: every invalid or unsupported value is a
// bad_data 400 on both endpoints.
func TestQueryParamsMalformed(t *testing.T) {
	e := seedQuery(t, evaluator.Options{})
	for _, bad := range []url.Values{
		{"limit": {"-1"}}, {"limit": {"x"}}, {"limit": {"1.5"}}, {"limit": {"99999999999999999999"}},
		{"lookback_delta": {"abc"}}, {"lookback_delta": {"-1m"}}, {"lookback_delta": {"-5"}}, {"lookback_delta": {"1e300"}},
		{"stats": {"yes"}}, {"stats": {"1"}}, {"stats": {"ALL"}},
		{"cost": {"true"}}, {"max_series": {"5"}}, {"max_samples_read": {"5"}}, {"max_query_duration": {"1m"}},
	} {
		for _, path := range []string{"/api/v1/query", "/api/v1/query_range"} {
			p := url.Values{"query": {"etcd_requests_total"}, "start": {secs(3 * time.Minute)}, "end": {secs(0)}, "step": {"60"}}
			for k, v := range bad {
				p[k] = v
			}
			code, env, _ := e.get(path, p)
			if code != http.StatusBadRequest || env.ErrorType != errorBadData {
				t.Errorf("%s %v: %d %+v, want 400 bad_data", path, bad, code, env)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestQueryParamsThroughRing: on a 3-node ring with RF 2 (no node holds
// every series), limit, lookback_delta and stats hold through the
// fan-out Queryable, whichever node answers.
func TestQueryParamsThroughRing(t *testing.T) {
	nodes := newFanoutRing(t, 3, 2)
	const members = 12
	if code := postBody(t, nodes[0].srv.URL, etcdFleet(members, ms(3*time.Minute), 1)); code != http.StatusNoContent {
		t.Fatalf("write: %d", code)
	}
	for _, n := range nodes {
		if n.head.NumSeries() == 5*members {
			t.Fatalf("node %s holds every series", n.name)
		}
	}
	at := strconv.FormatInt(ms(0)/1000, 10) // three minutes after the samples
	q := "etcd_server_proposals_committed_total"
	for _, n := range nodes {
		count := func(p url.Values) (int, apiAnswer) {
			t.Helper()
			p.Set("query", q)
			p.Set("time", at)
			code, a := apiGet(t, n.srv.URL, "/api/v1/query", p)
			var d struct {
				Result []json.RawMessage `json:"result"`
				Stats  *queryStats       `json:"stats"`
			}
			if code != http.StatusOK || json.Unmarshal(a.Data, &d) != nil {
				t.Fatalf("%s %v: %d %+v", n.name, p, code, a)
			}
			if d.Stats != nil && d.Stats.Samples["totalQueryableSamples"] != float64(len(d.Result)) {
				t.Errorf("%s %v: stats %v for %d series", n.name, p, d.Stats.Samples, len(d.Result))
			}
			return len(d.Result), a
		}
		if got, _ := count(url.Values{"stats": {"all"}}); got != members {
			t.Errorf("%s: %d series with the default lookback, want %d", n.name, got, members)
		}
		if got, _ := count(url.Values{"lookback_delta": {"1m"}, "stats": {"true"}}); got != 0 {
			t.Errorf("%s: %d series with lookback_delta=1m, want 0", n.name, got)
		}
		if got, a := count(url.Values{"limit": {"5"}}); got != 5 || !slices.Contains(a.Warnings, "results truncated due to limit") {
			t.Errorf("%s: limit 5: %d series, warnings %q", n.name, got, a.Warnings)
		}
	}
}
