package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/evaluator"
)

// seedQuery writes three etcd members' request counters, one sample a
// minute for ten minutes up to testNow.
func seedQuery(t *testing.T, opts evaluator.Options) *testEnv {
	e := newTestEnv(t)
	e.api.SetQueryEngine(evaluator.NewEngine(e.head, opts))
	var ts []prompb.TimeSeries
	for _, m := range []string{"m1", "m2", "m3"} {
		var samples []prompb.Sample
		for i := 10; i >= 0; i-- {
			samples = append(samples, prompb.Sample{Value: float64(60 * (10 - i)), Timestamp: ms(time.Duration(i) * time.Minute)})
		}
		ts = append(ts, series(samples, "__name__", "etcd_requests_total", "cluster", "c1", "instance", m))
	}
	if code, body := e.post(encode(t, ts...), nil); code != http.StatusNoContent {
		t.Fatalf("seed: %d %s", code, body)
	}
	return e
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

func (e *testEnv) query(path string, params url.Values) (int, response, queryData) {
	e.t.Helper()
	code, env, raw := e.get(path, params)
	var d queryData
	if code == http.StatusOK {
		if err := json.Unmarshal(raw, &d); err != nil {
			e.t.Fatalf("%s: %v in %s", path, err, raw)
		}
	}
	return code, env, d
}

// jsonSecs is testNow minus offset as the API writes timestamps: seconds
// with three decimals only when there are milliseconds.
func jsonSecs(offset time.Duration) string {
	return strconv.FormatInt(testNow.Add(-offset).Unix(), 10)
}

func TestInstantQueryShapes(t *testing.T) {
	e := seedQuery(t, evaluator.Options{})
	at := jsonSecs(0)
	cases := []struct {
		query, resultType, result string
	}{
		{`sum by (cluster) (rate(etcd_requests_total[5m]))`, "vector",
			`[{"metric":{"cluster":"c1"},"value":[` + at + `,"3"]}]`},
		{`etcd_requests_total{instance="m2"}`, "vector",
			`[{"metric":{"__name__":"etcd_requests_total","cluster":"c1","instance":"m2"},"value":[` + at + `,"600"]}]`},
		{`etcd_requests_total{instance="m2"}[2m]`, "matrix",
			`[{"metric":{"__name__":"etcd_requests_total","cluster":"c1","instance":"m2"},"values":[[` + jsonSecs(time.Minute) + `,"540"],[` + at + `,"600"]]}]`},
		{`1 / 0`, "scalar", `[` + at + `,"+Inf"]`},
		{`"etcd"`, "string", `[` + at + `,"etcd"]`},
		{`absent(nothing{cluster="c9"})`, "vector", `[{"metric":{"cluster":"c9"},"value":[` + at + `,"1"]}]`},
	}
	for _, c := range cases {
		code, env, d := e.query("/api/v1/query", url.Values{"query": {c.query}, "time": {secs(0)}})
		if code != http.StatusOK || env.Status != "success" {
			t.Fatalf("%s: %d %+v", c.query, code, env)
		}
		if d.ResultType != c.resultType || string(d.Result) != c.result {
			t.Errorf("%s:\n got %s %s\nwant %s %s", c.query, d.ResultType, d.Result, c.resultType, c.result)
		}
	}
}

func TestRangeQueryShape(t *testing.T) {
	e := seedQuery(t, evaluator.Options{})
	code, env, d := e.query("/api/v1/query_range", url.Values{
		"query": {`sum(etcd_requests_total)`}, "start": {secs(2 * time.Minute)}, "end": {secs(0)}, "step": {"60"},
	})
	if code != http.StatusOK {
		t.Fatalf("%d %+v", code, env)
	}
	want := `[{"metric":{},"values":[[` + jsonSecs(2*time.Minute) + `,"1440"],[` + jsonSecs(time.Minute) + `,"1620"],[` + jsonSecs(0) + `,"1800"]]}]`
	if d.ResultType != "matrix" || string(d.Result) != want {
		t.Fatalf("got %s %s\nwant %s", d.ResultType, d.Result, want)
	}
	// A sort in a range query is answered with Prometheus's warning.
	_, env, _ = e.query("/api/v1/query_range", url.Values{
		"query": {`sort(etcd_requests_total)`}, "start": {secs(time.Minute)}, "end": {secs(0)}, "step": {"1m"},
	})
	if len(env.Warnings) != 1 || !strings.Contains(env.Warnings[0], "sort is ineffective") {
		t.Fatalf("warnings %v", env.Warnings)
	}
}

// TestQueryErrors checks each kind of bad request gets Prometheus's error
// type and status, and that the node keeps answering afterwards.
func TestQueryErrors(t *testing.T) {
	e := seedQuery(t, evaluator.Options{MaxSamples: 20})
	rng := func(q, start, end, step string) url.Values {
		return url.Values{"query": {q}, "start": {start}, "end": {end}, "step": {step}}
	}
	cases := []struct {
		name, path string
		params     url.Values
		code       int
		typ        errorType
		msg        string
	}{
		{"no query", "/api/v1/query", url.Values{}, 400, errorBadData, "no expression found"},
		{"parse error", "/api/v1/query", url.Values{"query": {"sum(rate(x[5m]"}}, 400, errorBadData, "bad query"},
		{"type error", "/api/v1/query", url.Values{"query": {"rate(etcd_requests_total)"}}, 400, errorBadData, "expected type range vector"},
		{"unknown function", "/api/v1/query", url.Values{"query": {"nosuch(x)"}}, 400, errorBadData, "nosuch"},
		{"empty matcher", "/api/v1/query", url.Values{"query": {`{job=""}`}}, 400, errorBadData, "non-empty matcher"},
		{"bad time", "/api/v1/query", url.Values{"query": {"1"}, "time": {"yesterday"}}, 400, errorBadData, `invalid parameter "time"`},
		{"bad timeout", "/api/v1/query", url.Values{"query": {"1"}, "timeout": {"soon"}}, 400, errorBadData, `invalid parameter "timeout"`},
		{"missing step", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {"1"}}, 400, errorBadData, `"step": missing`},
		{"zero step", "/api/v1/query_range", rng("1", "0", "60", "0"), 400, errorBadData, "zero or negative"},
		{"end before start", "/api/v1/query_range", rng("1", "60", "0", "1"), 400, errorBadData, "before start"},
		{"too many points", "/api/v1/query_range", rng("1", "0", "86400", "1"), 400, errorBadData, "11,000 points"},
		{"range vector in range query", "/api/v1/query_range", rng("etcd_requests_total[5m]", "0", "60", "15"), 400, errorBadData, "range vector"},
		{"too many samples", "/api/v1/query_range", rng("etcd_requests_total", secs(10*time.Minute), secs(0), "60"), 422, errorExecution, "too many samples"},
		{"bad regex at runtime", "/api/v1/query", url.Values{"query": {`label_replace(etcd_requests_total, "x", "$1", "instance", "(")`}}, 422, errorExecution, "invalid regular expression"},
		{"timeout", "/api/v1/query", url.Values{"query": {"etcd_requests_total"}, "timeout": {"0"}}, 503, errorTimeout, "timed out"},
	}
	for _, c := range cases {
		code, env, _ := e.query(c.path, c.params)
		if code != c.code || env.ErrorType != c.typ || !strings.Contains(env.Error, c.msg) {
			t.Errorf("%s: got %d %s %q, want %d %s containing %q", c.name, code, env.ErrorType, env.Error, c.code, c.typ, c.msg)
		}
	}
	code, env, d := e.query("/api/v1/query", url.Values{"query": {"count(etcd_requests_total)"}, "time": {secs(0)}})
	if code != http.StatusOK || !strings.Contains(string(d.Result), `"3"`) {
		t.Fatalf("node did not keep answering: %d %+v %s", code, env, d.Result)
	}
	if code, _ := e.getRaw("/-/healthy"); code != http.StatusOK {
		t.Fatalf("healthy: %d", code)
	}
}

