package ingest

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/etcdgate/etcdgate/tsdb"
)

// recordingSink is a MetadataSink that copies what it is given, as a
// real sink must (the strings alias the request).
type recordingSink struct {
	mu    sync.Mutex
	calls int
	md    []Metadata
}

func (s *recordingSink) AddMetadata(md []Metadata) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, m := range md {
		s.md = append(s.md, Metadata{Metric: strings.Clone(m.Metric), Type: strings.Clone(m.Type), Help: strings.Clone(m.Help), Unit: strings.Clone(m.Unit)})
	}
}

func storedSeries(t *testing.T, head *tsdb.Head) []string {
	t.Helper()
	q, err := head.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ss := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for ss.Next() {
		out = append(out, ss.At().Labels().String())
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func writeV2(t *testing.T, in *Ingester, req *writev2.Request) (Result, error) {
	t.Helper()
	a, err := in.Admit(0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	return a.WriteV2(snappy.Encode(nil, marshalV2(t, req)))
}

// TestWriteV2StoresAsV1: the same scrape sent as 1.0 and as 2.0 stores
// the same series, and the 2.0 result counts every sample written.
func TestWriteV2StoresAsV1(t *testing.T) {
	req := etcdWriteRequests(2, 3, 5000, testNow.UnixMilli()-60_000)[0]
	in1, head1, _ := newTestIngester(t, DefaultLimits())
	if res, err := in1.Write(marshalSnappy(req)); err != nil || res.Err() != nil {
		t.Fatalf("1.0: %v %v", err, res.Err())
	}
	in2, head2, _ := newTestIngester(t, DefaultLimits())
	res, err := writeV2(t, in2, toV2(req, true))
	if err != nil || res.Err() != nil {
		t.Fatalf("2.0: %v %v", err, res.Err())
	}
	if v1, v2 := testutil.ToFloat64(in1.metrics.decodedV1)+testutil.ToFloat64(in2.metrics.decodedV1),
		testutil.ToFloat64(in1.metrics.decodedV2)+testutil.ToFloat64(in2.metrics.decodedV2); v1 != 1 || v2 != 1 {
		t.Fatalf("requests decoded: 1.0 %v, 2.0 %v; want 1 each", v1, v2)
	}
	if s, h, e := res.Written(); s != len(req.Timeseries) || h != 0 || e != 0 {
		t.Fatalf("written %d, %d, %d; want %d, 0, 0", s, h, e, len(req.Timeseries))
	}
	if got, want := storedSeries(t, head2), storedSeries(t, head1); !slices.Equal(got, want) || len(got) != len(req.Timeseries) {
		t.Fatalf("2.0 stored %d series, 1.0 %d (of %d), or different ones", len(got), len(want), len(req.Timeseries))
	}
}

// TestWriteV2Refusals: in one 2.0 request, what etcdgate does not take is
// refused and counted, and the rest is stored.
func TestWriteV2Refusals(t *testing.T) {
	ts := testNow.UnixMilli() - 60_000
	one := []writev2.Sample{{Value: 1, Timestamp: ts}}
	req := &writev2.Request{
		Symbols: []string{"", "__name__", "good", "job", "etcd", "with_exemplar", "trace_id", "abc", "with_histogram",
			"bad_start", "unsorted", "dup", "no_name"},
		Timeseries: []writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: one},
			{LabelsRefs: []uint32{1, 5}, Samples: one, Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{6, 7}, Value: 1, Timestamp: ts}}},
			{LabelsRefs: []uint32{1, 8}, Samples: one, Histograms: []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 1}, Timestamp: ts}}},
			{LabelsRefs: []uint32{1, 9}, Samples: []writev2.Sample{{Value: 1, Timestamp: ts, StartTimestamp: ts + 1}, {Value: 2, Timestamp: ts + 1000, StartTimestamp: ts - 5000}}},
			{LabelsRefs: []uint32{3, 4, 1, 10}, Samples: one},                                                  // unsorted: stored sorted, as 1.0
			{LabelsRefs: []uint32{1, 11, 3, 4, 3, 2}, Samples: one},                                            // duplicate label name
			{LabelsRefs: []uint32{3, 12}, Samples: one},                                                        // no __name__
			{LabelsRefs: []uint32{1, 2, 0, 4}, Samples: one},                                                   // empty label name
			{LabelsRefs: []uint32{1, 2, 3, 4, 6, 0}, Samples: []writev2.Sample{{Value: 2, Timestamp: ts + 1}}}, // empty value dropped
		},
	}
	in, head, _ := newTestIngester(t, DefaultLimits())
	res, err := writeV2(t, in, req)
	if err != nil {
		t.Fatal(err)
	}
	// Stored: good (2 samples), with_exemplar, with_histogram's float, unsorted.
	if res.Accepted != 5 || res.RefusedExemplars != 1 || res.Exemplars != 1 || res.RefusedSeries != 4 || res.RefusedSamples != 6 {
		t.Fatalf("result %+v", res)
	}
	if s, h, e := res.Written(); s != 5 || h != 0 || e != 0 {
		t.Fatalf("written %d, %d, %d; want 5, 0, 0", s, h, e)
	}
	err = res.Err()
	if !errors.Is(err, ErrInvalidSeries) || !strings.Contains(err.Error(), "and 1 exemplars") || !strings.Contains(err.Error(), `series "with_exemplar": 1 exemplars are not supported`) {
		t.Fatalf("error %v", err)
	}
	want := []string{`{__name__="good", job="etcd"}`, `{__name__="unsorted", job="etcd"}`, `{__name__="with_exemplar"}`, `{__name__="with_histogram"}`}
	if got := storedSeries(t, head); !slices.Equal(got, want) {
		t.Fatalf("stored %q, want %q", got, want)
	}
	// Each refusal names its problem: sent alone, a series is refused with it.
	for _, c := range []struct {
		series int
		msg    string
	}{
		{2, "native histogram samples are not supported"},
		{3, `series "bad_start": 1 samples have a start timestamp after their timestamp`},
		{5, `duplicate label name "job"`},
		{6, "has no __name__ label"},
		{7, `invalid label name ""`},
	} {
		r := &writev2.Request{Symbols: req.Symbols, Timeseries: req.Timeseries[c.series : c.series+1]}
		res, err := writeV2(t, in, r)
		if err != nil || res.Err() == nil || !strings.Contains(res.Err().Error(), c.msg) {
			t.Fatalf("series %d: %v %v, want an error containing %q", c.series, err, res.Err(), c.msg)
		}
	}
}

