package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// The GC percent while serving. defaultGOGC suits a large head: a cycle
// at every 30% of growth keeps RSS near the live heap. A small head gets
// a small headroom from it (30 MiB at 100 MiB live), and a query that
// allocates a few MiB then sets off a cycle that marks the whole head
// again: at 100,000 series, cycles driven by queries were ~20% of the
// CPU under the dashboard load, and GOGC=100 made the etcd SLO queries
// 9% faster (geometric mean). So the headroom is at least
// minGCHeadroom: the percent is raised while the live heap is below
// minGCHeadroom/defaultGOGC×100 and is defaultGOGC above it (from about
// 430 MiB live, some 700,000 series). The floor is what an attack's
// transient garbage may add to RSS before a cycle: 256 MiB took the
// metadata flood of TestAttackMetadataFlood past its bound.
//
// Above some 1.7 GiB live (three to four million series) the headroom
// stays at maxGCHeadroom: a checkpoint's badger writes allocate GiBs in
// a burst, and at ten million series a 30% headroom let the heap run
// 1.2 GB over a 4 GB live heap at every checkpoint that wrote chunks
// (peak RSS 7.07 GiB over 34 minutes; with the cap 6.32 GiB, at 2.02
// against 1.97 µs of CPU per sample). A cap of 256 MiB took that run
// to 4.45 GiB against 4.82 (with the table pager, tight open chunks and
// 112-byte series), but at 2.11 µs against 1.89 the node fell 78 s
// behind its scrapes: two cores cannot pay for the cycles.
//
// The percent is set after every GC cycle, from the live heap that cycle
// marked. Set from a sample a second old, it multiplies the headroom when
// the live heap grows fast: a percent of 640 chosen at 20 MiB live gives
// a 50 MiB live heap 320 MiB of headroom, not 128 (the metadata flood
// peaked 300–380 MiB over its start that way).
const (
	// minGCHeadroom is the least growth of the heap between two cycles.
	minGCHeadroom = 128 << 20
	// maxGCHeadroom is the most growth of the heap between two cycles.
	maxGCHeadroom = 512 << 20
	// maxTunedGOGC bounds the percent for a nearly empty heap.
	maxTunedGOGC = 1000
)

// gcPercentFor returns the GC percent that gives a live heap of live
// bytes defaultGOGC percent of headroom, but at least headroom bytes
// and at most maxGCHeadroom.
func gcPercentFor(live, headroom int64) int {
	if live <= 0 {
		return maxTunedGOGC
	}
	want := min(max(headroom, live/100*defaultGOGC), max(headroom, maxGCHeadroom))
	p := (want*100 + live - 1) / live
	return int(max(1, min(maxTunedGOGC, p)))
}

// gcHeadroom is minGCHeadroom, or an eighth of GOMEMLIMIT when that is
// less: a node sized to 512 MiB keeps its headroom small. GOMEMLIMIT bounds
// the heap whatever the percent.
func gcHeadroom(goMemLimit int64) int64 {
	if goMemLimit > 0 {
		return min(minGCHeadroom, goMemLimit/8)
	}
	return minGCHeadroom
}

// gcTuner sets the GC percent from the live heap.
type gcTuner struct {
	headroom int64
	percent  int // last set
	sample   []metrics.Sample
}

func newGCTuner(goMemLimit int64) *gcTuner {
	return &gcTuner{headroom: gcHeadroom(goMemLimit), sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
}

// tune sets the percent for the live heap the last cycle marked, when it
// moved by more than a tenth (each call to SetGCPercent recomputes the
// GC's pacing).
func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := gcPercentFor(int64(t.sample[0].Value.Uint64()), t.headroom)
	if t.percent == 0 || p*10 < t.percent*9 || p*10 > t.percent*11 {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// gcCycles notifies C after each GC cycle (at most one pending
// notification), from a finalizer that re-arms itself on its sentinel.
type gcCycles struct {
	C       chan struct{}
	stopped atomic.Bool
}

// gcSentinel holds a pointer so that it is never a tiny allocation,
// whose finalizer may not run.
type gcSentinel struct{ cycles *gcCycles }

func notifyGCCycles() *gcCycles {
	c := &gcCycles{C: make(chan struct{}, 1)}
	runtime.SetFinalizer(&gcSentinel{cycles: c}, finalizeGCSentinel)
	return c
}

// finalizeGCSentinel runs once the cycle that found s unreachable is
// swept; set again, the finalizer runs after the next cycle.
func finalizeGCSentinel(s *gcSentinel) {
	if s.cycles.stopped.Load() {
		return
	}
	select {
	case s.cycles.C <- struct{}{}:
	default:
	}
	runtime.SetFinalizer(s, finalizeGCSentinel)
}

// stop ends the notifications after the next cycle.
func (c *gcCycles) stop() { c.stopped.Store(true) }
