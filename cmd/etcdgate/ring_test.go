package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRingFourNodes runs four real nodes with replication factor 3 and
// checks part 1 of the ring end to end: placement (each node holds 75% ±
// 10% of the series), a kill -9 that fails no write, a second kill that
// fails only writes without quorum, a restart that fails nothing, and at
// the end every acknowledged sample on at least two nodes, once.
func TestRingFourNodes(t *testing.T) {
	h := newRingHarness(t, "")
	names := []string{"n0", "n1", "n2", "n3"}
	for _, n := range names {
		h.start(n, 3)
	}
	for _, n := range names {
		waitActive(t, h.nodes[n].url, 30*time.Second, names...)
	}
	n0, n1 := h.nodes["n0"], h.nodes["n1"]

	// Placement: 50,000 series through one node.
	const placed = 50_000
	ts0 := time.Now().Add(-time.Minute).UnixMilli()
	for w := range placed / 1000 {
		if code, msg := ringWrite(n0.url, seriesBody("ring_placed", w, 1000, ts0, 1)); code != http.StatusNoContent {
			t.Fatalf("write through n0: %d %s", code, msg)
		}
	}
	// The status is reused for a second (ringStatusMaxAge), and third
	// copies may land after the answer: wait until every copy is counted.
	var st ringStatus
	waitFor(t, 30*time.Second, "3 copies of every placed series in the ring status", func() bool {
		var err error
		if st, err = getRingStatus(t, n1.url); err != nil {
			return false
		}
		var total int64
		for _, n := range st.Nodes {
			if n.HeadSeries != nil {
				total += *n.HeadSeries
			}
		}
		return total == 3*placed
	})
	for _, n := range st.Nodes {
		if n.HeadSeries == nil {
			t.Fatalf("node %s: no head series in the ring status: %s", n.Name, n.Error)
		}
		share := float64(*n.HeadSeries) / placed
		t.Logf("node %s holds %d of %d series (%.1f%%; owned share %.1f%%)", n.Name, *n.HeadSeries, placed, 100*share, 100*n.OwnedShare)
		if share < 0.65 || share > 0.85 {
			t.Errorf("node %s holds %.1f%% of the series, want 75%% ± 10%%", n.Name, 100*share)
		}
	}

	// Two writers through n0 and n1, while nodes die and come back.
	ws := []*ringWriter{{id: 0, base: n0.url}, {id: 1, base: n1.url}}
	var phase atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { w.run(stop, &phase) })
	}
	waitAcked := func(min int) {
		t.Helper()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d more acknowledged writes", min), func() bool {
			for _, w := range ws {
				if w.countIn(phase.Load(), http.StatusNoContent) < min {
					return false
				}
			}
			return true
		})
	}
	waitAcked(5)

	phase.Store(phaseOneDead)
	h.nodes["n3"].kill()
	waitAcked(5)
	waitActive(t, n0.url, time.Second, names...) // n3's lease still holds

	// The second kill comes before n3's lease expires: series owned by
	// both dead nodes lose their quorum until the leases expire.
	phase.Store(phaseTwoDead)
	h.nodes["n2"].kill()
	waitActive(t, n0.url, 30*time.Second, "n0", "n1")
	waitActive(t, n1.url, 30*time.Second, "n0", "n1")
	phase.Store(phaseTwoLeft)
	waitAcked(10)

	phase.Store(phaseRejoin)
	restart := time.Now()
	h.run(h.nodes["n2"])
	h.run(h.nodes["n3"])
	for _, n := range names {
		waitActive(t, h.nodes[n].url, 30*time.Second, names...)
	}
	t.Logf("n2 and n3 restarted on their data and ACTIVE on every node %s after the first start (TTL 5s)", time.Since(restart).Round(time.Millisecond))
	waitAcked(20)
	close(stop)
	wg.Wait()

	for _, w := range ws {
		for p := int32(phaseStart); p <= phaseRejoin; p++ {
			t.Logf("writer %d, %s: %v", w.id, phaseNames[p], w.statuses(p))
		}
		for _, r := range w.results {
			switch {
			case r.code == http.StatusNoContent:
			case r.phase <= phaseTwoDead && r.endPhase >= phaseTwoDead && r.code >= 500:
				// In flight while n2 died or was down with n3 in the ring.
			default:
				t.Errorf("writer %d, %s: write at %d answered %d: %s", w.id, phaseNames[r.phase], r.ts, r.code, r.msg)
			}
		}
	}
	failedTwoDead := 0
	for _, w := range ws {
		for _, r := range w.results {
			if r.code != http.StatusNoContent {
				failedTwoDead++
			}
		}
	}
	if failedTwoDead == 0 {
		t.Error("no write failed while two of the four nodes were down and in the ring: quorum is not enforced")
	}
	t.Logf("writes refused without quorum while two nodes were down: %d", failedTwoDead)

	// Every acknowledged sample is on at least two nodes, and no node
	// holds a sample twice.
	now := time.Now()
	held := map[string]map[int64]int{} // w/s → ts → nodes holding it
	for _, n := range names {
		for key, tss := range rawSamples(t, h.nodes[n].url, `ring_writes`, now) {
			m := held[key]
			if m == nil {
				m = map[int64]int{}
				held[key] = m
			}
			sort.Slice(tss, func(i, j int) bool { return tss[i] < tss[j] })
			for i, ts := range tss {
				if i > 0 && tss[i-1] == ts {
					t.Fatalf("node %s holds series %s at %d twice", n, key, ts)
				}
				m[ts]++
			}
		}
	}
	checked := 0
	for _, w := range ws {
		for _, r := range w.results {
			if r.code != http.StatusNoContent {
				continue
			}
			for s := range ringWriterSeries {
				key := fmt.Sprintf("%d/%d", w.id, s)
				if c := held[key][r.ts]; c < 2 {
					t.Fatalf("acknowledged sample %s at %d (%s) is on %d nodes, want at least 2", key, r.ts, phaseNames[r.phase], c)
				}
				checked++
			}
		}
	}
	t.Logf("%d acknowledged samples checked, each on at least 2 nodes", checked)

	// Part 2: any node answers for the whole ring (ring_fanout_test.go).
	checkRingReads(t, h, now)
}

