package tsdb

import (
	"math"
	"os"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// journalEncodings counts the integer and XOR chunks of the journal's
// records, by series.
func journalEncodings(t *testing.T, db *DB) (ints, xors map[SeriesRef]int) {
	t.Helper()
	if err := db.journal.flush(); err != nil {
		t.Fatal(err)
	}
	segs, err := journalSegments(db.journal.dir)
	if err != nil {
		t.Fatal(err)
	}
	ints, xors = map[SeriesRef]int{}, map[SeriesRef]int{}
	for _, seg := range segs {
		f, err := os.Open(db.journal.segmentPath(seg))
		if err != nil {
			t.Fatal(err)
		}
		_, err = scanJournalSegment(f, seg, func(_ journalPos, rec journalRecord) error {
			if isIntChunk(rec.chunk.data) {
				ints[rec.ref]++
			} else {
				xors[rec.ref]++
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return ints, xors
}

// TestJournalIntChunksExact: a checkpoint writes a closed chunk whose
// values are all integers to the journal as an integer chunk, others as
// XOR, and a query returns exactly the samples written, value bits
// included, from the journal, after a restart, and after compaction
// merges the journal's records.
func TestJournalIntChunksExact(t *testing.T) {
	const sec = 1000
	opts := compactTestOptions()
	opts.Head.ChunkSamples = 30 // long enough for integer chunks to win
	dir := t.TempDir()
	db := openTestDB(t, dir, opts)
	defer func() { db.Close() }()
	want := appendExactSeries(t, db, 40)
	ints, xors := journalEncodings(t, db)
	encodings := func(name string) (int, int) {
		ref := refOf(t, db, labels.FromStrings("__name__", name))
		return ints[ref], xors[ref]
	}
	// A chunk of an integer series stays XOR only where it is too short
	// to gain (a bucket's last few samples).
	for _, name := range []string{"counter", "bucket"} {
		if i, x := encodings(name); i == 0 || i < 2*x {
			t.Errorf("journal holds %d integer and %d XOR chunks of %s, want mostly integer", i, x, name)
		}
	}
	if i, x := encodings("float"); i != 0 || x == 0 {
		t.Errorf("journal holds %d integer and %d XOR chunks of float, want XOR only", i, x)
	}
	// The chunks holding a stale marker, -0 or ±Inf stay XOR.
	if i, x := encodings("special"); i == 0 || x == 0 {
		t.Errorf("journal holds %d integer and %d XOR chunks of special, want both", i, x)
	}
	checkExactSeries(t, db, "from the journal", want, 299*sec)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir, opts)
	checkExactSeries(t, db, "after a restart", want, 299*sec)
	compactAll(t, db)
	checkExactSeries(t, db, "compacted", want, 299*sec)
}

// TestIntChunkerKeepsWhatItCannotRewrite: the checkpoint's rewrite
// returns a chunk unchanged unless its integer form holds exactly its
// samples in fewer bytes.
func TestIntChunkerKeepsWhatItCannotRewrite(t *testing.T) {
	counter := encodeSamples(regular(120, func(i int) float64 { return float64(i * 7) }))
	var ic intChunker
	got := ic.smaller(counter)
	if !isIntChunk(got.data) || len(got.data) >= len(counter.data) || got.minT != counter.minT || got.maxT != counter.maxT {
		t.Fatalf("counter chunk of %d bytes rewritten as %d bytes (integer %v), range [%d, %d]",
			len(counter.data), len(got.data), isIntChunk(got.data), got.minT, got.maxT)
	}
	sameBits(t, "rewritten counter", readIntChunk(t, got.data), appendChunkSamples(nil, counter, minInt64, maxInt64))

	cases := map[string]memChunk{
		"fractions": encodeSamples(regular(120, func(i int) float64 { return float64(i) / 3 })),
		"stale":     encodeSamples(regular(120, func(i int) float64 { return []float64{1, math.NaN()}[i%2] })),
		"empty":     {data: []byte{0, 0}},
		"integer":   got,
	}
	truncated := counter
	truncated.data = counter.data[:len(counter.data)/2]
	cases["truncated"] = truncated
	wrongMaxT := counter
	wrongMaxT.maxT++
	cases["declared maxT past its last sample"] = wrongMaxT
	for name, c := range cases {
		c.data = append([]byte(nil), c.data...)
		if out := ic.smaller(c); &out.data[0] != &c.data[0] || out.minT != c.minT || out.maxT != c.maxT {
			t.Errorf("%s: chunk rewritten (%d bytes to %d)", name, len(c.data), len(out.data))
		}
	}
}
