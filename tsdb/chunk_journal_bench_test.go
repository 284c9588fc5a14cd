package tsdb

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// BenchmarkJournalCheckpointWrites is BenchmarkStoreCheckpointWrites
// with the chunk journal in badger's place: each iteration is one
// checkpoint that appends a closed chunk (240 bytes of data) for a random
// 7% of the series, in ref order, chaining each to the series' previous
// record, flushing after every checkpointBatch series and syncing at the
// end. It reports the same figures: heap peak and mean, bytes allocated
// per byte written, MiB per checkpoint.
func BenchmarkJournalCheckpointWrites(b *testing.B) {
	series := benchSeries(b, 1_000_000)
	j, err := openChunkJournal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer j.close()
	heads := make([]journalPos, series)
	var peak, mean uint64
	stopSampling := samplePeakHeap(&peak, &mean)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 240)
	var written int64
	b.ResetTimer()
	for i := range b.N {
		minT := int64(i) * 120_000
		for ref := range series {
			if rng.IntN(100) >= 7 {
				continue
			}
			for k := range data {
				data[k] = byte(rng.Uint32())
			}
			rec := journalRecord{ref: SeriesRef(ref), prev: heads[ref], prevMaxT: minT - 1, chunk: memChunk{data: data, minT: minT, maxT: minT + 1_785_000}}
			pos, err := j.append(rec, 0)
			if err != nil {
				b.Fatal(err)
			}
			heads[ref] = pos
			written += int64(len(data))
			if ref%checkpointBatch == checkpointBatch-1 {
				if err := j.flush(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := j.sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	time.Sleep(time.Second)
	stopSampling()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(mean)/(1<<20), "mean-heap-MiB")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(written), "alloc-B/written-B")
	b.ReportMetric(float64(written)/float64(b.N)/(1<<20), "MiB/checkpoint")
}

// BenchmarkJournalChainRead reads what BenchmarkStoreChunks reads from
// badger, from the journal: 20,000 series with two hours at 15 s, four
// chunks of 120 samples each, written as four checkpoints would write
// them (each series' chunks far apart in the file), read in ref order by
// walking each series' chain and copying the chunks out.
func BenchmarkJournalChainRead(b *testing.B) {
	const chunksPerSeries = persistedBenchSamples / 120
	j, err := openChunkJournal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer j.close()
	heads := make([]journalPos, persistedBenchSeries)
	maxT := make([]int64, persistedBenchSeries)
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 180)
	for c := range chunksPerSeries {
		minT := int64(c) * 120 * persistedBenchStep
		for ref := range persistedBenchSeries {
			for k := range data {
				data[k] = byte(rng.Uint32())
			}
			prevMaxT := int64(minInt64)
			if c > 0 {
				prevMaxT = maxT[ref]
			}
			rec := journalRecord{ref: SeriesRef(ref), prev: heads[ref], prevMaxT: prevMaxT,
				chunk: memChunk{data: data, minT: minT, maxT: minT + 119*persistedBenchStep}}
			if heads[ref], err = j.append(rec, 0); err != nil {
				b.Fatal(err)
			}
			maxT[ref] = rec.chunk.maxT
		}
	}
	if err := j.sync(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := cpuTime(b)
	var buf, out []byte
	var cs []memChunk
	for b.Loop() {
		n := 0
		for ref := range persistedBenchSeries {
			cs, out = cs[:0], out[:0]
			for pos := heads[ref]; pos != 0; {
				var rec journalRecord
				rec, buf, err = j.read(pos, buf)
				if err != nil {
					b.Fatal(err)
				}
				out = append(out, rec.chunk.data...)
				cs = append(cs, rec.chunk)
				pos = rec.prev
			}
			n += len(cs)
		}
		if n != chunksPerSeries*persistedBenchSeries {
			b.Fatalf("%d chunks", n)
		}
	}
	reportCPU(b, cpu)
}
