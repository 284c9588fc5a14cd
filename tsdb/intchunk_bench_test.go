package tsdb

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
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

// BenchmarkCompactedBucketBytes compacts the fourth 2-hour bucket of
// every series of BenchmarkDiskBytesPerSample's fleet (hours 6 to 8, as
// in its 8-hour run) and reports the chunk bytes a sample per kind of
// series, as compaction writes them (enc=int: integer chunks where
// smaller) and with XOR only (enc=xor), and each kind's share of the
// bytes. Chunk data only: no keys, no badger.
func BenchmarkCompactedBucketBytes(b *testing.B) {
	kindOf := func(name string) string {
		for _, suf := range []string{"_bucket", "_count", "_sum", "_total"} {
			if strings.HasSuffix(name, suf) {
				return suf[1:]
			}
		}
		return "gauge"
	}
	rng := rand.New(rand.NewPCG(1, 2))
	windows := map[string][][]sample{}
	for m := range 30 {
		for _, ls := range etcdLabelSets(m) {
			v := 0.0
			var s []sample
			for i := range 4 * 480 {
				v = nextValue(rng, ls, v)
				if i >= 3*480 {
					s = append(s, sample{int64(i) * 15000, v})
				}
			}
			k := kindOf(ls.Get("__name__"))
			windows[k] = append(windows[k], s)
		}
	}
	kinds := slices.Sorted(maps.Keys(windows))
	for _, enc := range []string{"int", "xor"} {
		bytesOf := func(o *compactOutput, s []sample) int {
			n := 0
			for _, c := range o.encodePieces(s) {
				n += len(c.data)
			}
			return n
		}
		total := 0
		per := map[string]int{}
		o := compactOutput{xorOnly: enc == "xor"}
		for _, k := range kinds {
			for _, s := range windows[k] {
				n := bytesOf(&o, s)
				per[k] += n
				total += n
			}
		}
		for _, k := range kinds {
			b.Run(fmt.Sprintf("enc=%s/kind=%s", enc, k), func(b *testing.B) {
				for b.Loop() {
					for _, s := range windows[k] {
						bytesOf(&o, s)
					}
				}
				b.ReportMetric(float64(per[k])/float64(len(windows[k])*480), "chunk-bytes/sample")
				b.ReportMetric(100*float64(per[k])/float64(total), "%-of-bytes")
				b.ReportMetric(float64(len(windows[k])), "series")
			})
		}
	}
}

// BenchmarkIntChunkerHeadChunks is the checkpoint's rewrite of closed
// head chunks (120 samples at 15 s of the etcd series mix) before they
// go to the chunk journal: ns per chunk, the CPU a checkpoint spends
// on it, and the chunk bytes per sample as the head holds them (XOR)
// and as the journal receives them.
func BenchmarkIntChunkerHeadChunks(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var chunks []memChunk
	for m := range 30 {
		for _, ls := range etcdLabelSets(m) {
			v := 0.0
			s := make([]sample, 120)
			for i := range s {
				v = nextValue(rng, ls, v)
				s[i] = sample{int64(i) * 15000, v}
			}
			chunks = append(chunks, encodeSamples(s))
		}
	}
	var ic intChunker
	xorBytes, outBytes := 0, 0
	for _, c := range chunks {
		xorBytes += len(c.data)
		outBytes += len(ic.smaller(c).data)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			ic.smaller(c)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(chunks)), "ns/chunk")
	b.ReportMetric(float64(xorBytes)/float64(len(chunks)*120), "xor-bytes/sample")
	b.ReportMetric(float64(outBytes)/float64(len(chunks)*120), "journal-bytes/sample")
	b.ReportMetric(float64(len(chunks)), "chunks")
}
