package tsdb

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// cutRun appends samples every 15 s (plus jitter(k), in ms) to n series
// created in the same scrape, from a multiple of the chunk range (where
// aligned ranges would cut every series at once), for the given number
// of scrapes. It returns the series and how many cut a chunk at each
// scrape.
func cutRun(n, scrapes int, jitter func(k int) int64) ([]*memSeries, []int) {
	const chunkSamples, chunkRange = 120, int64(2 * time.Hour / time.Millisecond)
	series := make([]*memSeries, n)
	for i := range series {
		series[i] = newMemSeries(SeriesRef(i+1), seriesSyms{})
	}
	cuts := make([]int, scrapes)
	start := 10 * chunkRange
	for k := range scrapes {
		t := start + int64(k)*15000 + jitter(k)
		for _, s := range series {
			if s.appendInOrderLocked(t, float64(k), chunkSamples, chunkRange) && k > 0 {
				cuts[k]++
			}
		}
	}
	return series, cuts
}

// mostInWindow returns the most cuts within window consecutive scrapes,
// and the first of them.
func mostInWindow(cuts []int, window int) (most, at int) {
	for k := range cuts {
		sum := 0
		for _, c := range cuts[k:min(k+window, len(cuts))] {
			sum += c
		}
		if sum > most {
			most, at = sum, k
		}
	}
	return most, at
}

// lastFirstCut returns the latest scrape at which one of series closed
// its first chunk (scrapes counted from its first sample).
func lastFirstCut(series []*memSeries) int {
	last := 0
	for _, s := range series {
		if cs := s.closedChunks(); len(cs) > 0 {
			last = max(last, xorNumSamples(cs[0].data))
		}
	}
	return last
}

// steadyChunkSamples returns the sample counts of s's closed chunks that
// start at or after its first range boundary (its phase), where chunks
// divide whole ranges.
func steadyChunkSamples(s *memSeries, from, chunkRange int64) []int {
	firstEnd := seriesRangeEnd(s.ref, from, chunkRange)
	var out []int
	for _, c := range s.closedChunks() {
		if c.minT >= firstEnd {
			out = append(out, xorNumSamples(c.data))
		}
	}
	return out
}

// TestChunkCutsSpread: series created in one scrape, on a boundary of the
// chunk range, do not close their chunks together. Aligned ranges closed
// all of them in the same scrape every 30 minutes; dividing only the rest
// of each series' first range closed a sixth of them within 2 minutes
// (the default checkpoint interval, whose checkpoint writes and releases
// them) just before the 30th. Now, over six hours, at most a fifteenth
// of them and a hundredth more close within any 2 minutes, as uniform
// spreading gives: their first chunks end on the division of their whole
// range, between 0 and 45 minutes in. Past its first range boundary
// every series cuts chunks of exactly 120 samples, four a range.
func TestChunkCutsSpread(t *testing.T) {
	const n, scrapes, window = 4000, 6 * 240, 8
	series, cuts := cutRun(n, scrapes, func(int) int64 { return 0 })
	if most, at := mostInWindow(cuts, window); most > n/15+n/100 {
		t.Fatalf("%d of %d series cut a chunk in the %d scrapes from scrape %d, want about a fifteenth", most, n, window, at)
	}
	if last := lastFirstCut(series); last > 180 {
		t.Fatalf("a first chunk closed at scrape %d, want by 180 (45 minutes)", last)
	}
	chunkRange := int64(2 * time.Hour / time.Millisecond)
	steady := 0
	for _, s := range series {
		for _, got := range steadyChunkSamples(s, 10*chunkRange, chunkRange) {
			if got != 120 {
				t.Fatalf("series %d: a chunk of %d samples past its first range, want 120", s.ref, got)
			}
			steady++
		}
	}
	if steady < n*8 { // at least two whole ranges of four chunks
		t.Fatalf("%d chunks past the first ranges, want %d or more", steady, n*8)
	}
}

// TestChunkCutsJitter: timestamps that jitter by up to ±500 ms neither
// add a chunk to a range nor leave a chunk of a sample or two at its end.
func TestChunkCutsJitter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	offsets := make([]int64, 6*240)
	for k := range offsets {
		offsets[k] = rng.Int64N(1001) - 500
	}
	series, _ := cutRun(500, len(offsets), func(k int) int64 { return offsets[k] })
	chunkRange := int64(2 * time.Hour / time.Millisecond)
	for _, s := range series {
		for _, got := range steadyChunkSamples(s, 10*chunkRange, chunkRange) {
			if got < 119 || got > 121 {
				t.Fatalf("series %d: a chunk of %d samples past its first range, want 119 to 121", s.ref, got)
			}
		}
	}
}

