package ingest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// t0 is an hour boundary, so the windows' buckets line up with scrapes.
const targetsT0 = int64(1_699_999_200_000)

// scrapeSeries is one scrape of a target: n series, one sample each at ts.
func scrapeSeries(cluster, instance string, n int, ts int64) []TimeSeries {
	out := make([]TimeSeries, n)
	for i := range out {
		out[i] = TimeSeries{
			Labels: []Label{{Name: "__name__", Value: fmt.Sprintf("m%d", i)}, {Name: "cluster", Value: cluster},
				{Name: "instance", Value: instance}, {Name: "job", Value: "etcd"}},
			Samples: []Sample{{Value: 1, Timestamp: ts}},
		}
	}
	return out
}

// feedScrapes sends 360 scrapes (90 minutes at 15 s) of targets a and b,
// 10 series each, to observe; a misses every 100th scrape. split sends
// each scrape's series in two halves (two requests, or two nodes).
func feedScrapes(observe func([]TimeSeries)) {
	for i := range 360 {
		ts := targetsT0 + int64(i)*15_000
		for _, inst := range []string{"a", "b"} {
			if inst == "a" && i%100 == 99 {
				continue
			}
			s := scrapeSeries("etcd-1", inst, 10, ts)
			observe(s[:4])
			observe(s[4:])
		}
	}
}

var targetsNow = time.UnixMilli(targetsT0 + 360*15_000).Add(TargetLateness)

// TestTargetsCompleteness: a target that misses 1 scrape in 100 has a
// completeness of 0.99 over the hour and the day (238 of 240 scrapes in
// each), 1 over the last 5 minutes (no miss there); a target that misses
// none has 1 everywhere. The interval (15 s) and the series (10) come
// from the samples, even with each scrape in two requests.
func TestTargetsCompleteness(t *testing.T) {
	tr := NewTargets("cluster", 0)
	var r requestTally
	feedScrapes(func(s []TimeSeries) { tr.observe(s, &r) })
	tallies := tr.Tallies(targetsNow, nil, 0)
	if len(tallies) != 2 {
		t.Fatalf("%d targets, want 2", len(tallies))
	}
	want := map[string][3]float64{"a": {1, 238.0 / 240, 238.0 / 240}, "b": {1, 1, 1}}
	for _, tt := range tallies {
		st := tt.Status(targetsNow)
		if st.Interval != 15*time.Second || st.Series != 10 || st.Cluster != "etcd-1" || st.Job != "etcd" {
			t.Fatalf("%s: interval %v, series %d, key %+v", st.Instance, st.Interval, st.Series, st.TargetKey)
		}
		for w, r := range st.Ratio {
			if math.Abs(r-want[st.Instance][w]) > 1e-9 {
				t.Errorf("%s %s: completeness %v, want %v", st.Instance, TargetWindows[w].Name, r, want[st.Instance][w])
			}
		}
	}
}

// TestTargetsMergeAcrossNodes: the samples of each scrape spread over
// three nodes at random (a ring behind a load balancer): the nodes'
// tallies merged give what one node that received everything gives.
func TestTargetsMergeAcrossNodes(t *testing.T) {
	one := NewTargets("cluster", 0)
	nodes := []*Targets{NewTargets("cluster", 0), NewTargets("cluster", 0), NewTargets("cluster", 0)}
	var r requestTally
	rng := rand.New(rand.NewPCG(1, 2))
	feedScrapes(func(s []TimeSeries) {
		one.observe(s, &r)
		nodes[rng.IntN(3)].observe(s, &r)
	})
	var parts [][]TargetTally
	for _, n := range nodes {
		parts = append(parts, n.Tallies(targetsNow, nil, 0))
	}
	merged := MergeTallies(parts...)
	single := one.Tallies(targetsNow, nil, 0)
	if len(merged) != len(single) {
		t.Fatalf("%d merged targets, want %d", len(merged), len(single))
	}
	for i := range single {
		a, b := single[i].Status(targetsNow), merged[i].Status(targetsNow)
		if a.TargetKey != b.TargetKey || a.Series != b.Series || a.Interval != b.Interval || a.Ratio != b.Ratio {
			t.Fatalf("merged %+v, one node %+v", b, a)
		}
	}
}

// TestTargetsBounds: past the bound new targets are not tracked and are
// counted; series without job or instance are not a target's.
func TestTargetsBounds(t *testing.T) {
	tr := NewTargets("cluster", 2)
	var r requestTally
	for _, inst := range []string{"a", "b", "c"} {
		tr.observe(scrapeSeries("x", inst, 1, targetsT0), &r)
	}
	tr.observe([]TimeSeries{{Labels: []Label{{Name: "__name__", Value: "up"}}, Samples: []Sample{{Timestamp: targetsT0}}}}, &r)
	if got := len(tr.Tallies(targetsNow, nil, 0)); got != 2 || tr.DroppedTargets() != 1 {
		t.Fatalf("%d targets tracked, %d dropped; want 2 and 1", got, tr.DroppedTargets())
	}
	if got := tr.Tallies(targetsNow, func(k TargetKey) bool { return k.Instance == "b" }, 0); len(got) != 1 || got[0].Instance != "b" {
		t.Fatalf("filtered: %+v", got)
	}
}

