package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// postQuery sends params to path as a form and returns the status and
// the decoded envelope.
func postQuery(t *testing.T, base, path string, params url.Values) (int, apiEnvelope) {
	t.Helper()
	resp, err := http.PostForm(base+path, params)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return 0, apiEnvelope{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env apiEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Errorf("%s: %d, body not JSON: %.200s", path, resp.StatusCode, body)
	}
	if strings.Contains(string(body), "goroutine ") {
		t.Errorf("%s: a stack trace in the answer: %.500s", path, body)
	}
	return resp.StatusCode, env
}

type apiEnvelope struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Data      json.RawMessage `json:"data"`
}

// entries is the number of entries of a listing's data (-1: not a list).
func (e apiEnvelope) entries() int {
	var list []json.RawMessage
	if json.Unmarshal(e.Data, &list) != nil {
		return -1
	}
	return len(list)
}

// oneQuery is an attack of one query request.
func oneQuery(path string, params url.Values) func(t *testing.T, base string) []int {
	return func(t *testing.T, base string) []int {
		code, env := postQuery(t, base, path, params)
		t.Logf("%d %s: %.200s", code, env.ErrorType, env.Error)
		return []int{code}
	}
}

// seedSeries writes n series of metric attack_many (one sample each) in
// batches of 1,000.
func seedSeries(t *testing.T, base string, n int) {
	t.Helper()
	now := time.Now().UnixMilli()
	for start := 0; start < n; start += 1000 {
		var wr prompb.WriteRequest
		for i := start; i < min(start+1000, n); i++ {
			wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "attack_many"}, {Name: "pod", Value: fmt.Sprintf("pod-%07d", i)}},
				Samples: []prompb.Sample{{Value: 1, Timestamp: now}},
			})
		}
		raw, _ := wr.Marshal()
		resp, err := http.Post(base+"/api/v1/write", "application/x-protobuf", strings.NewReader(string(snappy.Encode(nil, raw))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("seed: %d", resp.StatusCode)
		}
	}
}

