package scavenge

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestWorthwhile(t *testing.T) {
	for _, c := range []struct {
		returnable, live uint64
		want             bool
	}{
		{0, 0, false},
		{MinBytes - 1, 0, false},
		{MinBytes, 0, true},
		{MinBytes, 100 << 20, true}, // a small heap: the floor decides
		{MinBytes, 8 * MinBytes, true},
		{MinBytes, 8*MinBytes + LiveFraction, false}, // the fraction decides
		{300 << 20, 2400 << 20, true},
		{299 << 20, 2400 << 20, false},
	} {
		if got := Worthwhile(c.returnable, c.live); got != c.want {
			t.Errorf("Worthwhile(%d, %d) = %v, want %v", c.returnable, c.live, got, c.want)
		}
	}
}

var sink []byte

// TestIfWorthwhile drops a garbage buffer well past MinBytes and checks
// that it is counted, returned only once the collector has been idle
// for the time asked, and that a second call finds nothing worth a
// cycle. Not parallel: it reads the process's heap.
func TestIfWorthwhile(t *testing.T) {
	debug.FreeOSMemory()
	if ifIdleAndWorthwhile(0) {
		t.Fatal("forced a cycle right after one, with nothing allocated")
	}
	// Garbage not yet collected: counted as objects past the live heap,
	// as long as no cycle ran while the buffer was live (no estimate
	// short of a cycle sees garbage the last cycle marked live).
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	sink = make([]byte, 2*MinBytes)
	for i := range sink {
		sink[i] = byte(i)
	}
	sink = nil
	if r, live := Returnable(); !Worthwhile(r, live) {
		t.Fatalf("returnable %d with live %d after dropping %d bytes: want a cycle worth forcing", r, live, 2*MinBytes)
	}
	// Collected but not returned: counted as free spans.
	runtime.GC()
	if r, live := Returnable(); !Worthwhile(r, live) {
		t.Fatalf("returnable %d with live %d after collecting %d bytes: want a cycle worth forcing", r, live, 2*MinBytes)
	}
	if IfWorthwhile() {
		t.Fatalf("forced a cycle %s after the last, want none before %s", time.Since(lastCycleEnd()), MinIdle)
	}
	if r, live := Returnable(); !Worthwhile(r, live) {
		t.Fatalf("returnable %d with live %d after a refused call: want the buffer still returnable", r, live)
	}
	before := Forced()
	if !ifIdleAndWorthwhile(0) {
		t.Fatal("did not force a cycle with the buffer's memory returnable")
	}
	if got := Forced(); got != before+1 {
		t.Fatalf("Forced() = %d after one forced cycle, want %d", got, before+1)
	}
	if r, live := Returnable(); Worthwhile(r, live) {
		t.Fatalf("returnable %d with live %d after the forced cycle: want nothing worth another", r, live)
	}
}

func TestNearCycle(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		objects, live, goal uint64
		want                bool
	}{
		{2800 * mb, 2778 * mb, 3334 * mb, false}, // just after a cycle
		{3000 * mb, 2778 * mb, 3334 * mb, false},
		{3056 * mb, 2778 * mb, 3334 * mb, true}, // half the room taken
		{3185 * mb, 2778 * mb, 3334 * mb, true}, // a cycle running (its start, in the 22-minute run)
		{3400 * mb, 2778 * mb, 3334 * mb, true}, // past the goal
		{100 * mb, 200 * mb, 300 * mb, false},   // fewer objects than the last cycle marked
		{500 * mb, 200 * mb, 200 * mb, false},   // no room at all: no goal to go by
		{500 * mb, 200 * mb, 0, false},          // no goal reported
	} {
		if got := nearCycle(c.objects, c.live, c.goal); got != c.want {
			t.Errorf("nearCycle(%d, %d, %d MiB) = %v, want %v", c.objects/mb, c.live/mb, c.goal/mb, got, c.want)
		}
	}
}
