package tsdb

import (
	"fmt"
	"testing"
)

// BenchmarkDBCreateSeries measures creating series in a DB, in batches of
// 2,000, with and without evicted series in the store: with them, every
// new label set is first looked up among the evicted ones (one badger Get
// of its hash, a miss here).
func BenchmarkDBCreateSeries(b *testing.B) {
	const minute = 60000
	for _, evicted := range []int{0, 20_000} {
		b.Run(fmt.Sprintf("evicted=%d", evicted), func(b *testing.B) {
			db := openTestDB(b, b.TempDir(), testDBOptions())
			defer db.Close()
			if evicted > 0 {
				writePods(b, db, "gone", evicted, 0, minute)
				writePods(b, db, "now", 1, 30*minute, 31*minute)
				checkpoint(b, db)
				checkpoint(b, db)
				if n := countKeys(b, db, prefixEvicted); n != evicted {
					b.Fatalf("%d evicted series, want %d", n, evicted)
				}
			}
			b.ReportAllocs()
			created := 0
			for b.Loop() {
				app := db.Appender()
				for range 2000 {
					if err := app.Append(podSeries("new", created), 31*minute, 1); err != nil {
						b.Fatal(err)
					}
					created++
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(created)/b.Elapsed().Seconds(), "series/s")
		})
	}
}