// TestAttackQueries: hostile query text, resolutions and subqueries are
// refused before they are parsed or allocated, listings stop at their
// limit and their timeout, and a crowd of heavy queries gets answers or
// 503 while the node stays up.
func TestAttackQueries(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "etcdgate.yml")
	if err := os.WriteFile(cfg, []byte(`query:
  max_concurrency: 2
  max_queued: 4
  max_series: 20000
  listing_timeout: 5s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	year := url.Values{"query": {"vector(1)"}, "start": {"1700000000"}, "end": {"1731536000"}, "step": {"0.001"}}
	runAttacks(t, []attack{
		{
			name:    "subquery of ten years at 1ms",
			send:    oneQuery("/api/v1/query", url.Values{"query": {"count_over_time(vector(1)[3650d:1ms])"}}),
			allowed: []int{http.StatusUnprocessableEntity}, within: 2 * time.Second, maxGrowth: 100 << 20,
		},
		{
			name:    "subquery of ten years at 1ms, offset, in a range query",
			send:    oneQuery("/api/v1/query_range", url.Values{"query": {"max_over_time(vector(1)[3650d:1ms] offset 365d)"}, "start": {"1700000000"}, "end": {"1700003600"}, "step": {"60"}}),
			allowed: []int{http.StatusUnprocessableEntity}, within: 2 * time.Second, maxGrowth: 100 << 20,
		},
		{
			// Prometheus answers a resolution past 11,000 points per series
			// with bad_data: so does etcdgate.
			name:    "range query over a year at 1ms",
			send:    oneQuery("/api/v1/query_range", year),
			allowed: []int{http.StatusBadRequest}, within: 2 * time.Second, maxGrowth: 100 << 20,
		},
		{
			name:    "a megabyte of (",
			send:    oneQuery("/api/v1/query", url.Values{"query": {strings.Repeat("(", 1<<20)}}),
			allowed: []int{http.StatusBadRequest}, within: 2 * time.Second, maxGrowth: 100 << 20,
		},
		{
			name:    "a megabyte of ( in match[]",
			send:    oneQuery("/api/v1/series", url.Values{"match[]": {strings.Repeat("(", 1<<20)}}),
			allowed: []int{http.StatusBadRequest}, within: 2 * time.Second, maxGrowth: 100 << 20,
		},
		{
			name: "deep text under the length limit",
			send: func(t *testing.T, base string) []int {
				var codes []int
				for _, q := range []string{
					strings.Repeat("(", 30000) + "1" + strings.Repeat(")", 30000),
					strings.Repeat("-", 60000) + "1",
					strings.Repeat("- ", 30000) + "1",
					strings.Repeat("1 + ", 15000) + "1",
					strings.Repeat("vector(1) ^ ", 5000) + "vector(1)",
					strings.Repeat("abs(", 12000) + "vector(1)" + strings.Repeat(")", 12000),
					"with (a = vector(1) + vector(1), b = a + a, c = b + b, d = c + c) d",
				} {
					code, env := postQuery(t, base, "/api/v1/query", url.Values{"query": {q}})
					t.Logf("%.20q...: %d %.120s", q, code, env.Error)
					codes = append(codes, code)
				}
				return codes
			},
			allowed: []int{http.StatusBadRequest}, within: 5 * time.Second, maxGrowth: 100 << 20,
		},
		{
			name: "series listing on many series",
			args: []string{"--config", cfg},
			send: func(t *testing.T, base string) []int {
				seedSeries(t, base, 50000)
				match := url.Values{"match[]": {`{__name__=~".+"}`}}
				limited := url.Values{"match[]": match["match[]"], "limit": {"10"}}
				code, env := postQuery(t, base, "/api/v1/series", limited)
				if code != http.StatusOK || env.entries() != 10 || len(env.Warnings) != 1 {
					t.Errorf("series with limit=10: %d, %d entries, warnings %q", code, env.entries(), env.Warnings)
				}
				codes := []int{code}
				start := time.Now()
				code, env = postQuery(t, base, "/api/v1/series", match)
				if took := time.Since(start); code == http.StatusOK {
					t.Logf("series without limit: %d entries, warnings %q in %s", env.entries(), env.Warnings, took)
				} else {
					t.Logf("series without limit: %d %s in %s", code, env.Error, took)
				}
				codes = append(codes, code)
				// A listing with a timeout shorter than it needs ends at it.
				start = time.Now()
				code, env = postQuery(t, base, "/api/v1/series", url.Values{"match[]": match["match[]"], "timeout": {"0.001"}})
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("series with timeout=1ms answered %d after %s", code, took)
				}
				t.Logf("series with timeout=1ms: %d %s", code, env.Error)
				codes = append(codes, code)
				for _, path := range []string{"/api/v1/labels", "/api/v1/label/pod/values"} {
					code, env = postQuery(t, base, path, limited)
					if code == http.StatusOK && env.entries() > 10 {
						t.Errorf("%s with limit=10: %d entries", path, env.entries())
					}
					codes = append(codes, code)
				}
				code, _ = httpGet(base + "/api/v1/status/tsdb")
				codes = append(codes, code)
				// A query whose selector matches more than max_series.
				code, env = postQuery(t, base, "/api/v1/query", url.Values{"query": {`count({__name__=~".+"})`}})
				if code != http.StatusUnprocessableEntity || !strings.Contains(env.Error, "more than 20000 series") {
					t.Errorf("a selector over 50,000 series with max_series 20000: %d %s", code, env.Error)
				}
				return append(codes, code)
			},
			// 503 is a listing past its timeout (5s here); 422 the query
			// past max_series.
			allowed: []int{http.StatusOK, http.StatusServiceUnavailable, http.StatusUnprocessableEntity}, within: 60 * time.Second, maxGrowth: 400 << 20,
		},
		{
			name: "a crowd of heavy queries",
			args: []string{"--config", cfg},
			send: func(t *testing.T, base string) []int {
				var (
					mu    sync.Mutex
					codes []int
					wg    sync.WaitGroup
				)
				for i := range 64 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						// 864,000 steps, just under max_subquery_steps.
						q := fmt.Sprintf("count_over_time(vector(%d)[1d:100ms])", i)
						code, _ := postQuery(t, base, "/api/v1/query", url.Values{"query": {q}})
						mu.Lock()
						codes = append(codes, code)
						mu.Unlock()
					}()
				}
				wg.Wait()
				n503 := 0
				for _, c := range codes {
					if c == http.StatusServiceUnavailable {
						n503++
					}
				}
				t.Logf("%d of %d answered 503", n503, len(codes))
				return codes
			},
			allowed: []int{http.StatusOK, http.StatusServiceUnavailable}, within: 60 * time.Second, maxGrowth: 400 << 20,
		},
	})
}
