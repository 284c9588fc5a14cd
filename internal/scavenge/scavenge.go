// Package scavenge hands freed heap back to the operating system when
// there is enough of it to pay for the garbage collection that takes.
//
// The runtime returns freed memory lazily, so after a burst (a
// checkpoint's badger tables, a big query) RSS stays high for minutes,
// and RSS is the capacity figure operators watch. debug.FreeOSMemory
// returns it at once, but it forces a GC cycle, and a cycle marks the
// whole live heap: at ten million series 4-8 s of CPU and 8-15 s during
// which every pointer write pays a write barrier. Forced every 30 s that
// was a tenth of the node's CPU in steady ingest, to return the 40-90 MB
// allocated in between. IfWorthwhile forces it only when what it would
// return is a sizable part of the live heap, and only while the
// collector is idle and no cycle is due: when cycles come on their own,
// each frees what there is to free soon enough.
package scavenge

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// MinBytes is the least memory worth a forced cycle: below it a
	// small heap would be collected at every call for nothing RSS shows.
	MinBytes = 64 << 20
	// LiveFraction: a forced cycle is worth it from 1/LiveFraction of
	// the live heap returnable. The cycle's cost grows with the live
	// heap, so the memory it must return grows with it too.
	LiveFraction = 8
	// MinIdle is how long the collector must have been idle for a
	// forced cycle. Right after a cycle, what was allocated since its
	// start is mostly what the next one finds live, not garbage: at ten
	// million series a cycle takes 8-10 s, and the 300-500 MB allocated
	// during it made Returnable force another at once: in a 33-minute
	// run 40 of 86 cycles were forced, 34 of them within 15 s of the
	// previous cycle's end.
	MinIdle = 30 * time.Second
)

var samples = []metrics.Sample{
	{Name: "/memory/classes/heap/free:bytes"},    // free spans not yet returned
	{Name: "/memory/classes/heap/objects:bytes"}, // live and dead objects not yet swept
	{Name: "/gc/heap/live:bytes"},                // marked by the last cycle
	{Name: "/gc/heap/goal:bytes"},                // where the collector aims to end its next cycle
}

// mu serialises callers over the shared samples.
var mu sync.Mutex

// heap is what the runtime reports of the heap, in bytes.
type heap struct{ free, objects, live, goal uint64 }

func readHeap() heap {
	mu.Lock()
	defer mu.Unlock()
	metrics.Read(samples)
	var v [4]uint64
	for i, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	return heap{free: v[0], objects: v[1], live: v[2], goal: v[3]}
}

// returnable: free spans, and objects past the live heap.
func (h heap) returnable() uint64 {
	if h.objects > h.live {
		return h.free + h.objects - h.live
	}
	return h.free
}

// nearCycle reports whether the heap has taken half the room the
// collector's goal leaves above the live heap (objects and live as
// Returnable counts them): a cycle is then running or soon due, and it
// frees what a forced one would. runtime.GC during a cycle waits for it
// and then runs another: at ten million series, 3 of the 19 cycles of
// a 22-minute run were forced right after a natural one had marked for
// 10 s, and one of them marked for 30 s while ingest fell behind.
func nearCycle(objects, live, goal uint64) bool {
	return goal > live && objects > live && objects-live >= (goal-live)/2
}

// Returnable estimates what a forced cycle and scavenge would return
// now: free spans the runtime retains, plus what was allocated since the
// last cycle beyond the live heap that cycle marked. Short of a cycle,
// that is the best guess at garbage, and it errs both ways: it counts
// new live objects (a burst of new series forces a cycle that frees
// less), and it misses objects the last cycle found live that died
// since (the next cycle, forced or not, finds them). It also returns
// the live heap.
func Returnable() (returnable, live uint64) {
	h := readHeap()
	return h.returnable(), h.live
}

// Worthwhile reports whether returnable bytes are worth a forced cycle
// over a live heap of live bytes.
func Worthwhile(returnable, live uint64) bool {
	return returnable >= max(MinBytes, live/LiveFraction)
}

// IfWorthwhile calls debug.FreeOSMemory when the collector has been
// idle for MinIdle, no cycle is near (nearCycle) and Worthwhile says the
// memory it would return is worth the cycle, and reports whether it did.
func IfWorthwhile() bool { return ifIdleAndWorthwhile(MinIdle) }

func ifIdleAndWorthwhile(minIdle time.Duration) bool {
	if idle := time.Since(lastCycleEnd()); idle < minIdle {
		return false
	}
	h := readHeap()
	if !Worthwhile(h.returnable(), h.live) || nearCycle(h.objects, h.live, h.goal) {
		return false
	}
	debug.FreeOSMemory()
	forced.Add(1)
	return true
}

// forced counts the cycles IfWorthwhile forced.
var forced atomic.Uint64

// Forced returns how many GC cycles IfWorthwhile has forced in this
// process: the operator's view of what returning memory costs.
func Forced() uint64 { return forced.Load() }

// lastCycleEnd returns when the last GC cycle ended; the zero time
// before the first.
func lastCycleEnd() time.Time {
	var s debug.GCStats
	debug.ReadGCStats(&s)
	return s.LastGC
}
