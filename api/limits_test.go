package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/tsdb"
)

// countingStorage counts the label sets its queriers list, to show that
// listings stop at their limit instead of truncating afterwards.
type countingStorage struct {
	*tsdb.Head
	listed atomic.Int64
}

func (s *countingStorage) Querier(mint, maxt int64) (tsdb.Querier, error) {
	q, err := s.Head.Querier(mint, maxt)
	return countingQuerier{q, s}, err
}

type countingQuerier struct {
	tsdb.Querier
	s *countingStorage
}

func (q countingQuerier) ListSeries(ctx context.Context, fn func(labels.Labels) bool, ms ...*labels.Matcher) error {
	return q.Querier.(tsdb.SeriesLister).ListSeries(ctx, func(l labels.Labels) bool {
		q.s.listed.Add(1)
		return fn(l)
	}, ms...)
}

// seedMany adds n series of metric many, pod p0...p<n-1>, with a sample
// a minute before testNow.
func seedMany(t *testing.T, e *testEnv, n int) *countingStorage {
	t.Helper()
	app := e.head.Appender()
	for i := range n {
		if err := app.Append(labels.FromStrings("__name__", "many", "pod", fmt.Sprintf("p%05d", i)), ms(time.Minute), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	cs := &countingStorage{Head: e.head}
	b := e.api.backend.Load()
	e.api.SetBackend(b.ingester, cs)
	return cs
}

func TestListingLimits(t *testing.T) {
	e := newTestEnv(t)
	cs := seedMany(t, e, 5000)
	e.api.SetReadLimits(ReadLimits{ListingMaxResults: 100})
	cases := []struct {
		name       string
		path       string
		params     url.Values
		want       int    // entries returned
		warning    string // substring of the one warning; "" for none
		maxListed  int64  // label sets the store may list
		wantStatus int
	}{
		{"series with limit", "/api/v1/series", url.Values{"match[]": {`{__name__=~".+"}`}, "limit": {"10"}}, 10, truncatedWarning, 11, 200},
		{"series without limit stop at the cap", "/api/v1/series", url.Values{"match[]": {`many`}}, 100, "query.listing_max_results", 101, 200},
		{"series over the cap take the cap", "/api/v1/series", url.Values{"match[]": {`many`}, "limit": {"1000"}}, 100, "query.listing_max_results", 101, 200},
		{"series under the limit", "/api/v1/series", url.Values{"match[]": {`many{pod="p00042"}`}, "limit": {"10"}}, 1, "", 1, 200},
		{"two selectors, each stopped", "/api/v1/series", url.Values{"match[]": {`many{pod=~"p0.*"}`, `many{pod=~"p1.*"}`}, "limit": {"5"}}, 5, truncatedWarning, 12, 200},
		{"label values with a matcher", "/api/v1/label/pod/values", url.Values{"match[]": {`many`}, "limit": {"7"}}, 7, truncatedWarning, 8, 200},
		{"label values from the index", "/api/v1/label/pod/values", url.Values{"limit": {"7"}}, 7, truncatedWarning, 0, 200},
		{"label names", "/api/v1/labels", url.Values{"match[]": {`many`}, "limit": {"1"}}, 1, truncatedWarning, 2, 200},
		{"megabyte of brackets in match[]", "/api/v1/series", url.Values{"match[]": {strings.Repeat("(", 1<<20)}}, 0, "", 0, 400},
		{"deep match[]", "/api/v1/labels", url.Values{"match[]": {strings.Repeat("-", 5000) + "many"}}, 0, "", 0, 400},
		{"bad timeout", "/api/v1/series", url.Values{"match[]": {`many`}, "timeout": {"soon"}}, 0, "", 0, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs.listed.Store(0)
			body := c.params.Encode()
			resp, err := http.Post(e.server.URL+c.path, "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				response
				Data []any `json:"data"`
			}
			if err := decodeJSON(resp, &env); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, env.Error, c.wantStatus)
			}
			if c.wantStatus != 200 {
				if env.ErrorType != errorBadData {
					t.Fatalf("error type %q", env.ErrorType)
				}
				return
			}
			if len(env.Data) != c.want {
				t.Fatalf("%d entries, want %d", len(env.Data), c.want)
			}
			if (c.warning == "") != (len(env.Warnings) == 0) || (c.warning != "" && !strings.Contains(env.Warnings[0], c.warning)) {
				t.Fatalf("warnings %q, want %q", env.Warnings, c.warning)
			}
			if n := cs.listed.Load(); n > c.maxListed {
				t.Fatalf("listed %d label sets, bound %d", n, c.maxListed)
			}
		})
	}
}

