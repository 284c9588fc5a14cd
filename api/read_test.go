package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// seedRead writes three series: two etcd members and one apiserver, the
// apiserver's sample an hour older than the others.
func seedRead(t *testing.T) *testEnv {
	e := newTestEnv(t)
	old := []prompb.Sample{{Value: 1, Timestamp: ms(time.Hour)}}
	code, body := e.post(encode(t,
		series(one(1), "__name__", "up", "job", "etcd", "instance", "m1"),
		series(one(1), "__name__", "up", "job", "etcd", "instance", "m2"),
		series(old, "__name__", "up", "job", "apiserver", "instance", "a1"),
		series(one(5), "__name__", "etcd_server_has_leader", "job", "etcd", "instance", "m1"),
	), nil)
	if code != http.StatusNoContent {
		t.Fatalf("seed: %d %s", code, body)
	}
	return e
}

func secs(offset time.Duration) string {
	return strconv.FormatFloat(float64(testNow.Add(-offset).UnixMilli())/1000, 'f', 3, 64)
}

func TestSeriesEndpoint(t *testing.T) {
	e := seedRead(t)
	cases := []struct {
		name   string
		params url.Values
		want   string
		warn   bool
	}{
		{"one selector", url.Values{"match[]": {`up{job="etcd"}`}},
			`[{"__name__":"up","instance":"m1","job":"etcd"},{"__name__":"up","instance":"m2","job":"etcd"}]`, false},
		{"union of selectors, deduplicated", url.Values{"match[]": {`{instance="m1"}`, `up{instance=~"m1|a1"}`}},
			`[{"__name__":"etcd_server_has_leader","instance":"m1","job":"etcd"},{"__name__":"up","instance":"a1","job":"apiserver"},{"__name__":"up","instance":"m1","job":"etcd"}]`, false},
		{"time range excludes the old series", url.Values{"match[]": {`up`}, "start": {secs(10 * time.Minute)}, "end": {testNow.Format(time.RFC3339)}},
			`[{"__name__":"up","instance":"m1","job":"etcd"},{"__name__":"up","instance":"m2","job":"etcd"}]`, false},
		// The listing stops at the limit and one more, in the store's
		// order (series creation), not after sorting every match.
		{"limit truncates with a warning", url.Values{"match[]": {`up`}, "limit": {"1"}},
			`[{"__name__":"up","instance":"m1","job":"etcd"}]`, true},
		{"no match", url.Values{"match[]": {`nothing`}}, `[]`, false},
		{"negative regexp", url.Values{"match[]": {`up{job!~"etc.*"}`}},
			`[{"__name__":"up","instance":"a1","job":"apiserver"}]`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, env, data := e.get("/api/v1/series", c.params)
			if code != http.StatusOK || env.Status != "success" || string(data) != c.want {
				t.Fatalf("got %d %s %s, want %s", code, env.Status, data, c.want)
			}
			if c.warn != (len(env.Warnings) == 1 && env.Warnings[0] == truncatedWarning) {
				t.Fatalf("warnings %v", env.Warnings)
			}
		})
	}
}

