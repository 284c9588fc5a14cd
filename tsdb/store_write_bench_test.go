package tsdb

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/skl"
)

// BenchmarkStoreCheckpointWrites writes what checkpoints write to badger
// at scale: each iteration is one checkpoint that writes a closed chunk
// (a 248-byte value) for a random 7% of the series (at 15 s, a chunk of 120
// samples closes every 30 minutes, and a checkpoint comes every two),
// all in one bucket, in ref order, through write batches of
// checkpointBatch series as the checkpoint makes them. It reports the
// Go heap badger's flushes and compactions hold meanwhile (sampled every
// millisecond, and for 10 s after the last checkpoint while compactions go on)
// and what it allocates per byte written. ETCDGATE_BENCH_SERIES sets the
// series (default 1,000,000; the 10M figures in store.go come from
// 10,000,000 with -benchtime 10x).
func BenchmarkStoreCheckpointWrites(b *testing.B) {
	series := benchSeries(b, 1_000_000)
	st, err := openStore(b.TempDir(), 7_200_000, options.None, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	var peak, mean uint64
	stopSampling := samplePeakHeap(&peak, &mean)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	rng := rand.New(rand.NewPCG(1, 2))
	var written int64
	var a arena
	b.ResetTimer()
	for i := range b.N {
		minT := int64(i) * 120_000
		for from := 0; from < series; from += checkpointBatch {
			wb := st.db.NewWriteBatch()
			for ref := from; ref < min(series, from+checkpointBatch); ref++ {
				if rng.IntN(100) >= 7 {
					continue
				}
				key := a.add(func(dst []byte) []byte { return st.appendChunkKey(dst, SeriesRef(ref), minT, chunkInOrder, 0) })
				val := a.add(func(dst []byte) []byte { return appendBenchChunk(dst, rng, minT) })
				if err := wb.Set(key, val); err != nil {
					b.Fatal(err)
				}
				written += int64(len(key) + len(val))
			}
			if err := wb.Flush(); err != nil {
				b.Fatal(err)
			}
			a.reset()
		}
	}
	b.StopTimer()
	time.Sleep(10 * time.Second)
	stopSampling()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(mean)/(1<<20), "mean-heap-MiB")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(written), "alloc-B/written-B")
	b.ReportMetric(float64(written)/float64(b.N)/(1<<20), "MiB/checkpoint")
}

// appendBenchChunk appends a stored chunk's value of 248 bytes: its max
// time and 240 bytes that do not compress.
func appendBenchChunk(dst []byte, rng *rand.Rand, minT int64) []byte {
	dst = binary.AppendVarint(dst, minT+1_785_000)
	for range 30 {
		dst = binary.LittleEndian.AppendUint64(dst, rng.Uint64())
	}
	return dst
}

// TestCompactTxnFitsBadger: a compaction transaction that badger refuses
// as too big (ErrTxnTooBig) would stop compaction for good; its bounds
// stay below badger's, which follow the memtable size.
func TestCompactTxnFitsBadger(t *testing.T) {
	maxBatchSize := 15 * storeMemTableSize / 100 // badger's Options.maxBatchSize
	if compactTxnBytes >= maxBatchSize {
		t.Errorf("compactTxnBytes %d, badger's limit %d", compactTxnBytes, maxBatchSize)
	}
	if maxCount := maxBatchSize / skl.MaxNodeSize; compactTxnEntries >= maxCount {
		t.Errorf("compactTxnEntries %d, badger's limit %d", compactTxnEntries, maxCount)
	}
	if o := badgerOptions(t.TempDir(), options.None, slog.New(slog.DiscardHandler)); o.MemTableSize != storeMemTableSize {
		t.Errorf("badger's memtable is %d bytes, storeMemTableSize %d", o.MemTableSize, storeMemTableSize)
	}
}
