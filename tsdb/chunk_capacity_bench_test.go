package tsdb

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkOpenChunkCapacity reports the bytes the open chunks of a head
// of etcd series (ETCDGATE_BENCH_SERIES, default 50,000) hold, by length
// and by capacity, averaged over every 20th of 240 scrapes at 15 s with
// the values of a synthetic fleet (nextValue) and a checkpoint every 20:
// the difference is what the chunks' growth leaves idle (appendChunkByte).
func BenchmarkOpenChunkCapacity(b *testing.B) {
	o := testDBOptions()
	fleet := etcdFleet(benchSeries(b, 50_000))
	start := 10 * o.Head.ChunkRange.Milliseconds()
	var length, capacity, measured int64
	for b.Loop() {
		db := openTestDB(b, b.TempDir(), o)
		rng := rand.New(rand.NewPCG(1, 2))
		values := make([]float64, len(fleet))
		length, capacity, measured = 0, 0, 0
		for k := 1; k <= 240; k++ {
			appendFleet(b, db, fleet, start+int64(k-1)*15000, func(i int) float64 {
				values[i] = nextValue(rng, fleet[i], values[i])
				return values[i]
			})
			if k%20 != 0 {
				continue
			}
			b.StopTimer()
			measured++
			db.head.series.refs.batches(1024, func(batch []*memSeries) error {
				for _, s := range batch {
					s.mu.Lock()
					length, capacity = length+int64(len(s.head.bytes())), capacity+int64(cap(s.head.bytes()))
					s.mu.Unlock()
				}
				return nil
			})
			checkpoint(b, db)
			b.StartTimer()
		}
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(measured) * float64(len(fleet))
	b.ReportMetric(float64(length)/n, "open-len-B/series")
	b.ReportMetric(float64(capacity)/n, "open-cap-B/series")
}
