package ingest

import (
	"context"
	"github.com/prometheus/prometheus/prompb"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/relabel"
	"github.com/etcdgate/etcdgate/tsdb"
)

// newRelabelIngester returns an ingester whose pipeline drops the go_*
// series, and whose registry knows the fleet's first cluster.
func newRelabelIngester(t testing.TB) (*Ingester, *tsdb.Head, *relabel.Pipeline, *prometheus.Registry) {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts := relabel.DefaultOptions()
	opts.Registerer = reg
	if err := yaml.Unmarshal([]byte(`[{source_labels: [__name__], regex: 'go_.*', action: drop}]`), &opts.Config.RelabelConfigs); err != nil {
		t.Fatal(err)
	}
	opts.Config.SizeRules = []relabel.SizeRule{{Metric: "etcd_mvcc_db_total_size_in_bytes", SmallBelow: 1}}
	p, err := relabel.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p.Registry().PutEtcd(&relabel.Record{Cluster: "etcd-eu-west-1-0", Scenario: "business", Size: relabel.SizeLarge, Override: true})
	in, err := New(head, Options{Limits: DefaultLimits(), Registerer: reg, Now: func() time.Time { return testNow }, Relabeler: p})
	if err != nil {
		t.Fatal(err)
	}
	return in, head, p, reg
}

// TestWriteWithRelabeling checks that dropped series are counted, not
// refused, and not stored, and that stored series carry the registry's
// labels or the defaults.
func TestWriteWithRelabeling(t *testing.T) {
	in, head, p, reg := newRelabelIngester(t)
	var dropped int
	for _, req := range etcdWriteRequests(2, 3, 2000, testNow.Add(-time.Minute).UnixMilli()) {
		res, err := in.Write(marshalSnappy(req))
		if err != nil || res.Err() != nil {
			t.Fatalf("write: %v %v", err, res.Err())
		}
		if res.Accepted+res.DroppedSamples != res.Samples {
			t.Fatalf("result %+v", res)
		}
		dropped += res.DroppedSamples
	}
	if dropped == 0 {
		t.Fatal("no go_* samples dropped")
	}
	if n := testutil.ToFloat64(in.metrics.samplesDropped); n != float64(dropped) {
		t.Fatalf("dropped metric %v, want %d", n, dropped)
	}
	if n, err := testutil.GatherAndCount(reg, "etcdgate_relabel_series_dropped_total"); err != nil || n == 0 {
		t.Fatalf("relabel drop metric: %v %d", err, n)
	}
	q, err := head.Querier(0, testNow.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	ss := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	var known, unknown int
	for ss.Next() {
		ls := ss.At().Labels()
		switch {
		case ls.Get("__name__") >= "go_" && ls.Get("__name__") < "go`":
			t.Fatalf("dropped series stored: %s", ls)
		case ls.Get("cluster") == "etcd-eu-west-1-0" && ls.Get("scenario") == "business" && ls.Get("size") == "large":
			known++
		case ls.Get("scenario") == "unknown" && ls.Get("size") == "default":
			unknown++
		default:
			t.Fatalf("series without the standard labels: %s", ls)
		}
	}
	if known == 0 || unknown == 0 || int64(known+unknown) != head.NumSeries() {
		t.Fatalf("%d known, %d unknown, %d in head", known, unknown, head.NumSeries())
	}
	// The db size series of the unknown cluster fed the size rule: its
	// derived size is default (no db is below 1 byte).
	if p.Status().DerivedSizes["etcd-us-east-1-1"] != relabel.SizeDefault {
		t.Fatalf("derived sizes %v", p.Status().DerivedSizes)
	}
}

// TestSeriesCacheFollowsRegistryAndLimits: a series written before its
// cluster is registered is stored under the defaults; once registered, its
// next samples go to a series with the registry's labels (the cached
// outcome is stale), and new limits reach cached series too.
func TestSeriesCacheFollowsRegistryAndLimits(t *testing.T) {
	in, head, p, _ := newRelabelIngester(t)
	ts := testNow.Add(-10 * time.Minute).UnixMilli()
	write := func(ts int64, extra ...prompb.Label) Result {
		t.Helper()
		series := prompb.TimeSeries{
			Labels: append([]prompb.Label{
				{Name: "__name__", Value: "etcd_server_has_leader"}, {Name: "cluster", Value: "etcd-new"}, {Name: "job", Value: "etcd"},
			}, extra...),
			Samples: []prompb.Sample{{Value: 1, Timestamp: ts}},
		}
		res, err := in.Write(marshalSnappy(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series}}))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	scenarios := func() []string {
		q, _ := head.Querier(0, ts+10*60000)
		v, _ := q.LabelValues(context.Background(), "scenario", labels.MustNewMatcher(labels.MatchEqual, "cluster", "etcd-new"))
		return v
	}
	for i := range 3 { // the second and third samples come through the cache
		if res := write(ts + int64(i)*15000); res.Err() != nil || res.Accepted != 1 {
			t.Fatalf("write %d: %+v", i, res)
		}
	}
	if got := scenarios(); len(got) != 1 || got[0] != "unknown" {
		t.Fatalf("scenarios before registration: %v", got)
	}
	p.Registry().PutEtcd(&relabel.Record{Cluster: "etcd-new", Scenario: "platform", Size: relabel.SizeSmall})
	if res := write(ts + 3*15000); res.Accepted != 1 {
		t.Fatalf("write after registration: %+v", res)
	}
	if got := scenarios(); len(got) != 2 || got[1] != "unknown" || got[0] != "platform" {
		t.Fatalf("scenarios after registration: %v", got)
	}
	lim := in.Limits()
	lim.MaxLabelsPerSeries = 2
	if err := in.SetLimits(lim); err != nil {
		t.Fatal(err)
	}
	if res := write(ts + 4*15000); res.RefusedSeries != 1 {
		t.Fatalf("cached series escaped a new limit: %+v", res)
	}
}

func TestSeriesCacheTellsCollisionsApart(t *testing.T) {
	c := newSeriesCache[cachedSeries](100)
	c.put(7, cachedSeries{check: 1, ref: 42})
	if e, ok := c.get(7, 1); !ok || e.ref != 42 {
		t.Fatal("hit")
	}
	if _, ok := c.get(7, 2); ok {
		t.Fatal("a different series with the same first hash was served")
	}
	h1, c1, buf := sentHashes([]Label{{Name: "a", Value: "bc"}}, nil)
	h2, c2, _ := sentHashes([]Label{{Name: "ab", Value: "c"}}, buf)
	if h1 == h2 || c1 == c2 || h1 == c1 {
		t.Fatal("label boundaries are not part of the hash")
	}
}
