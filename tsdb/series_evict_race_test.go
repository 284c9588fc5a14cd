package tsdb

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
)

// TestDBEvictReviveRace: writers keep bringing back series that checkpoints
// running all the while deactivate and evict; every acknowledged sample is
// read back exactly once, each label set as one series, before and after a
// crash.
func TestDBEvictReviveRace(t *testing.T) {
	const writers, perWriter, rounds, minute = 4, 100, 600, 60000
	dir := t.TempDir()
	o := testDBOptions()
	db := openTestDB(t, dir, o)
	var checkpoints atomic.Int64
	var clock atomic.Int64 // minutes; writers write at the clock, which only advances
	acked := make([]map[string][]int64, writers)
	var stop atomic.Bool
	var cpErr error
	var cpWG sync.WaitGroup
	cpWG.Add(1)
	go func() {
		defer cpWG.Done()
		for !stop.Load() {
			checkpoints.Add(1)
			if err := db.Checkpoint(); err != nil {
				cpErr = err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		acked[w] = map[string][]int64{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			last := map[int]int64{}
			for r := range rounds {
				if r%15 == 14 { // let checkpoints keep up with the clock
					for target := checkpoints.Load() + 1; checkpoints.Load() < target && !stop.Load(); {
						time.Sleep(time.Millisecond)
					}
				}
				ts := clock.Add(1) * minute
				app := db.Appender()
				var batch []labels.Labels
				// A few series per batch, mostly ones idle for a while:
				// they are stale, or evicted, or being evicted.
				for range 3 {
					i := rng.IntN(perWriter)
					if last[i] >= ts {
						continue
					}
					ls := labels.FromStrings("__name__", "m", "w", fmt.Sprint(w), "i", fmt.Sprint(i))
					if err := app.Append(ls, ts, float64(ts)); err != nil {
						t.Errorf("append %s at %d: %v", ls, ts, err)
						continue
					}
					last[i] = ts
					batch = append(batch, ls)
				}
				if err := app.Commit(); err != nil {
					t.Errorf("commit: %v", err)
					continue
				}
				for _, ls := range batch {
					acked[w][ls.String()] = append(acked[w][ls.String()], ts)
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	cpWG.Wait()
	if cpErr != nil {
		t.Fatal(cpErr)
	}
	evicted, revived := testutil.ToFloat64(db.head.metrics.seriesEvicted), testutil.ToFloat64(db.head.metrics.seriesRevived)
	t.Logf("%d checkpoints, %v evictions, %v revivals, %d series in memory and %d active at the end",
		checkpoints.Load(), evicted, revived, db.head.NumIndexedSeries(), db.head.NumSeries())
	if evicted == 0 || revived == 0 {
		t.Fatal("nothing was evicted: the test did not exercise eviction")
	}
	check := func(db *DB, phase string) {
		t.Helper()
		got := dbSelect(t, db, 0, (clock.Load()+1)*minute, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
		want := 0
		for w := range writers {
			for ls, ts := range acked[w] {
				want++
				samples := got[ls]
				if len(samples) != len(ts) {
					t.Fatalf("%s: %s: %d samples read, %d acknowledged: %v, want %v", phase, ls, len(samples), len(ts), samples, ts)
				}
				for k, s := range samples {
					if s.t != ts[k] {
						t.Fatalf("%s: sample %d at %d, want %d", ls, k, s.t, ts[k])
					}
				}
			}
		}
		if len(got) != want {
			t.Fatalf("%d series read, %d written", len(got), want)
		}
	}
	check(db, "before the crash")
	crash(t, db)
	db = openTestDB(t, dir, o)
	defer db.Close()
	check(db, "after the crash")
}