// TestMetadataSink: the metadata of 1.0 and 2.0 requests reaches the
// sink after the append; a request refused whole hands over nothing; an
// entry with an over-long string is dropped and reported (400), the
// others kept.
func TestMetadataSink(t *testing.T) {
	sink := &recordingSink{}
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := New(head, Options{Limits: DefaultLimits(), Now: func() time.Time { return testNow }, MetadataSink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := in.Write(marshalSnappy(metadataRequest())); err != nil || res.Err() != nil {
		t.Fatalf("1.0: %v %v", err, res.Err())
	}
	if len(sink.md) != 4 || sink.md[1] != (Metadata{Metric: "etcd_server_leader_changes_seen_total", Type: "counter", Help: "The number of leader changes seen."}) {
		t.Fatalf("1.0 metadata %q", sink.md)
	}
	sink.md = nil
	req := toV2(etcdWriteRequests(1, 1, 100, testNow.UnixMilli()-60_000)[0], true)
	if res, err := writeV2(t, in, req); err != nil || res.Err() != nil {
		t.Fatalf("2.0: %v %v", err, res.Err())
	}
	if len(sink.md) == 0 || sink.md[0].Type != "counter" || !strings.HasPrefix(sink.md[0].Help, "Help of "+sink.md[0].Metric) {
		t.Fatalf("2.0 metadata %q", sink.md)
	}
	calls := sink.calls
	if _, err := in.Write(snappy.Encode(nil, []byte("\x1a\x05garbage"))); !errors.Is(err, ErrBadProtobuf) {
		t.Fatalf("malformed request: %v", err)
	}
	if sink.calls != calls {
		t.Fatal("metadata of a refused request reached the sink")
	}
	sink.md = nil
	long := &prompb.WriteRequest{Metadata: []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "a", Help: strings.Repeat("x", MaxMetadataStringBytes+1)},
		{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "b", Help: "fine"},
	}}
	res, err := in.Write(marshalSnappy(long))
	if err != nil || !errors.Is(res.Err(), ErrInvalidSeries) || !strings.Contains(res.Err().Error(), `1 metadata entries dropped; first: help of metric "a"`) {
		t.Fatalf("over-long help: %v %v", err, res.Err())
	}
	if len(sink.md) != 1 || sink.md[0].Metric != "b" {
		t.Fatalf("metadata %q, want b's only", sink.md)
	}
}

// TestRingMetadataStaysLocal: in a ring, the node that receives a write
// hands its metadata to its own sink; the owners its series are forwarded
// to get none.
func TestRingMetadataStaysLocal(t *testing.T) {
	r := newTestRing(t, 3, 2, nil, nil)
	sinks := map[string]*recordingSink{}
	for name, n := range r.nodes {
		sinks[name] = &recordingSink{}
		n.in.meta = sinks[name]
	}
	req := toV2(etcdWriteRequests(1, 3, 5000, testNow.UnixMilli()-60_000)[0], true)
	if res, err := writeV2(t, r.nodes["n0"].in, req); err != nil || res.Err() != nil {
		t.Fatalf("write: %v %v", err, res.Err())
	}
	if len(sinks["n0"].md) == 0 || sinks["n1"].calls != 0 || sinks["n2"].calls != 0 {
		t.Fatalf("sinks got n0 %d, n1 %d, n2 %d calls", sinks["n0"].calls, sinks["n1"].calls, sinks["n2"].calls)
	}
	for name, n := range r.nodes {
		if name != "n0" && n.head.NumSeries() == 0 {
			t.Fatalf("%s got no series: the test does not forward", name)
		}
	}
}
