package tsdb

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkDiskBytesPerSample writes three hours of an etcd member fleet
// scraped every 15 s (counters that grow by small steps, histogram
// buckets that grow together, gauges that mostly hold), checkpoints, and
// reports the bytes of badger's tables per sample: the disk cost of
// persisted chunks, series records included.
func BenchmarkDiskBytesPerSample(b *testing.B) {
	var fleet []labels.Labels
	for m := range 30 {
		fleet = append(fleet, etcdLabelSets(m)...)
	}
	const scrapes = 3 * 60 * 4 // three hours at 15 s
	for b.Loop() {
		dir := b.TempDir()
		o := DefaultOptions()
		o.CheckpointInterval = time.Hour
		db, err := Open(dir, o, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		values := make([]float64, len(fleet))
		for k := range scrapes {
			app := db.Appender()
			for i, ls := range fleet {
				values[i] = nextValue(rng, ls, values[i])
				if err := app.Append(ls, int64(k)*15000, values[i]); err != nil {
					b.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.Close(); err != nil { // checkpoints, flushes memtables
			b.Fatal(err)
		}
		sst := tableBytesIn(b, filepath.Join(dir, "badger"))
		b.ReportMetric(float64(sst)/float64(scrapes*len(fleet)), "disk-bytes/sample")
		b.ReportMetric(float64(len(fleet)), "series")
	}
}

// nextValue moves a synthetic etcd value one scrape on.
func nextValue(rng *rand.Rand, ls labels.Labels, v float64) float64 {
	name := ls.Get("__name__")
	switch {
	case strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_count"):
		return v + float64(rng.IntN(40))
	case strings.HasSuffix(name, "_sum"):
		return v + rng.Float64()*0.05
	case strings.HasSuffix(name, "_total"):
		if rng.IntN(4) == 0 {
			return v
		}
		return v + float64(rng.IntN(300))
	case rng.IntN(20) == 0:
		return float64(rng.IntN(1 << 20))
	}
	return v
}
