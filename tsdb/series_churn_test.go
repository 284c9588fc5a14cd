package tsdb

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestChurnMemoryComesBack pushes waves of series whose pod label is
// unique (pods that come and go) through a DB with a short staleness
// period and the checkpoints that follow each wave. Memory must come back
// to its level after the first wave instead of growing with every wave:
// evicted series leave their structs, postings and symbols behind them.
//
// ETCDGATE_CHURN_SERIES sets the series per wave (default 50,000),
// ETCDGATE_CHURN_WAVES the waves (default 5): a quarter of a million
// series by default, which takes ~40-60 s on 2 busy cores.
func TestChurnMemoryComesBack(t *testing.T) {
	defPerWave := 50_000
	if raceEnabled {
		defPerWave = 5_000
	}
	perWave, waves := envInt(t, "ETCDGATE_CHURN_SERIES", defPerWave), envInt(t, "ETCDGATE_CHURN_WAVES", 5)
	o := testDBOptions()
	o.Head.OutOfOrderWindow = 0
	o.StalenessPeriod = 15 * time.Minute
	db := openTestDB(t, t.TempDir(), o)
	defer db.Close()
	const step, waveGap = 15000, 30 * 60000
	series := func(wave, i int) labels.Labels {
		return labels.FromStrings("__name__", "etcd_debugging_mvcc_keys_total", "job", "etcd",
			"cluster", fmt.Sprintf("cluster-%d", i%500), "pod", fmt.Sprintf("etcd-%d-%07d-%x", wave, i, i*2654435761))
	}
	heapInUse := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	base, baseOwn := heapInUse(), heapOutsideBadger()
	heap := make([]uint64, waves)
	own := make([]int64, waves)
	symbols := make([]int, waves)
	bytes := make([]int64, waves)
	start := time.Now()
	for w := range waves {
		t0 := int64(w) * waveGap
		for k := range int64(2) {
			for i := 0; i < perWave; i += 2000 {
				app := db.Appender()
				for j := i; j < min(i+2000, perWave); j++ {
					if err := app.Append(series(w, j), t0+k*step, float64(j)); err != nil {
						t.Fatal(err)
					}
				}
				if err := app.Commit(); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The first checkpoint finds the previous wave stale, the second
		// evicts it.
		checkpoint(t, db)
		checkpoint(t, db)
		heap[w], own[w], symbols[w], bytes[w] = heapInUse(), heapOutsideBadger(), db.head.symbols.len(), db.head.Bytes()
		if churnProfile != "" { // ETCDGATE_CHURN_PROFILE: a heap profile after each wave
			f, err := os.Create(fmt.Sprintf("%s.%d", churnProfile, w))
			if err != nil {
				t.Fatal(err)
			}
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		t.Logf("wave %d: %d series in memory, %d symbols, head accounts %.1f MiB; heap in use %.1f MiB over the start, %.1f of it outside badger; %s",
			w, db.head.NumIndexedSeries(), symbols[w], float64(bytes[w])/(1<<20),
			float64(int64(heap[w])-int64(base))/(1<<20), float64(own[w]-baseOwn)/(1<<20), time.Since(start).Round(time.Millisecond))
	}
	if n := db.head.NumIndexedSeries(); n != int64(perWave) {
		t.Fatalf("%d series in memory after %d waves, want the last wave's %d", n, waves, perWave)
	}
	// One wave's footprint: what the first wave added to the heap outside
	// badger. Badger's memtables, caches and table builders are bounded
	// by its options but come and go with its compactions, by a hundred
	// MiB and more between two measurements: HeapInuse is logged, and the
	// assertions are on the rest, which is the head's. Its maps, lists
	// and symbol slots settle over the first waves (each overlaps its
	// predecessor until evicted; 10 waves of 200,000 settled by the
	// fourth); after that the level must stay: never a whole wave over
	// the second wave's, and, in runs of 8 waves or more, no growth of a
	// quarter wave over the second half. Without eviction every wave adds
	// a wave.
	wave := own[0] - baseOwn
	mid := waves / 2
	// The estimate from a sampled profile, pools and reused buffers move
	// by a few MiB between two measurements of the same state.
	const noise = 8 << 20
	for w := 1; w < waves; w++ {
		// Under the race detector waves are too small for heap figures.
		if grown := own[w] - own[1]; !raceEnabled && grown > wave+noise {
			t.Errorf("heap outside badger after wave %d is %.1f MiB over its level after the second wave (a wave is %.1f MiB)",
				w, float64(grown)/(1<<20), float64(wave)/(1<<20))
		}
		if grown := own[w] - own[mid]; !raceEnabled && waves >= 8 && w > mid && grown > wave/4+noise {
			t.Errorf("heap outside badger grew by %.1f MiB from wave %d to wave %d (a wave is %.1f MiB)",
				float64(grown)/(1<<20), mid, w, float64(wave)/(1<<20))
		}
		if symbols[w] > symbols[0] {
			t.Errorf("%d symbols after wave %d, %d after the first", symbols[w], w, symbols[0])
		}
		if bytes[w] > bytes[0]+bytes[0]/20 {
			t.Errorf("head accounts %d bytes after wave %d, %d after the first", bytes[w], w, bytes[0])
		}
	}
	// The evicted waves are still read from the store.
	got := dbSelect(t, db, 0, int64(waves)*waveGap, labels.MustNewMatcher(labels.MatchEqual, "pod", series(0, 7).Get("pod")))
	if s := got[series(0, 7).String()]; len(s) != 2 || s[1] != (sample{step, 7}) {
		t.Fatalf("an evicted series of the first wave reads %v", got)
	}
}

// heapOutsideBadger estimates the heap in use by allocations made outside
// badger (and ristretto), from the memory profile, scaled for sampling as
// pprof does.
func heapOutsideBadger() int64 {
	runtime.GC()
	runtime.GC() // the profile reflects the last completed cycle
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	var total float64
	for _, r := range recs {
		if r.InUseBytes() == 0 || r.AllocObjects == 0 || allocatedByBadger(r.Stack()) {
			continue
		}
		avg := float64(r.AllocBytes) / float64(r.AllocObjects)
		total += float64(r.InUseBytes()) / (1 - math.Exp(-avg/rate))
	}
	return int64(total)
}

func allocatedByBadger(stack []uintptr) bool {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		if strings.Contains(f.Function, "github.com/dgraph-io/") {
			return true
		}
		if !more {
			return false
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func init() {
	if p := os.Getenv("ETCDGATE_CHURN_PROFILE"); p != "" {
		churnProfile = p
	}
}

var churnProfile string
