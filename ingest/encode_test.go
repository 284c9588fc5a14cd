package ingest

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// TestAppendTimeSeriesDecodes checks forwarded bodies against the
// generated Go type and against our own decoder.
func TestAppendTimeSeriesDecodes(t *testing.T) {
	cases := []struct {
		lset    labels.Labels
		samples []Sample
	}{
		{labels.FromStrings("__name__", "up", "job", "etcd"), []Sample{{Value: 1, Timestamp: 1000}}},
		{labels.FromStrings("__name__", "x", "empty", ""), []Sample{{Value: math.NaN(), Timestamp: -5}, {Value: -0.5, Timestamp: math.MaxInt64}}},
		{labels.FromStrings("__name__", string(make([]byte, 300))), []Sample{{Value: 0, Timestamp: 0}}},
		{labels.FromStrings("__name__", "no_samples"), nil},
	}
	var body []byte
	for _, c := range cases {
		body = appendTimeSeries(body, c.lset, c.samples)
	}
	var want prompb.WriteRequest
	if err := want.Unmarshal(body); err != nil {
		t.Fatalf("prompb cannot decode the forwarded body: %v", err)
	}
	var ours WriteRequest
	if err := ours.Unmarshal(body); err != nil {
		t.Fatalf("our decoder cannot decode the forwarded body: %v", err)
	}
	if len(want.Timeseries) != len(cases) || len(ours.Timeseries) != len(cases) {
		t.Fatalf("decoded %d / %d series, want %d", len(want.Timeseries), len(ours.Timeseries), len(cases))
	}
	for i, c := range cases {
		got := labels.New(toLabels(want.Timeseries[i].Labels)...)
		if !labels.Equal(got, c.lset) {
			t.Errorf("series %d labels %s, want %s", i, got, c.lset)
		}
		if len(want.Timeseries[i].Samples) != len(c.samples) || len(ours.Timeseries[i].Samples) != len(c.samples) {
			t.Fatalf("series %d: %d samples, want %d", i, len(want.Timeseries[i].Samples), len(c.samples))
		}
		for j, s := range c.samples {
			g := want.Timeseries[i].Samples[j]
			o := ours.Timeseries[i].Samples[j]
			if g.Timestamp != s.Timestamp || math.Float64bits(g.Value) != math.Float64bits(s.Value) ||
				o.Timestamp != s.Timestamp || math.Float64bits(o.Value) != math.Float64bits(s.Value) {
				t.Errorf("series %d sample %d: prompb %v, ours %v, want %v", i, j, g, o, s)
			}
		}
	}
}

func toLabels(ls []prompb.Label) []labels.Label {
	out := make([]labels.Label, len(ls))
	for i, l := range ls {
		out[i] = labels.Label{Name: l.Name, Value: l.Value}
	}
	return out
}

func TestAppendTimeSeriesAllocs(t *testing.T) {
	lset := labels.FromStrings("__name__", "etcd_disk_wal_fsync_duration_seconds_bucket", "cluster", "c1", "le", "0.001")
	samples := []Sample{{Value: 1, Timestamp: 1}}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = appendTimeSeries(buf[:0], lset, samples) }); n != 0 {
		t.Errorf("appendTimeSeries allocates %v times, want 0", n)
	}
}

// FuzzAppendTimeSeries encodes fuzzed label sets and samples the way a
// node of the ring forwards them, and checks the generated Go type and
// our decoder read back exactly what was encoded.
func FuzzAppendTimeSeries(f *testing.F) {
	f.Add("up", "job", "etcd", 1.5, int64(1000), int64(-1))
	f.Add("", "", "", 0.0, int64(0), int64(0))
	f.Add("x\xff", "le", "+Inf", math.Inf(-1), int64(math.MinInt64), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, name, ln, lv string, v float64, ts1, ts2 int64) {
		lset := labels.FromStrings("__name__", name, ln+"_", lv)
		samples := []Sample{{Value: v, Timestamp: ts1}, {Value: -v, Timestamp: ts2}}
		body := appendTimeSeries(nil, lset, samples)
		body = appendTimeSeries(body, labels.EmptyLabels(), samples[:1])
		var want prompb.WriteRequest
		if err := want.Unmarshal(body); err != nil {
			t.Fatalf("prompb: %v", err)
		}
		var ours WriteRequest
		if err := ours.Unmarshal(body); err != nil {
			t.Fatalf("ours: %v", err)
		}
		if len(want.Timeseries) != 2 || len(ours.Timeseries) != 2 {
			t.Fatalf("%d / %d series, want 2", len(want.Timeseries), len(ours.Timeseries))
		}
		if got := labels.New(toLabels(want.Timeseries[0].Labels)...); !labels.Equal(got, lset) {
			t.Fatalf("labels %s, want %s", got, lset)
		}
		for i, s := range samples {
			g, o := want.Timeseries[0].Samples[i], ours.Timeseries[0].Samples[i]
			if g.Timestamp != s.Timestamp || o.Timestamp != s.Timestamp ||
				math.Float64bits(g.Value) != math.Float64bits(s.Value) || math.Float64bits(o.Value) != math.Float64bits(s.Value) {
				t.Fatalf("sample %d: prompb %v, ours %v, want %v", i, g, o, s)
			}
		}
	})
}