func TestQueryPostForm(t *testing.T) {
	e := seedQuery(t, evaluator.Options{})
	resp, err := http.PostForm(e.server.URL+"/api/v1/query", url.Values{"query": {"count(etcd_requests_total)"}, "time": {secs(0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data queryData `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if !strings.Contains(string(env.Data.Result), `"3"`) {
		t.Fatalf("result %s", env.Data.Result)
	}
}

func TestQueryBeforeEngineIsUnavailable(t *testing.T) {
	e := newTestEnv(t)
	code, env, _ := e.query("/api/v1/query", url.Values{"query": {"1"}})
	if code != http.StatusServiceUnavailable || env.ErrorType != errorUnavailable {
		t.Fatalf("%d %+v", code, env)
	}
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: `"plain"`, `q"b\s`: `"q\"b\\s"`, "nl\n\t": `"nl\n\t"`, "\x01<>&": `"\u0001\u003c\u003e\u0026"`,
		"héllo": `"héllo"`, "bad\xffutf8": `"bad\ufffdutf8"`,
	} {
		got := string(appendJSONString(nil, in))
		if got != want {
			t.Errorf("%q: got %s want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%q: invalid JSON %s: %v", in, got, err)
		}
	}
}

func (e *testEnv) getRaw(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.server.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, resp.Body)
	return resp.StatusCode, b.String()
}
