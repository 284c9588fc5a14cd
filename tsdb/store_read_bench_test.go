package tsdb

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkPersistedSelect reads persisted chunks of 20,000 series (two
// hours at 15 s, checkpointed to the store) with 1 and 4 workers per
// querier, as the query engine reads series on all cores: samples/s of
// the whole read.
func BenchmarkPersistedSelect(b *testing.B) {
	db := openTestDB(b, b.TempDir(), testDBOptions())
	defer db.Close()
	const series, samples, step = 20_000, 480, 15_000
	app := db.Appender()
	for s := range series {
		ls := labels.FromStrings("__name__", "m", "i", fmt.Sprint(s))
		for i := int64(0); i < samples; i++ {
			if err := app.Append(ls, i*step, float64(i)); err != nil {
				b.Fatal(err)
			}
		}
		if s%1000 == 999 {
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			app = db.Appender()
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil {
		b.Fatal(err)
	}
	m := labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				q, err := db.Querier(0, samples*step)
				if err != nil {
					b.Fatal(err)
				}
				var all []Series
				set := q.SelectUnsorted(context.Background(), m)
				for set.Next() {
					all = append(all, set.At())
				}
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						var it Iterator
						for i := w; i < len(all); i += workers {
							it = all[i].Iterator(it)
							for it.Next() {
							}
							if it.Err() != nil {
								b.Error(it.Err())
							}
						}
					})
				}
				wg.Wait()
				q.Close()
			}
			b.ReportMetric(float64(series*samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
