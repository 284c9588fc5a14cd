package ingest

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// BenchmarkUnmarshalWriteRequest decodes one realistic 2,000-sample etcd
// request (one scrape of ~2,000 series) with Unmarshal, reusing one
// WriteRequest as a pooled one would be, and with prompb as Prometheus'
// own write handler does, into a fresh message.
func BenchmarkUnmarshalWriteRequest(b *testing.B) {
	req := etcdWriteRequests(3, 3, 2000, testTS)[0]
	data, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	samples := 0
	for _, ts := range req.Timeseries {
		samples += len(ts.Samples)
	}
	var wr WriteRequest
	impls := []struct {
		name   string
		decode func() error
	}{
		{"etcdgate", func() error { return wr.Unmarshal(data) }},
		{"prompb", func() error {
			var m prompb.WriteRequest
			return m.Unmarshal(data)
		}},
	}
	for _, impl := range impls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			if err := impl.decode(); err != nil { // and warm the reused buffers
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := impl.decode(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(testing.AllocsPerRun(3, func() { _ = impl.decode() })/float64(samples), "allocs/sample")
		})
	}
}

// BenchmarkUnmarshalV2 decodes the request of BenchmarkUnmarshalWriteRequest
// (2,000 etcd series, one sample each) as remote write 1.0 and as 2.0 (a
// symbols table, each series with its metric's metadata, as Prometheus 3
// sends it) with the same reused WriteRequest, and as 2.0 with the
// generated writev2 type into a fresh message.
func BenchmarkUnmarshalV2(b *testing.B) {
	req := etcdWriteRequests(3, 3, 2000, testTS)[0]
	v1, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	v2, err := toV2(req, true).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	samples := len(req.Timeseries)
	var wr WriteRequest
	impls := []struct {
		name   string
		data   []byte
		decode func() error
	}{
		{"etcdgate-1.0", v1, func() error { return wr.Unmarshal(v1) }},
		{"etcdgate-2.0", v2, func() error { return wr.UnmarshalV2(v2) }},
		{"writev2", v2, func() error {
			var m writev2.Request
			return m.Unmarshal(v2)
		}},
	}
	for _, impl := range impls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			if err := impl.decode(); err != nil { // and warm the reused buffers
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(impl.data)))
			for b.Loop() {
				if err := impl.decode(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(testing.AllocsPerRun(3, func() { _ = impl.decode() })/float64(samples), "allocs/sample")
		})
	}
}