// TestChunkCutsBounded: samples that come much faster than a chunk's
// first ones did close it at twice ChunkSamples; a series' chunks never
// span more than its range.
func TestChunkCutsBounded(t *testing.T) {
	const chunkSamples, chunkRange = 120, int64(2 * time.Hour / time.Millisecond)
	s := newMemSeries(7, seriesSyms{})
	ts := int64(0)
	for k := range 1000 {
		if k < 40 {
			ts += 60_000
		} else {
			ts++
		}
		s.appendInOrderLocked(ts, 1, chunkSamples, chunkRange)
	}
	for _, c := range s.closedChunks() {
		if n := xorNumSamples(c.data); n > 2*chunkSamples {
			t.Fatalf("a chunk of %d samples, want at most %d", n, 2*chunkSamples)
		}
		if end := seriesRangeEnd(s.ref, c.minT, chunkRange); c.maxT >= end {
			t.Fatalf("chunk [%d, %d] spans its range's end %d", c.minT, c.maxT, end)
		}
	}
	if len(s.closedChunks()) < 3 {
		t.Fatalf("%d closed chunks, want the burst cut at 240 samples", len(s.closedChunks()))
	}
}

// TestChunkCutsAtTheEndsOfTime: timestamps near either end of int64 do
// not overflow the range's end into cutting every sample, nor keep a
// chunk open past twice ChunkSamples.
func TestChunkCutsAtTheEndsOfTime(t *testing.T) {
	const chunkSamples, chunkRange = 120, int64(2 * time.Hour / time.Millisecond)
	for _, from := range []int64{math.MinInt64, math.MaxInt64 - 1000} {
		s := newMemSeries(5, seriesSyms{})
		for k := range int64(1000) {
			s.appendInOrderLocked(from+k, 1, chunkSamples, chunkRange)
		}
		for _, c := range s.closedChunks() {
			if n := xorNumSamples(c.data); n < chunkSamples/2 || n > 2*chunkSamples {
				t.Fatalf("from %d: a chunk of %d samples, want %d to %d", from, n, chunkSamples/2, 2*chunkSamples)
			}
		}
	}
}

// TestChunkPhaseSpreads: consecutive refs' phases cover the range evenly.
func TestChunkPhaseSpreads(t *testing.T) {
	const r, buckets = int64(7_200_000), 16
	var hist [buckets]int
	for ref := SeriesRef(1); ref <= 16000; ref++ {
		p := chunkPhase(ref, r)
		if p < 0 || p >= r {
			t.Fatalf("phase %d of ref %d outside [0, %d)", p, ref, r)
		}
		hist[p*buckets/r]++
	}
	for i, c := range hist {
		if math.Abs(float64(c)-1000) > 100 {
			t.Fatalf("phases: %d in sixteenth %d, want 1000 ± 100 (%v)", c, i, hist)
		}
	}
}

// TestClosedChunkKeepsItsBytes: a cut moves the open chunk's array into
// the closed chunk (closeHeadLocked); the samples that follow go to a new
// array and leave the closed chunk's bytes as they were.
func TestClosedChunkKeepsItsBytes(t *testing.T) {
	const chunkSamples, chunkRange = 120, int64(2 * time.Hour / time.Millisecond)
	s := newMemSeries(3, seriesSyms{})
	var kept [][]byte
	for k := range 1000 {
		s.appendInOrderLocked(int64(k)*15_000, float64(k%17), chunkSamples, chunkRange)
		closed := s.closedChunks()
		if len(closed) > len(kept) {
			c := closed[len(closed)-1]
			if cap(c.data) < len(c.data) || len(c.data) == 0 {
				t.Fatalf("closed chunk of %d bytes, capacity %d", len(c.data), cap(c.data))
			}
			kept = append(kept, bytes.Clone(c.data))
		}
	}
	if len(kept) < 3 {
		t.Fatalf("%d chunks closed over 1,000 samples, want at least 3", len(kept))
	}
	for i, c := range s.closedChunks() {
		if !bytes.Equal(c.data, kept[i]) {
			t.Fatalf("closed chunk %d changed after its cut", i)
		}
	}
}
