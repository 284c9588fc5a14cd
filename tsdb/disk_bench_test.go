package tsdb

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkDiskBytesPerSample writes hours of an etcd member fleet
// scraped every 15 s (counters that grow by small steps, histogram
// buckets that grow together, gauges that mostly hold), checkpointing and
// compacting every 30 minutes of samples as DB.run would, closes, and
// reports the bytes of badger's tables and the chunk journal's segments
// per sample: the disk cost of persisted chunks, series records
// included. A bucket is complete 25 minutes (staleness plus out-of-order
// window) after its end: of three hours the first 2-hour bucket is
// compacted, of eight the first three, of 24 the first eleven; the last
// stays in the journal as the checkpoints wrote it (its newest chunk is
// in the head snapshot, not counted), with the previous bucket's pieces
// that share its segment. Measured with the journal's chunks integer-
// encoded where smaller: 1.358, 1.306 and 1.257 bytes a sample
// uncompressed over 3, 8 and 24 hours, 1.325, 1.267 and 1.208 with
// snappy; the journal's share 0.54, 0.38 and 0.13. With the journal
// holding the head's XOR chunks: 1.582, 1.473 and 1.312, 1.549, 1.433
// and 1.263; the share 0.76, 0.55 and 0.18. Before the journal (figures
// below) badger held the last bucket.
//
// The synthetic values grow, and so do their XOR bits: eight hours cost more per sample than three, compacted or not;
// compaction writes the integer series as integer chunks (intchunk.go),
// whose deltas do not grow, so the uncompacted last bucket makes most of
// the difference. Measured: 1.42 and 1.43 bytes a sample uncompressed,
// 1.33 and 1.36 with snappy. With chunk ranges aligned (before each
// series' ranges had a phase) it was 1.19 and 1.35, 1.12 and 1.26: the
// snapshot then held a full 30 minutes of every series, left out of the
// tables but not of the samples counted, where phased chunks are half
// full on average; and the uncompacted last bucket holds a piece more
// per series, of the chunk that spans its start. Compacted buckets cost
// the same. (XOR windows only, aligned: 1.62, 1.75, 1.50, 1.67.)
// disk-bytes/sample is measured once badger's own compaction has settled
// (Flatten: replaced chunks and their tombstones gone),
// unsettled-bytes/sample right after close; compact-ns/sample is the
// compaction's time per sample it rewrote, compact-cpu-ns/sample the
// process's CPU time meanwhile (badger's background work included). Each
// length runs with badger's tables uncompressed (the default) and with
// snappy (Options.StoreCompression).
func BenchmarkDiskBytesPerSample(b *testing.B) {
	var fleet []labels.Labels
	for m := range 30 {
		fleet = append(fleet, etcdLabelSets(m)...)
	}
	for _, hours := range []int{3, 8, 24} {
		for _, compression := range []string{"none", "snappy"} {
			b.Run(fmt.Sprintf("hours=%d/compression=%s", hours, compression), func(b *testing.B) {
				benchDiskBytes(b, fleet, hours*60*4, compression)
			})
		}
	}
}

func benchDiskBytes(b *testing.B, fleet []labels.Labels, scrapes int, compression string) {
	const checkpointEvery = 30 * 4 // scrapes of 15 s
	for b.Loop() {
		dir := b.TempDir()
		o := DefaultOptions()
		o.CheckpointInterval = time.Hour
		o.StoreCompression = compression
		db, err := Open(dir, o, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		values := make([]float64, len(fleet))
		var compactTime, compactCPU time.Duration
		var st compactStats
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
			if k%checkpointEvery == checkpointEvery-1 {
				if err := db.Checkpoint(); err != nil {
					b.Fatal(err)
				}
				start, startCPU := time.Now(), processCPU(b)
				s, err := db.compact(nil)
				if err != nil {
					b.Fatal(err)
				}
				compactTime += time.Since(start)
				compactCPU += processCPU(b) - startCPU
				st.buckets, st.samples = st.buckets+s.buckets, st.samples+s.samples
			}
		}
		if err := db.Close(); err != nil { // checkpoints, flushes memtables
			b.Fatal(err)
		}
		samples := float64(scrapes * len(fleet))
		unsettled := tableBytesIn(b, filepath.Join(dir, "badger"))
		settle(b, filepath.Join(dir, "badger"), storeCompression(compression))
		sst := tableBytesIn(b, filepath.Join(dir, "badger"))
		// The chunk journal's segments hold the buckets not yet
		// compacted (and dead records until their segment goes).
		journal := journalBytesIn(b, filepath.Join(dir, "chunks"))
		b.ReportMetric(float64(sst+journal)/samples, "disk-bytes/sample")
		b.ReportMetric(float64(journal)/samples, "journal-bytes/sample")
		b.ReportMetric(float64(unsettled+journal)/samples, "unsettled-bytes/sample")
		b.ReportMetric(float64(len(fleet)), "series")
		b.ReportMetric(float64(st.buckets), "buckets-compacted")
		if st.samples > 0 {
			b.ReportMetric(float64(compactTime.Nanoseconds())/float64(st.samples), "compact-ns/sample")
			b.ReportMetric(float64(compactCPU.Nanoseconds())/float64(st.samples), "compact-cpu-ns/sample")
		}
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

// settle opens the badger store in dir and lets its compaction run to
// the end, as it would in the background of a running node: Flatten
// merges the levels into one, and with a level 0 of one table it
// compacts level 0 away too (a store written in a few hours may have all
// its tables there, which Flatten alone leaves as they are).
func settle(b *testing.B, dir string, compression options.CompressionType) {
	o := badgerOptions(dir, compression, slog.New(slog.DiscardHandler)).WithNumLevelZeroTables(1).WithNumLevelZeroTablesStall(64)
	db, err := badger.Open(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Flatten(1); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// journalBytesIn is the size of the chunk journal's segment files in dir.
func journalBytesIn(b *testing.B, dir string) int64 {
	segs, err := journalSegments(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, seg := range segs {
		info, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%08d", seg)))
		if err != nil {
			b.Fatal(err)
		}
		n += info.Size()
	}
	return n
}
