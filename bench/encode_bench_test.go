package bench

import (
	"testing"
	"time"
)

// BenchmarkScrape measures the harness's cost per sample without the
// network: advancing a member's values, encoding its series into
// requests of 2,000 samples and snappy-compressing them. The harness's
// budget is 1 µs of CPU per sample sent, HTTP included.
func BenchmarkScrape(b *testing.B) {
	l, err := loadLayout(3)
	if err != nil {
		b.Fatal(err)
	}
	o := DefaultOptions()
	c := newCluster(l, &o.Fleet, 1, 15*time.Second)
	s := newSender(&o, l, nil, newStats(), 1)
	m := c.members[0]
	ts := time.Now().UnixMilli()
	var compressed int
	b.ReportAllocs()
	for b.Loop() {
		ts += 15000
		m.advance(l, &o.Fleet, 15, s.rng, s.obs)
		for i := range l.specs {
			s.batch.appendSample(&l.specs[i], m, m.values[i], ts)
			if s.batch.samples == o.Send.MaxSamplesPerSend {
				compressed += len(s.batch.compress())
				s.batch.reset()
			}
		}
	}
	samples := float64(b.N * len(l.specs))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
	b.ReportMetric(float64(compressed)/samples, "B/sample")
}
