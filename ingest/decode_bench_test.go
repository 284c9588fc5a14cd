package ingest

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
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