// TestTargetsStopped: a target that stopped sending falls to 0 in the
// windows after its last scrape.
func TestTargetsStopped(t *testing.T) {
	tr := NewTargets("cluster", 0)
	var r requestTally
	for i := range 40 {
		tr.observe(scrapeSeries("x", "a", 3, targetsT0+int64(i)*15_000), &r)
	}
	later := time.UnixMilli(targetsT0 + 40*15_000).Add(10 * time.Minute)
	st := tr.Tallies(later, nil, 0)[0].Status(later)
	if st.Ratio[0] != 0 || st.Series != 3 || st.LastSeen != time.UnixMilli(targetsT0+39*15_000) {
		t.Fatalf("status %+v, want 0 over the last 5 minutes", st)
	}
}

// BenchmarkTargetsObserve: the cost of counting a request of 2,000
// series of 50 targets (one sample each), per sample.
func BenchmarkTargetsObserve(b *testing.B) {
	tr := NewTargets("cluster", 0)
	var req []TimeSeries
	for i := range 50 {
		req = append(req, scrapeSeries("etcd-1", fmt.Sprint("10.0.0.", i), 40, targetsT0)...)
	}
	var r requestTally
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		for i := range req {
			req[i].Samples[0].Timestamp = targetsT0 + int64(n)*15_000
		}
		tr.observe(req, &r)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(req)), "ns/sample")
}

// TestTargetsHostile: a request of one target with 200,000 distinct
// timestamps is counted in linear time and whole; targets silent for
// longer than the expiry are forgotten, making room.
func TestTargetsHostile(t *testing.T) {
	tr := NewTargets("cluster", 2)
	var r requestTally
	series := scrapeSeries("x", "a", 1, 0)
	series[0].Samples = nil
	for i := range 200_000 {
		series[0].Samples = append(series[0].Samples, Sample{Timestamp: targetsT0 - int64(i)})
	}
	tr.observe(series, &r)
	tt := tr.Tallies(time.UnixMilli(targetsT0).Add(TargetLateness+fineBucketMillis*time.Millisecond), nil, 0)
	if len(tt) != 1 || tt[0].LastSeen != targetsT0 || tt[0].FirstSeen != targetsT0-199_999 || tt[0].Received[0] != 200_000 {
		t.Fatalf("tally %+v", tt)
	}
	tr.observe(scrapeSeries("x", "b", 1, targetsT0+int64(TargetExpiry/time.Millisecond)), &r)
	tr.Expire(time.UnixMilli(targetsT0).Add(TargetExpiry + time.Second))
	if got := tr.Tallies(targetsNow, nil, 0); len(got) != 1 || got[0].Instance != "b" {
		t.Fatalf("after expiry: %+v", got)
	}
}

// TestTargetTallyJSON: a tally goes between ring nodes as JSON and comes
// back the same; malformed scrape counts are refused.
func TestTargetTallyJSON(t *testing.T) {
	in := TargetTally{TargetKey: TargetKey{Cluster: "c", Job: "etcd", Instance: "i"}, FirstSeen: 1, LastSeen: 2,
		Scrapes: []ScrapeCount{{T: 1_700_000_000_000, Samples: 1830}, {T: -5, Samples: 0}}, Received: [3]uint64{1, 2, 3}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out TargetTally
	if err := json.Unmarshal(b, &out); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v (%v) from %s", out, err, b)
	}
	for _, bad := range []string{`[1]`, `[1,2,3]`, `["x",1]`, `[1,-1]`, `[1,4294967296]`, `{"t":1}`, `[1.5,2]`} {
		var s ScrapeCount
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s decoded as %+v", bad, s)
		}
	}
}

// TestTargetsInterleaved: a request whose series alternate between
// targets counts each target's samples to it.
func TestTargetsInterleaved(t *testing.T) {
	tr := NewTargets("cluster", 0)
	var r requestTally
	a, b := scrapeSeries("x", "a", 3, targetsT0), scrapeSeries("x", "b", 2, targetsT0)
	tr.observe([]TimeSeries{a[0], b[0], a[1], a[2], b[1]}, &r)
	got := map[string]uint32{}
	for _, tt := range tr.Tallies(targetsNow, nil, 0) {
		got[tt.Instance] = tt.Scrapes[0].Samples
	}
	if got["a"] != 3 || got["b"] != 2 {
		t.Fatalf("samples by target %v, want a:3 b:2", got)
	}
}
