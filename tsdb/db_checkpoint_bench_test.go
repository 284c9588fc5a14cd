package tsdb

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkCommitDuringCheckpoint measures the latency of small commits
// while checkpoints run back to back: a checkpoint that held the commit
// lock across the WAL fsync showed up as a p99 of an fsync. fsync=20ms
// adds 20 ms to every segment fsync, as a slow (network) disk would.
//
//	go test -run '^$' -bench 'CommitDuringCheckpoint/sync=none' -benchtime 30000x ./tsdb/
func BenchmarkCommitDuringCheckpoint(b *testing.B) {
	for _, bc := range []struct {
		mode  WALSync
		fsync time.Duration
	}{{WALSyncNone, 0}, {WALSyncNone, 200 * time.Millisecond}, {WALSyncInterval, 0}, {WALSyncInterval, 20 * time.Millisecond}} {
		b.Run(fmt.Sprintf("sync=%s/fsync=%s", bc.mode, bc.fsync), func(b *testing.B) {
			o := testDBOptions()
			o.WALSync, o.WALSyncInterval = bc.mode, 10*time.Millisecond
			if bc.fsync > 0 {
				fs := &FaultFS{}
				fs.BeforeSync(func(string) error { time.Sleep(bc.fsync); return nil })
				o.WALFS = fs
			}
			db := openTestDB(b, b.TempDir(), o)
			defer db.Close()
			const nSeries, batch = 20000, 100
			lsets := make([]labels.Labels, nSeries)
			for i := range lsets {
				lsets[i] = labels.FromStrings("__name__", "bench_metric", "instance", fmt.Sprint(i%100), "i", fmt.Sprint(i))
			}
			ts := int64(0)
			writeBatch := func(from int) {
				app := db.Appender()
				for i := range batch {
					if err := app.Append(lsets[(from+i)%nSeries], ts, float64(ts)); err != nil {
						b.Fatal(err)
					}
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < nSeries; i += batch { // every series exists and has a sample
				writeBatch(i)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var checkpoints atomic.Int64
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := db.Checkpoint(); err != nil {
						b.Error(err)
						return
					}
					checkpoints.Add(1)
				}
			})
			lat := make([]time.Duration, 0, b.N)
			next := 0
			for b.Loop() {
				ts += 1000
				start := time.Now()
				writeBatch(next)
				lat = append(lat, time.Since(start))
				next = (next + batch) % nSeries
			}
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(0.999), "p99.9-ms")
			b.ReportMetric(q(1), "max-ms")
			b.ReportMetric(float64(checkpoints.Load()), "checkpoints")
		})
	}
}