const (
	phaseStart = iota
	phaseOneDead
	phaseTwoDead
	phaseTwoLeft
	phaseRejoin
)

var phaseNames = []string{"all up", "n3 killed", "n2 killed too", "n2 and n3 out of the ring", "n2 and n3 restarted"}

// ringWriterSeries is how many series a writer sends in each request.
const ringWriterSeries = 500

// ringWriter writes ring_writes{w=id, s=0..} with increasing timestamps
// through one node and records every answer.
type ringWriter struct {
	id      int
	base    string
	mu      sync.Mutex
	results []ringResult
}

type ringResult struct {
	phase    int32 // when the write was sent
	endPhase int32 // when its answer came
	ts       int64
	code     int
	msg      string
}

func (w *ringWriter) run(stop <-chan struct{}, phase *atomic.Int32) {
	last := int64(0)
	for {
		select {
		case <-stop:
			return
		default:
		}
		ts := max(time.Now().UnixMilli(), last+1)
		last = ts
		p := phase.Load()
		code, msg := ringWrite(w.base, seriesBody("ring_writes", w.id, ringWriterSeries, ts, float64(ts)))
		w.mu.Lock()
		w.results = append(w.results, ringResult{phase: p, endPhase: phase.Load(), ts: ts, code: code, msg: strings.TrimSpace(msg)})
		w.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// countIn counts answers with code in phase p.
func (w *ringWriter) countIn(p int32, code int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.results {
		if r.code == code && r.phase == p {
			n++
		}
	}
	return n
}

// statuses counts the answers of phase p by status code.
func (w *ringWriter) statuses(p int32) map[int]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[int]int{}
	for _, r := range w.results {
		if r.phase == p {
			out[r.code]++
		}
	}
	return out
}
