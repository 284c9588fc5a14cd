package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFormatQuery: the query comes back as Prometheus prints it.
func TestFormatQuery(t *testing.T) {
	e := newTestEnv(t)
	for q, want := range map[string]string{
		`sum(rate(x{a="b"}[5m]))by(job)`:      `sum by (job) (rate(x{a="b"}[5m]))`,
		`foo/on(a)group_left bar`:             "foo / on (a) group_left () bar",
		`  up  `:                              "up",
		`max_over_time(up[1h:5m] offset 1d)`:  "max_over_time(up[1h:5m] offset 1d)",
		`{__name__="up",job=~"etcd.*"} @ 100`: `{__name__="up",job=~"etcd.*"} @ 100.000`,
	} {
		code, env, raw := e.get("/api/v1/format_query", url.Values{"query": {q}})
		var got string
		if code != http.StatusOK || json.Unmarshal(raw, &got) != nil || got != want {
			t.Errorf("%s: %d %+v %s, want %q", q, code, env, raw, want)
		}
	}
}

// TestParseQuery: the syntax tree in Prometheus 3's shape (the
// differential test against Prometheus 3 itself is in cmd/etcdgate).
func TestParseQuery(t *testing.T) {
	e := newTestEnv(t)
	code, env, raw := e.get("/api/v1/parse_query", url.Values{"query": {`sum by (job) (rate(x{a="b"}[5m] offset 1m)) > bool 2`}})
	if code != http.StatusOK {
		t.Fatalf("%d %+v", code, env)
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	agg := tree["lhs"].(map[string]any)
	call := agg["expr"].(map[string]any)
	sel := call["args"].([]any)[0].(map[string]any)
	if tree["type"] != "binaryExpr" || tree["op"] != ">" || tree["bool"] != true || tree["matching"] != nil ||
		agg["type"] != "aggregation" || agg["op"] != "sum" || agg["grouping"].([]any)[0] != "job" ||
		call["type"] != "call" || call["func"].(map[string]any)["name"] != "rate" ||
		sel["type"] != "matrixSelector" || sel["range"] != 300000.0 || sel["offset"] != 60000.0 || sel["name"] != "x" ||
		len(sel["matchers"].([]any)) != 2 {
		t.Fatalf("tree %s", raw)
	}
	code, _, raw = e.get("/api/v1/parse_query", url.Values{"query": {`up`}})
	if code != http.StatusOK || strings.Contains(string(raw), "range") || !strings.Contains(string(raw), `"type":"vectorSelector"`) {
		t.Fatalf("selector: %d %s", code, raw)
	}
}

// TestQueryExemplars: valid requests get no exemplars (none are stored),
// as Prometheus answers: [] for a query with selectors, null without.
func TestQueryExemplars(t *testing.T) {
	e := newTestEnv(t)
	for q, want := range map[string]string{`up`: "[]", `rate(x[5m]) / y`: "[]", `1 + 1`: "null"} {
		code, env, raw := e.get("/api/v1/query_exemplars", url.Values{"query": {q}, "start": {secs(time.Hour)}, "end": {secs(0)}})
		if code != http.StatusOK || env.Status != "success" || string(raw) != want && !(want == "null" && raw == nil) {
			t.Errorf("%s: %d %+v %s, want %s", q, code, env, raw, want)
		}
	}
}

// TestPromQLToolsMalformed: every malformed parameter of format_query,
// parse_query and query_exemplars is bad_data.
func TestPromQLToolsMalformed(t *testing.T) {
	e := newTestEnv(t)
	deep := strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)
	for _, path := range []string{"/api/v1/format_query", "/api/v1/parse_query", "/api/v1/query_exemplars"} {
		for _, p := range []url.Values{
			{}, {"query": {""}}, {"query": {"sum("}}, {"query": {`x{a=~"("}`}}, {"query": {"up[5m"}}, {"query": {deep}},
			{"query": {"nosuchfunc(up)"}}, {"query": {"\xff"}},
		} {
			code, env, _ := e.get(path, p)
			if code != http.StatusBadRequest || env.ErrorType != errorBadData {
				t.Errorf("%s %q: %d %+v, want 400 bad_data", path, p.Get("query"), code, env)
			}
		}
	}
	for _, p := range []url.Values{
		{"query": {"up"}, "start": {"x"}}, {"query": {"up"}, "end": {"yesterday"}},
		{"query": {"up"}, "start": {secs(0)}, "end": {secs(time.Hour)}},
	} {
		code, env, _ := e.get("/api/v1/query_exemplars", p)
		if code != http.StatusBadRequest || env.ErrorType != errorBadData {
			t.Errorf("query_exemplars %v: %d %+v, want 400 bad_data", p, code, env)
		}
	}
}

// TestStatusConfigAndRuntimeInfo: the shapes Prometheus's client reads.
func TestStatusConfigAndRuntimeInfo(t *testing.T) {
	start := testNow.Add(-time.Hour)
	a := New(Options{
		Config:      func() (string, error) { return "retention: 15d\n", nil },
		RuntimeInfo: func() RuntimeInfo { return RuntimeInfo{StartTime: start, GOMAXPROCS: 2, StorageRetention: "15d"} },
	})
	hs := httptest.NewServer(a.Handler())
	t.Cleanup(hs.Close)
	srv := hs.URL
	var cfg struct {
		YAML string `json:"yaml"`
	}
	if code := getJSON(t, srv+"/api/v1/status/config", &cfg); code != http.StatusOK || cfg.YAML != "retention: 15d\n" {
		t.Fatalf("config: %d %+v", code, cfg)
	}
	var ri map[string]any
	if code := getJSON(t, srv+"/api/v1/status/runtimeinfo", &ri); code != http.StatusOK ||
		ri["startTime"] != start.Format(time.RFC3339Nano) || ri["GOMAXPROCS"] != 2.0 || ri["storageRetention"] != "15d" ||
		ri["serverTime"] == "0001-01-01T00:00:00Z" || ri["CWD"] == nil {
		t.Fatalf("runtimeinfo: %d %v", code, ri)
	}
	// Without them, the endpoints are not served.
	bare := httptest.NewServer(New(Options{}).Handler())
	t.Cleanup(bare.Close)
	resp, err := http.Get(bare.URL + "/api/v1/status/config")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("config without Options.Config: %d", resp.StatusCode)
	}
}
