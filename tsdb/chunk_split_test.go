package tsdb

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// TestChunkSplitterPieces: a chunk spanning two bucket boundaries comes
// out as three pieces, each in one bucket, holding exactly the samples of
// its bucket, encoded as encodeSamples encodes them; a second chunk
// through the same splitter is not disturbed by the first's buffers.
func TestChunkSplitterPieces(t *testing.T) {
	const bucket = 1000
	var samples []sample
	for ts := int64(900); ts < 2300; ts += 50 {
		samples = append(samples, sample{t: ts, v: math.Sin(float64(ts))})
	}
	var sp chunkSplitter
	for round := range 2 {
		c := encodeSamples(samples)
		var got []memChunk
		err := sp.pieces(c, bucket, func(p memChunk) error {
			got = append(got, memChunk{data: bytes.Clone(p.data), minT: p.minT, maxT: p.maxT})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("round %d: %d pieces, want 3", round, len(got))
		}
		rest := samples
		for i, p := range got {
			if p.minT/bucket != p.maxT/bucket {
				t.Fatalf("round %d: piece %d spans [%d, %d], more than one bucket", round, i, p.minT, p.maxT)
			}
			n := 0
			for n < len(rest) && rest[n].t/bucket == p.minT/bucket {
				n++
			}
			want := encodeSamples(rest[:n])
			if !bytes.Equal(p.data, want.data) || p.minT != want.minT || p.maxT != want.maxT {
				t.Fatalf("round %d: piece %d is not the chunk of its bucket's %d samples", round, i, n)
			}
			sameBits(t, "piece", appendChunkSamples(nil, p, minInt64, maxInt64), rest[:n])
			rest = rest[n:]
		}
		samples = samples[1:] // another chunk for the second round
	}
}

// TestChunkSplitterStops: an error from the callback ends the split and
// is returned.
func TestChunkSplitterStops(t *testing.T) {
	var sp chunkSplitter
	c := encodeSamples([]sample{{t: 10, v: 1}, {t: 1010, v: 2}, {t: 2010, v: 3}})
	stop := errors.New("stop")
	calls := 0
	err := sp.pieces(c, 1000, func(memChunk) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("err %v after %d calls, want %v after 1", err, calls, stop)
	}
}

// TestChunkSplitterAllocs: once its buffers have grown, splitting a
// chunk allocates nothing. At a bucket boundary the checkpoint splits
// every open chunk of the head.
func TestChunkSplitterAllocs(t *testing.T) {
	var samples []sample
	for i := range int64(120) {
		samples = append(samples, sample{t: 7_000_000 + i*15_000, v: float64(i * 3)})
	}
	c := encodeSamples(samples)
	var sp chunkSplitter
	pieces := 0
	split := func() {
		if err := sp.pieces(c, 7_200_000, func(memChunk) error { pieces++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	split()
	if pieces != 2 {
		t.Fatalf("%d pieces, want 2", pieces)
	}
	if a := testing.AllocsPerRun(100, split); a != 0 {
		t.Fatalf("%.1f allocations a split, want 0", a)
	}
}
