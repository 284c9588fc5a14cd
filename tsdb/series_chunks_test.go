package tsdb

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// chunkSeriesOf selects the one series named name over [mint, maxt] and
// returns its chunks (ok as Chunks reports) and its samples as Iterator
// reads them.
func chunkSeriesOf(t *testing.T, db *DB, name string, mint, maxt int64) (chunks []Chunk, ok bool, samples []sample) {
	t.Helper()
	q, err := db.Querier(mint, maxt)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	if !set.Next() {
		t.Fatalf("no series %s: %v", name, set.Err())
	}
	s := set.At()
	cs, isChunked := s.(ChunkSeries)
	if !isChunked {
		t.Fatalf("%T is not a ChunkSeries", s)
	}
	if chunks, _, ok, err = cs.Chunks(nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := range chunks { // Data is valid only while q is open
		chunks[i].Data = slices.Clone(chunks[i].Data)
	}
	it := s.Iterator(nil)
	for it.Next() {
		ts, v := it.At()
		samples = append(samples, sample{ts, v})
	}
	return chunks, ok, samples
}

// decodeChunks returns the samples of chunks in [mint, maxt], checking
// that each chunk's range is the one it declares.
func decodeChunks(t *testing.T, chunks []Chunk, mint, maxt int64) []sample {
	t.Helper()
	var out []sample
	for _, c := range chunks {
		var xc chunkenc.XORChunk
		xc.Reset(c.Data)
		it := xc.Iterator(nil)
		first := true
		var last int64
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			if first && ts != c.MinT {
				t.Fatalf("chunk declares MinT %d, starts at %d", c.MinT, ts)
			}
			first, last = false, ts
			if ts >= mint && ts <= maxt {
				out = append(out, sample{ts, v})
			}
		}
		if last != c.MaxT {
			t.Fatalf("chunk declares MaxT %d, ends at %d", c.MaxT, last)
		}
	}
	return out
}

// TestSeriesChunks: a series appended in order hands out chunks that
// hold exactly the samples its iterator reads, in the head and once
// persisted; with an out-of-order sample it declines (ok false).
func TestSeriesChunks(t *testing.T) {
	o := testDBOptions()
	o.Head.OutOfOrderWindow = time.Hour
	o.StalenessPeriod = 2 * time.Hour
	db := openTestDB(t, t.TempDir(), o)
	defer db.Close()
	a := labels.FromStrings("__name__", "a")
	const step = 15000
	for ts := int64(0); ts < 500*step; ts += step {
		if err := dbAppend(t, db, a, ts, float64(ts)/7); err != nil {
			t.Fatal(err)
		}
	}
	check := func(stage string, mint, maxt int64) {
		t.Helper()
		chunks, ok, samples := chunkSeriesOf(t, db, "a", mint, maxt)
		if !ok || len(chunks) < 2 {
			t.Fatalf("%s: ok %v with %d chunks, want several", stage, ok, len(chunks))
		}
		for i := 1; i < len(chunks); i++ {
			if chunks[i].MinT <= chunks[i-1].MaxT {
				t.Fatalf("%s: chunks overlap or are out of order", stage)
			}
		}
		if got := decodeChunks(t, chunks, mint, maxt); !slices.Equal(got, samples) || len(samples) == 0 {
			t.Fatalf("%s: chunks hold %d samples in range, the iterator reads %d", stage, len(got), len(samples))
		}
	}
	check("head", 0, 500*step)
	check("head, part of the range", 100*step+1, 300*step)
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	check("persisted", 0, 500*step)
	if err := dbAppend(t, db, a, 499*step-1, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := chunkSeriesOf(t, db, "a", 0, 500*step); ok {
		t.Fatal("a series with an out-of-order sample handed out chunks")
	}
}

// TestSeriesAppendLabels: a series appends the label pairs its Labels
// holds, in order, whether it was selected sorted (labels built) or not
// (read from the symbols).
func TestSeriesAppendLabels(t *testing.T) {
	db := openTestDB(t, t.TempDir(), testDBOptions())
	defer db.Close()
	for i := range 3 {
		ls := labels.FromStrings("__name__", "m", "cluster", "etcd-ü", "i", strings.Repeat("x", i*200), "z", "")
		if err := dbAppend(t, db, ls, 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	q, err := db.Querier(0, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	enc := func(dst []byte, name, value string) []byte {
		return append(append(append(dst, name...), 0), append([]byte(value), 1)...)
	}
	m := labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")
	for _, set := range []SeriesSet{q.Select(context.Background(), m), q.SelectUnsorted(context.Background(), m)} {
		n := 0
		for set.Next() {
			s := set.At()
			got, pairs := s.(LabelAppender).AppendLabels(nil, enc)
			var want []byte
			s.Labels().Range(func(l labels.Label) { want = enc(want, l.Name, l.Value) })
			if string(got) != string(want) || pairs != s.Labels().Len() {
				t.Fatalf("%s: appended %q (%d pairs)", s.Labels(), got, pairs)
			}
			n++
		}
		if n != 3 {
			t.Fatalf("%d series", n)
		}
	}
}
