package ingest

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestSeriesCacheKeyCannotCollide: a label set that validation refuses
// must not share a cache key with a valid series, or it would be stored
// as that series without validation. With separator bytes as the key,
// the metric name "up\xfejob\xffetcd" encoded like {__name__="up",
// job="etcd"}.
func TestSeriesCacheKeyCannotCollide(t *testing.T) {
	in, head, _, _ := newRelabelIngester(t)
	ts := testNow.Add(-time.Minute).UnixMilli()
	valid := prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "etcd"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: ts}},
	}
	forged := prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up\xfejob\xffetcd"}},
		Samples: []prompb.Sample{{Value: 2, Timestamp: ts + 1000}},
	}
	for _, pair := range [][2][]Label{
		{{{Name: "__name__", Value: "up"}, {Name: "job", Value: "etcd"}}, {{Name: "__name__", Value: "up\xfejob\xffetcd"}}},
		{{{Name: "a", Value: "b"}, {Name: "c", Value: ""}}, {{Name: "a", Value: "b\xfec\xff"}}},
		{{{Name: "a", Value: ""}, {Name: "", Value: "b"}}, {{Name: "a", Value: "\xfe\xffb"}}},
	} {
		h1, c1, _ := sentHashes(pair[0], nil)
		h2, c2, _ := sentHashes(pair[1], nil)
		if h1 == h2 || c1 == c2 {
			t.Fatalf("%v and %v hash alike", pair[0], pair[1])
		}
	}
	if res, err := in.Write(marshalSnappy(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{valid}})); err != nil || res.Err() != nil {
		t.Fatalf("valid series: %v %v", err, res.Err())
	}
	res, err := in.Write(marshalSnappy(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{forged}}))
	if err != nil {
		t.Fatal(err)
	}
	if res.RefusedSeries != 1 || res.Accepted != 0 || !errors.Is(res.Err(), ErrInvalidSeries) {
		t.Fatalf("forged series: %+v, want it refused by validation", res)
	}
	if n := head.NumSeries(); n != 1 {
		t.Fatalf("head has %d series", n)
	}
}
