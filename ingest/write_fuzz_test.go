package ingest

import (
	"context"
	"math"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/relabel"
	"github.com/etcdgate/etcdgate/tsdb"
)

// FuzzWritePath runs the whole write path on each input: snappy, decode,
// validate, relabel (with the series cache on), append into a real head,
// then reads the head back. data is the snappy body when compressed is
// true, else the protobuf that is compressed first (so that the fuzzer
// can reach past snappy). It checks that nothing panics and that:
//   - a refused request stores nothing;
//   - accepted, refused and dropped samples add up to the request's;
//   - the head holds no more samples than were accepted, and no fewer
//     than accepted minus the request's repeats of a (series, timestamp);
//   - every stored series has valid names and UTF-8 values, and every
//     stored sample was sent in that series;
//   - the same body written again stores nothing new (it hits the series
//     cache, which must not let anything skip validation).
//
// Seeds: realistic etcd requests, mixed valid and invalid series, the
// amplification body, and testdata/fuzz/FuzzWritePath.
func FuzzWritePath(f *testing.F) {
	ts := testNow.Add(-time.Minute).UnixMilli()
	for _, req := range []*prompb.WriteRequest{
		etcdWriteRequests(1, 1, 20, ts)[0],
		{Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "etcd"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: ts}, {Value: 2, Timestamp: ts}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "up\xfejob\xffetcd"}}, Samples: []prompb.Sample{{Value: 3, Timestamp: ts}}},
			{Labels: []prompb.Label{{Name: "job", Value: "etcd"}, {Name: "__name__", Value: "up"}, {Name: "x", Value: ""}}, Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "a-b", Value: "v"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Value: math.NaN(), Timestamp: ts + 1e9}}},
		}},
	} {
		raw, err := req.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, false)
		f.Add(snappy.Encode(nil, raw), true)
	}
	f.Add(emptySeriesBody(2000), false)
	f.Add(emptyLabelsBody(2000), false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 'x'}, true) // claims 4 GiB

	lim := DefaultLimits()
	lim.MaxSeriesPerRequest, lim.MaxLabelsPerRequest, lim.MaxSamplesPerRequest = 1000, 1000, 1000
	f.Fuzz(func(t *testing.T, data []byte, compressed bool) {
		body := data
		if !compressed {
			body = snappy.Encode(nil, data)
		}
		in, head := newFuzzIngester(t, lim)
		res, err := in.Write(body)
		requireIdle(t, in)
		stored, sent := storedSamples(t, head), sentSamples(body)
		if err != nil {
			if stored != 0 {
				t.Fatalf("refused request (%v) stored %d samples", err, stored)
			}
			return
		}
		if res.Accepted+res.RefusedSamples+res.DroppedSamples != res.Samples {
			t.Fatalf("result does not add up: %+v", res)
		}
		repeats := sent.repeats
		if stored > res.Accepted || stored < res.Accepted-repeats {
			t.Fatalf("head holds %d samples; accepted %d with %d repeats", stored, res.Accepted, repeats)
		}
		checkStored(t, head, sent)
		if _, err := in.Write(body); err != nil {
			t.Fatalf("second write: %v", err)
		}
		if again := storedSamples(t, head); again != stored {
			t.Fatalf("the same body again: %d samples stored, then %d", stored, again)
		}
		checkStored(t, head, sent)
	})
}

func newFuzzIngester(t *testing.T, lim Limits) (*Ingester, *tsdb.Head) {
	hopts := tsdb.DefaultHeadOptions()
	hopts.StripeSize = 16 // a head per input: keep it small
	head, err := tsdb.NewHead(hopts, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := relabel.DefaultOptions()
	opts.Config.Defaults = nil
	opts.CacheEntries = 1 << 10
	p, err := relabel.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	in, err := New(head, Options{Limits: lim, Now: func() time.Time { return testNow }, Relabeler: p, SeriesCacheEntries: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return in, head
}

// sentSet is what a body carries, decoded by prompb: every sample as
// (series, timestamp, value bits), and how many (series, timestamp) pairs
// repeat an earlier one, a series being its sorted labels without empty
// values (what the relabeling of newFuzzIngester, with no rules, stores).
type sentSet struct {
	samples map[sentSample]bool
	repeats int
}

type sentSample struct {
	series string
	ts     int64
	bits   uint64
}

func sentSamples(body []byte) sentSet {
	s := sentSet{samples: map[sentSample]bool{}}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return s
	}
	var req prompb.WriteRequest
	if req.Unmarshal(raw) != nil {
		return s
	}
	seen := map[string]bool{}
	b := labels.NewScratchBuilder(8)
	for _, ts := range req.Timeseries {
		b.Reset()
		for _, l := range ts.Labels {
			if l.Value != "" {
				b.Add(l.Name, l.Value)
			}
		}
		b.Sort()
		key := b.Labels().String()
		for _, smp := range ts.Samples {
			s.samples[sentSample{key, smp.Timestamp, math.Float64bits(smp.Value)}] = true
			k := key + "@" + time.UnixMilli(smp.Timestamp).String()
			if seen[k] {
				s.repeats++
			}
			seen[k] = true
		}
	}
	return s
}

func storedSamples(t *testing.T, head *tsdb.Head) int {
	n := 0
	forEachStored(t, head, func(labels.Labels, int64, float64) { n++ })
	return n
}

func checkStored(t *testing.T, head *tsdb.Head, sent sentSet) {
	forEachStored(t, head, func(lset labels.Labels, ts int64, v float64) {
		if !IsValidMetricName(lset.Get("__name__")) {
			t.Fatalf("stored %v: invalid metric name", lset)
		}
		lset.Range(func(l labels.Label) {
			if !IsValidLabelName(l.Name) || !utf8.ValidString(l.Value) || l.Value == "" {
				t.Fatalf("stored %v: invalid label %q=%q", lset, l.Name, l.Value)
			}
		})
		if !sent.samples[sentSample{lset.String(), ts, math.Float64bits(v)}] {
			t.Fatalf("stored %v %d %v, which was not sent in that series", lset, ts, v)
		}
	})
}

func forEachStored(t *testing.T, head *tsdb.Head, fn func(labels.Labels, int64, float64)) {
	q, err := head.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	ss := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	var it tsdb.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		for it.Next() {
			ts, v := it.At()
			fn(s.Labels(), ts, v)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	if ss.Err() != nil {
		t.Fatal(ss.Err())
	}
}