func TestSeriesPostForm(t *testing.T) {
	e := seedRead(t)
	resp, err := http.PostForm(e.server.URL+"/api/v1/series", url.Values{"match[]": {`up{instance="m2"}`}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || len(env.Data) != 1 || env.Data[0]["instance"] != "m2" {
		t.Fatalf("POST series: %v %+v", err, env)
	}
}

func TestLabelsEndpoints(t *testing.T) {
	e := seedRead(t)
	cases := []struct {
		path   string
		params url.Values
		want   string
	}{
		{"/api/v1/labels", nil, `["__name__","instance","job"]`},
		{"/api/v1/labels", url.Values{"match[]": {`up{job="apiserver"}`}}, `["__name__","instance","job"]`},
		{"/api/v1/label/job/values", nil, `["apiserver","etcd"]`},
		{"/api/v1/label/__name__/values", nil, `["etcd_server_has_leader","up"]`},
		{"/api/v1/label/instance/values", url.Values{"match[]": {`up`}, "start": {secs(10 * time.Minute)}}, `["m1","m2"]`},
		{"/api/v1/label/instance/values", url.Values{"match[]": {`up{job="etcd"}`, `{job="apiserver"}`}}, `["a1","m1","m2"]`},
		{"/api/v1/label/instance/values", url.Values{"limit": {"2"}}, `["a1","m1"]`},
		{"/api/v1/label/missing/values", nil, `[]`},
	}
	for _, c := range cases {
		code, env, data := e.get(c.path, c.params)
		if code != http.StatusOK || string(data) != c.want {
			t.Fatalf("%s %v: got %d %s %s, want %s", c.path, c.params, code, env.Status, data, c.want)
		}
	}
}

// TestReadEndpointsRefuseBadParameters checks the Prometheus error shape
// for each malformed parameter.
func TestReadEndpointsRefuseBadParameters(t *testing.T) {
	e := seedRead(t)
	cases := []struct {
		path   string
		params url.Values
		msg    string
	}{
		{"/api/v1/series", nil, "no match[] parameter provided"},
		{"/api/v1/series", url.Values{"match[]": {`up{`}}, `invalid parameter "match[]"`},
		{"/api/v1/series", url.Values{"match[]": {`rate(up[5m])`}}, "is not a series selector"},
		{"/api/v1/series", url.Values{"match[]": {`{job=~".*"}`}}, "at least one non-empty matcher"},
		{"/api/v1/series", url.Values{"match[]": {`up`}, "start": {"yesterday"}}, `invalid parameter "start"`},
		{"/api/v1/series", url.Values{"match[]": {`up`}, "end": {"x"}}, `invalid parameter "end"`},
		{"/api/v1/series", url.Values{"match[]": {`up`}, "start": {"200"}, "end": {"100"}}, "end timestamp must not be before start time"},
		{"/api/v1/series", url.Values{"match[]": {`up`}, "limit": {"-1"}}, `invalid parameter "limit"`},
		{"/api/v1/labels", url.Values{"match[]": {`{job=""}`}}, "at least one non-empty matcher"},
		{"/api/v1/label/1bad/values", nil, "invalid label name"},
		{"/api/v1/status/tsdb", url.Values{"limit": {"0"}}, "limit must be a positive number"},
	}
	for _, c := range cases {
		code, env, _ := e.get(c.path, c.params)
		if code != http.StatusBadRequest || env.Status != "error" || env.ErrorType != errorBadData || !strings.Contains(env.Error, c.msg) {
			t.Fatalf("%s %v: got %d %+v, want 400 bad_data %q", c.path, c.params, code, env, c.msg)
		}
	}
}

func TestTSDBStatus(t *testing.T) {
	e := seedRead(t)
	code, _, data := e.get("/api/v1/status/tsdb", url.Values{"limit": {"2"}})
	if code != http.StatusOK {
		t.Fatal(code)
	}
	var st tsdbStatus
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if st.HeadStats.NumSeries != 4 || st.HeadStats.ChunkCount != 4 || st.HeadStats.MinTime != ms(time.Hour) || st.HeadStats.MaxTime != ms(time.Minute) {
		t.Fatalf("head stats %+v", st.HeadStats)
	}
	if len(st.SeriesCountByMetricName) != 2 || st.SeriesCountByMetricName[0] != (stat{"up", 3}) {
		t.Fatalf("by metric %+v", st.SeriesCountByMetricName)
	}
	if st.SeriesCountByLabelValuePair[0] != (stat{"__name__=up", 3}) || st.SeriesCountByLabelValuePair[1] != (stat{"job=etcd", 3}) {
		t.Fatalf("pairs %+v", st.SeriesCountByLabelValuePair)
	}
	for _, key := range []string{"headStats", "seriesCountByMetricName", "labelValueCountByLabelName", "memoryInBytesByLabelName", "seriesCountByLabelValuePair", "numSeries", "chunkCount", "minTime", "maxTime"} {
		if !strings.Contains(string(data), `"`+key+`"`) {
			t.Fatalf("key %s missing from %s", key, data)
		}
	}
}

func TestBuildInfoHealthReadyReload(t *testing.T) {
	e := seedRead(t)
	code, _, data := e.get("/api/v1/status/buildinfo", nil)
	if code != http.StatusOK || !strings.Contains(string(data), `"version":"1.2.3"`) || !strings.Contains(string(data), `"goVersion":"go1.26"`) {
		t.Fatalf("buildinfo %d %s", code, data)
	}
	for path, want := range map[string]int{"/-/healthy": 200, "/-/ready": 200} {
		resp, err := http.Get(e.server.URL + path)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	resp, _ := http.Post(e.server.URL+"/-/reload", "", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("reload with the lifecycle API off: %d", resp.StatusCode)
	}
}

func TestNotReadyRefusesWrites(t *testing.T) {
	a := New(Options{Ready: func() bool { return false }})
	for path, want := range map[string]int{"/-/ready": 503, "/-/healthy": 200} {
		rec := newRecorder()
		a.Handler().ServeHTTP(rec, mustRequest(t, "GET", path))
		if rec.Code != want {
			t.Fatalf("%s: %d, want %d", path, rec.Code, want)
		}
	}
	rec := newRecorder()
	a.Handler().ServeHTTP(rec, mustRequest(t, "POST", "/api/v1/write"))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("write while not ready: %d", rec.Code)
	}
}