// TestListingSlots: listings have slots of their own; with all taken, a
// listing waits until its timeout and answers 503, while queries still
// answer. Every listing endpoint takes a slot.
func TestListingSlots(t *testing.T) {
	e := newTestEnv(t)
	seedMany(t, e, 10)
	e.api.SetQueryEngine(evaluator.NewEngine(e.head, evaluator.Options{}))
	e.api.opts.SLOStatus = func(ctx context.Context, _ time.Time) (any, error) { return map[string]any{}, nil }
	e.api.SetReadLimits(ReadLimits{ListingConcurrency: 1})
	st := e.api.listingState()
	st.slots <- struct{}{} // a listing runs
	for _, path := range []string{"/api/v1/series", "/api/v1/labels", "/api/v1/label/pod/values",
		"/api/v1/status/tsdb", "/api/v1/slo"} {
		code, env, _ := e.get(path, url.Values{"timeout": {"0.05"}, "match[]": {"many"}})
		if code != http.StatusServiceUnavailable || env.ErrorType != errorUnavailable {
			t.Errorf("%s with every slot taken: %d %+v", path, code, env)
		}
	}
	// A bad request is answered at once, without waiting for a slot.
	if code, env, _ := e.get("/api/v1/series", url.Values{"timeout": {"1h"}}); code != http.StatusBadRequest {
		t.Errorf("series without match[] while listings are busy: %d %+v", code, env)
	}
	if code, env, _ := e.get("/api/v1/query", url.Values{"query": {"many"}, "time": {secs(0)}}); code != http.StatusOK {
		t.Fatalf("a query while listings are busy: %d %+v", code, env)
	}
	<-st.slots
	for _, path := range []string{"/api/v1/series", "/api/v1/labels", "/api/v1/status/tsdb", "/api/v1/slo"} {
		if code, env, _ := e.get(path, url.Values{"match[]": {"many"}}); code != http.StatusOK {
			t.Errorf("%s with a free slot: %d %+v", path, code, env)
		}
	}
	if len(st.slots) != 0 {
		t.Fatalf("%d listing slots still held", len(st.slots))
	}
}

// fakeEngine answers every query with err.
type fakeEngine struct{ err error }

func (f fakeEngine) InstantWith(context.Context, string, time.Time, evaluator.QueryOpts) (*evaluator.Result, error) {
	return nil, f.err
}

func (f fakeEngine) RangeWith(context.Context, string, time.Time, time.Time, time.Duration, evaluator.QueryOpts) (*evaluator.Result, error) {
	return nil, f.err
}

// TestQueryErrorsForOverload: a panic is a short 500 whose stack is
// logged (once per interval, however many follow); a full queue is 503;
// query text over the limits is 400.
func TestQueryErrorsForOverload(t *testing.T) {
	e := newTestEnv(t)
	var logs bytes.Buffer
	e.api.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	e.api.SetQueryEngine(fakeEngine{&evaluator.PanicError{Value: "index out of range", Stack: []byte("goroutine 7 [running]:\nevaluator.go:12")}})
	for range 3 {
		code, env, _ := e.get("/api/v1/query", url.Values{"query": {"up"}})
		if code != http.StatusInternalServerError || env.ErrorType != errorInternal ||
			strings.Contains(env.Error, "goroutine") || strings.Contains(env.Error, ".go:") {
			t.Fatalf("panic answered %d %+v", code, env)
		}
	}
	if n := strings.Count(logs.String(), "goroutine 7"); n != 1 {
		t.Fatalf("stack logged %d times, want once:\n%s", n, logs.String())
	}
	e.api.SetQueryEngine(fakeEngine{fmt.Errorf("%w: 20 run", evaluator.ErrQueueFull)})
	if code, env, _ := e.get("/api/v1/query", url.Values{"query": {"up"}}); code != http.StatusServiceUnavailable || env.ErrorType != errorUnavailable {
		t.Fatalf("full queue answered %d %+v", code, env)
	}
	e.api.SetQueryEngine(evaluator.NewEngine(e.head, evaluator.Options{}))
	for _, q := range []string{strings.Repeat("(", 1<<20), strings.Repeat("-", 10000) + "up", strings.Repeat("up ^ ", 5000) + "up"} {
		resp, err := http.PostForm(e.server.URL+"/api/v1/query", url.Values{"query": {q}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%.20q...: %d", q, resp.StatusCode)
		}
	}
	code, env, _ := e.get("/api/v1/query", url.Values{"query": {"count_over_time(vector(1)[3650d:1ms])"}})
	if code != http.StatusUnprocessableEntity || env.ErrorType != errorExecution {
		t.Fatalf("subquery of 3e11 steps: %d %+v", code, env)
	}
	code, env, _ = e.get("/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"31536000"}, "step": {"0.001"}})
	if code != http.StatusBadRequest || !strings.Contains(env.Error, "11,000 points") {
		t.Fatalf("range query at 1ms over a year: %d %+v", code, env)
	}
}

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
