package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// fakeTarget is a remote-write receiver that keeps count of what it got
// and exposes it as etcdgate would on /metrics. It answers queries with
// an empty success, and query_range with 404.
type fakeTarget struct {
	rejectAbove int // answer 429 once it holds more series than this (0: never)

	mu       sync.Mutex
	series   map[string]bool // guarded by mu
	stamps   map[int64]bool  // sample timestamps seen; guarded by mu
	accepted int64           // guarded by mu
	stale    int64           // guarded by mu
	queries  int             // guarded by mu
}

func newFakeTarget(t *testing.T, rejectAbove int) (*fakeTarget, string) {
	f := &fakeTarget{rejectAbove: rejectAbove, series: map[string]bool{}, stamps: map[int64]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/v1/write":
		f.write(w, r)
	case "/metrics":
		f.mu.Lock()
		defer f.mu.Unlock()
		fmt.Fprintf(w, "process_resident_memory_bytes %d\nprocess_cpu_seconds_total %g\netcdgate_tsdb_head_series %d\netcdgate_ingest_samples_accepted_total %d\n",
			1<<20+1000*len(f.series), float64(f.accepted)/1e6, len(f.series), f.accepted)
	case "/api/v1/query":
		f.mu.Lock()
		f.queries++
		f.mu.Unlock()
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeTarget) write(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(raw)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var key bytes.Buffer
	var fresh []string
	for _, ts := range wr.Timeseries {
		for _, s := range ts.Samples {
			f.stamps[s.Timestamp] = true
		}
		key.Reset()
		for _, l := range ts.Labels {
			key.WriteString(l.Name + "=" + l.Value + ",")
		}
		if !f.series[key.String()] {
			fresh = append(fresh, key.String())
		}
	}
	if f.rejectAbove > 0 && len(f.series)+len(fresh) > f.rejectAbove {
		http.Error(w, "series limit", http.StatusTooManyRequests)
		return
	}
	for _, k := range fresh {
		f.series[k] = true
	}
	for _, ts := range wr.Timeseries {
		for _, s := range ts.Samples {
			f.accepted++
			if math.Float64bits(s.Value) == staleNaNBits {
				f.stale++
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeTarget) counts() (series int, accepted, stale int64, queries int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.series), f.accepted, f.stale, f.queries
}

// testRunOptions is a run of seconds: small fleet, short interval.
func testRunOptions(mode Mode, targets ...Target) Options {
	o := DefaultOptions()
	o.Mode, o.Targets = mode, targets
	o.Duration = 1200 * time.Millisecond
	o.Fleet.Clusters, o.Fleet.Members = 1, 1
	o.Send.Senders = 2
	o.Send.MaxSamplesPerSend = 500
	o.Send.Interval = 200 * time.Millisecond
	o.SampleEvery = 200 * time.Millisecond
	o.Drain = 2 * time.Second
	return o
}

// TestRunSteadyTwoTargets: each target gets the whole fleet, the report's
// figures equal what the targets counted, and the outputs render.
func TestRunSteadyTwoTargets(t *testing.T) {
	fa, urlA := newFakeTarget(t, 0)
	fb, urlB := newFakeTarget(t, 0)
	o := testRunOptions(ModeSteady, Target{Name: "a", URL: urlA}, Target{Name: "b", URL: urlB + "/api/v1/write"})
	o.Fleet.Clusters, o.Fleet.Members = 2, 3
	var progress bytes.Buffer
	o.Progress, o.ProgressEvery = &progress, 300*time.Millisecond
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 2 || rep.Fleet.Series != 2*3*rep.Fleet.SeriesPerMember {
		t.Fatalf("%d targets, fleet %+v", len(rep.Targets), rep.Fleet)
	}
	for i, f := range []*fakeTarget{fa, fb} {
		tr := rep.Targets[i]
		series, accepted, _, _ := f.counts()
		if tr.SamplesAccepted != accepted || tr.SamplesSent != accepted || tr.SamplesDropped != 0 || tr.SamplesFailed != 0 {
			t.Errorf("%s: report sent %d accepted %d dropped %d failed %d; the target accepted %d",
				tr.Name, tr.SamplesSent, tr.SamplesAccepted, tr.SamplesDropped, tr.SamplesFailed, accepted)
		}
		if tr.SeriesWritten != int64(series) || int(tr.SeriesWritten) != rep.Fleet.Series || deref(tr.SeriesCreated) != float64(series) {
			t.Errorf("%s: series written %d, created %v; the target holds %d", tr.Name, tr.SeriesWritten, deref(tr.SeriesCreated), series)
		}
		if deref(tr.TargetIngested) != float64(accepted) || deref(tr.BytesPerSeries) <= 0 || len(tr.Timeline) < 2 {
			t.Errorf("%s: target figures: ingested %v, bytes/series %v, %d timeline points",
				tr.Name, deref(tr.TargetIngested), deref(tr.BytesPerSeries), len(tr.Timeline))
		}
		// Every scrape's lag lands in a reading: the last one follows the drain.
		if lag := maxLagFrom(tr.Timeline, 0); lag != tr.MaxLagSeconds || tr.MaxLagSecondHalf > lag {
			t.Errorf("%s: max lag %v s, %v s over the timeline, %v s in its second half", tr.Name, tr.MaxLagSeconds, lag, tr.MaxLagSecondHalf)
		}
		if tr.Requests["204"] == 0 || tr.LatencyP99Ms <= 0 || tr.HarnessMicrosPerSample <= 0 {
			t.Errorf("%s: requests %v, p99 %v ms, harness %v µs/sample", tr.Name, tr.Requests, tr.LatencyP99Ms, tr.HarnessMicrosPerSample)
		}
	}
	checkOutputs(t, rep)
	if !strings.Contains(progress.String(), "a steady") || !strings.Contains(progress.String(), "b steady") {
		t.Errorf("progress lines: %q", progress.String())
	}
}

// checkOutputs renders the report: Markdown with a ratio column, JSON
// that reads back, SVG that is well-formed XML.
func checkOutputs(t *testing.T, rep *Report) {
	t.Helper()
	var md, js, svg bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| figure | a | b | b / a |") || !strings.Contains(md.String(), "| samples accepted / s |") ||
		!strings.Contains(md.String(), "| max scrape lag, second half |") {
		t.Errorf("Markdown:\n%s", md.String())
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Targets) != len(rep.Targets) ||
		back.Targets[0].SamplesAccepted != rep.Targets[0].SamplesAccepted {
		t.Errorf("JSON does not read back: %v", err)
	}
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	lines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 2*len(rep.Targets) {
		t.Errorf("SVG has %d lines, want 2 per target", lines)
	}
}

// TestRunRampStopsAtFirstRejection: the target refuses new series past
// two clusters' worth; the ramp reports step 2 as the last healthy one.
func TestRunRampStopsAtFirstRejection(t *testing.T) {
	o := testRunOptions(ModeRamp)
	l, err := loadLayout(o.Fleet.Members)
	if err != nil {
		t.Fatal(err)
	}
	perCluster := l.seriesPerMember() * o.Fleet.Members
	_, url := newFakeTarget(t, 2*perCluster+perCluster/2)
	o.Targets = []Target{{Name: "fake", URL: url}}
	o.Duration = 0
	o.Ramp = RampOptions{StepClusters: 1, StepDuration: 500 * time.Millisecond, MaxClusters: 10}
	o.Drain = 300 * time.Millisecond
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Targets[0]
	if tr.LastHealthyStep == nil || *tr.LastHealthyStep != 2 || len(tr.Steps) != 3 || tr.Steps[2].Healthy {
		t.Fatalf("steps %+v, last healthy %v, stop %q", tr.Steps, tr.LastHealthyStep, tr.StopReason)
	}
	if tr.Retries["429"] == 0 || !strings.Contains(tr.StopReason, "step 3 unhealthy") {
		t.Fatalf("retries %v, stop reason %q", tr.Retries, tr.StopReason)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "Last healthy step: 2 (2 clusters") {
		t.Fatalf("Markdown:\n%s", md.String())
	}
}

// TestRunChurnWritesNewSeriesAndStaleMarkers: replaced clusters get stale
// markers and their successors new series.
func TestRunChurnWritesNewSeriesAndStaleMarkers(t *testing.T) {
	f, url := newFakeTarget(t, 0)
	o := testRunOptions(ModeChurn, Target{Name: "fake", URL: url})
	o.Fleet.Clusters = 2
	o.Churn.ClustersPerMinute = 150 // one every 400 ms
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Targets[0]
	series, accepted, stale, _ := f.counts()
	if tr.SeriesWritten <= int64(rep.Fleet.Series) || tr.SeriesWritten != int64(series) || tr.SamplesAccepted != accepted {
		t.Fatalf("series written %d (fleet %d), target holds %d; accepted %d vs %d",
			tr.SeriesWritten, rep.Fleet.Series, series, tr.SamplesAccepted, accepted)
	}
	if stale == 0 || stale%int64(rep.Fleet.SeriesPerMember) != 0 {
		t.Fatalf("%d stale markers, want whole members' worth of %d", stale, rep.Fleet.SeriesPerMember)
	}
}

// TestRunQueryReportsOutcomes: instant queries succeed, range queries get
// 404; both are reported per query.
func TestRunQueryReportsOutcomes(t *testing.T) {
	f, url := newFakeTarget(t, 0)
	o := testRunOptions(ModeQuery, Target{Name: "fake", URL: url})
	o.Query.Every = 300 * time.Millisecond
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	qs := rep.Targets[0].Queries
	if _, _, _, n := f.counts(); n == 0 || len(qs) != 2*len(StandardQueries()) {
		t.Fatalf("%d queries served, %d reported", n, len(qs))
	}
	for _, q := range qs {
		switch {
		case q.Kind == "instant" && (q.OK == 0 || q.Errors != 0):
			t.Errorf("instant %s: %d ok, %d errors", q.Name, q.OK, q.Errors)
		case q.Kind == "range" && (q.OK != 0 || q.Errors == 0 || !strings.Contains(q.LastError, "HTTP 404")):
			t.Errorf("range %s: %d ok, %d errors, last %q", q.Name, q.OK, q.Errors, q.LastError)
		}
	}
}

func TestRunRefusesUnreachableTarget(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := Run(context.Background(), testRunOptions(ModeSteady, Target{Name: "gone", URL: url}))
	if err == nil || !strings.Contains(err.Error(), ErrTargetUnreachable.Error()) {
		t.Fatalf("err = %v", err)
	}
}

// TestRunBackfillStampsRoundsApart: with --backfill, rounds carry
// timestamps a step apart from the past up to now, sent as fast as the
// target takes them.
func TestRunBackfillStampsRoundsApart(t *testing.T) {
	f, url := newFakeTarget(t, 0)
	o := testRunOptions(ModeSteady, Target{Name: "a", URL: url})
	o.Fleet.Clusters, o.Fleet.Members = 1, 1
	o.Send.Interval, o.Send.Backfill, o.Send.BackfillStep = 0, 10*time.Minute, 15*time.Second
	// Long enough for every round on a loaded machine under the race
	// detector: the assertion is on rounds, not on speed.
	o.Duration = 8 * time.Second
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var stamps []int64
	for ts := range f.stamps {
		stamps = append(stamps, ts)
	}
	slices.Sort(stamps)
	if len(stamps) < 40 {
		t.Fatalf("%d distinct timestamps, want the 40 rounds of 10 minutes at 15 s", len(stamps))
	}
	for i := 1; i < len(stamps); i++ {
		if d := stamps[i] - stamps[i-1]; d != 15000 {
			t.Fatalf("rounds %d ms apart, want 15000", d)
		}
	}
	if last := time.UnixMilli(stamps[len(stamps)-1]); time.Since(last) > time.Minute || time.Until(last) > 0 {
		t.Fatalf("backfill ended at %s, not caught up with the clock", last)
	}
}

// TestMaxLagFrom: only the points from the given second count.
func TestMaxLagFrom(t *testing.T) {
	timeline := []Point{{Seconds: 5, MaxLagSeconds: 60}, {Seconds: 10, MaxLagSeconds: 3}, {Seconds: 15, MaxLagSeconds: 7}, {Seconds: 20}}
	for _, c := range []struct{ from, want float64 }{{0, 60}, {5, 60}, {6, 7}, {15, 7}, {16, 0}, {30, 0}} {
		if got := maxLagFrom(timeline, c.from); got != c.want {
			t.Errorf("maxLagFrom(%v) = %v, want %v", c.from, got, c.want)
		}
	}
}
