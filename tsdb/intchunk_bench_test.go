package tsdb

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkCompactedChunkIterate reads a compacted 2-hour window (480
// samples at 15 s) through the series iterator, the query path, once
// written as XOR (compaction's windows) and once as an integer chunk:
// ns/sample and bytes/sample of each, the iterator reused as a query's
// are.
func BenchmarkCompactedChunkIterate(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	acc := 0.0
	kinds := []struct {
		name string
		f    func(i int) float64
	}{
		{"counter", func(int) float64 {
			if rng.IntN(4) > 0 {
				acc += float64(rng.IntN(300))
			}
			return acc
		}},
		{"bucket", func(int) float64 { acc += float64(rng.IntN(40)); return acc }},
		{"gauge", func(int) float64 {
			if rng.IntN(20) == 0 {
				acc = float64(rng.IntN(1 << 20))
			}
			return acc
		}},
	}
	for _, k := range kinds {
		acc = 0
		samples := regular(480, k.f)
		var e compactEncoder
		var ie intEncoder
		ic, _ := ie.encode(nil, samples)
		for _, enc := range []struct {
			name string
			data []byte
		}{{"xor", e.encode(samples)}, {"int", ic}} {
			b.Run(fmt.Sprintf("kind=%s/enc=%s", k.name, enc.name), func(b *testing.B) {
				chunks := []memChunk{{data: enc.data, minT: samples[0].t, maxT: samples[len(samples)-1].t}}
				it := &chunksIterator{}
				b.ReportAllocs()
				for b.Loop() {
					it.reset(chunks, minInt64, maxInt64)
					n := 0
					for it.Next() {
						n++
					}
					if n != len(samples) || it.Err() != nil {
						b.Fatalf("%d samples, %v", n, it.Err())
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(samples)), "ns/sample")
				b.ReportMetric(float64(len(enc.data))/float64(len(samples)), "bytes/sample")
			})
		}
	}
}
