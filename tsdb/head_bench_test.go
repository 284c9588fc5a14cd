package tsdb

import (
	"runtime"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkHeadAppend measures appends of one scrape (one sample per
// series) in batches of 2,000 samples, as remote-write requests bring them.
//
// state=steady: every series exists; the figure that bounds ingest of a
// settled fleet. state=new: every sample creates its series.
// BenchmarkHeadAppend measures appends to known series (steady: one
// scrape of ETCDGATE_BENCH_SERIES series after another, default 100,000)
// and the creation of new ones.
func BenchmarkHeadAppend(b *testing.B) {
	const batch = 2000
	n := benchSeries(b, 100_000)
	var fleet []labels.Labels
	for m := 0; len(fleet) < n; m++ {
		fleet = append(fleet, etcdLabelSets(m)...)
	}
	b.Run("state=steady", func(b *testing.B) {
		h := newTestHead(b, func(o *HeadOptions) { o.StripeSize = 1 << 14 })
		appendScrape(b, h, fleet, 0) // create the series
		b.ReportAllocs()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		samples, ts, i := 0, int64(15000), 0
		for b.Loop() {
			app := h.Appender()
			for range batch {
				if err := app.Append(fleet[i], ts, float64(ts)); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(fleet) {
					i, ts = 0, ts+15000
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			samples += batch
		}
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(samples), "allocs/sample")
	})
	b.Run("state=new", func(b *testing.B) {
		h := newTestHead(b, func(o *HeadOptions) { o.StripeSize = 1 << 14 })
		b.ReportAllocs()
		created, member := 0, 0
		var sets []labels.Labels
		for b.Loop() {
			app := h.Appender()
			for range batch {
				if len(sets) == 0 {
					sets = etcdLabelSets(member) // cost included: small next to creation
					member++
				}
				if err := app.Append(sets[0], 1000, 1); err != nil {
					b.Fatal(err)
				}
				sets = sets[1:]
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			created += batch
		}
		b.ReportMetric(float64(created)/b.Elapsed().Seconds(), "series/s")
	})
}

func appendScrape(b *testing.B, h *Head, fleet []labels.Labels, ts int64) {
	app := h.Appender()
	for _, ls := range fleet {
		if err := app.Append(ls, ts, 0); err != nil {
			b.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHeadSelect measures reading one metric across a fleet.
func BenchmarkHeadSelect(b *testing.B) {
	h := newTestHead(b, func(o *HeadOptions) { o.StripeSize = 1 << 14 })
	var fleet []labels.Labels
	for m := range 300 {
		fleet = append(fleet, etcdLabelSets(m)...)
	}
	for ts := range int64(120) {
		appendScrape(b, h, fleet, ts*15000)
	}
	for _, c := range []struct{ name, metric string }{
		{"selector=has_leader", "etcd_server_has_leader"},
		{"selector=handled_total", "grpc_server_handled_total"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			samples := 0
			for b.Loop() {
				got := selectAll(b, h, 0, 120*15000, labels.MustNewMatcher(labels.MatchEqual, "__name__", c.metric))
				for _, s := range got {
					samples += len(s)
				}
			}
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkChunkEncodeDecode measures XOR encoding and decoding of a
// 120-sample chunk of an etcd counter scraped every 15 s.
func BenchmarkChunkEncodeDecode(b *testing.B) {
	samples := make([]sample, 120)
	v := 1e6
	for i := range samples {
		v += float64(i%7) * 13
		samples[i] = sample{t: 1_700_000_000_000 + int64(i)*15000, v: v}
	}
	b.Run("op=encode", func(b *testing.B) {
		b.ReportAllocs()
		var c memChunk
		for b.Loop() {
			c = encodeSamples(samples)
		}
		b.ReportMetric(float64(len(c.data))/float64(len(samples)), "bytes/sample")
		b.ReportMetric(float64(len(samples)*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("op=decode", func(b *testing.B) {
		c := encodeSamples(samples)
		it := &chunksIterator{}
		b.ReportAllocs()
		for b.Loop() {
			it.reset([]memChunk{c}, minInt64, maxInt64)
			for it.Next() {
			}
		}
		b.ReportMetric(float64(len(samples)*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
}
