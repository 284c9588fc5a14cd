package tsdb

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestIteratorReuseKeepsEachSeries: an iterator passed back for reuse
// lends its buffers to the next read (the open chunk's copy, chunks read
// past the cache), and every series read through it still yields exactly
// its own samples, from the store and the head, with the cache serving,
// bypassed by a bulk selection, or absent.
func TestIteratorReuseKeepsEachSeries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int64
	}{{"cached", 64 << 20}, {"bulk", 4 << 10}, {"no cache", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestDB(t, t.TempDir(), cacheTestOptions(tc.cache))
			defer db.Close()
			const series, n = 40, 150 // 2.5 minutes at 1 s: three 1-minute buckets
			value := func(i int, ts int64) float64 { return float64(i*1_000_000) + float64(ts) }
			appendRange := func(from, to int64) {
				for ts := from; ts < to; ts++ {
					for i := range series {
						ls := labels.FromStrings("__name__", "m", "i", fmt.Sprint(i))
						if err := dbAppend(t, db, ls, ts*1000, value(i, ts)); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			appendRange(0, 120)
			if err := db.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			appendRange(120, n) // in the head only, the newest in the open chunk
			q, err := db.Querier(0, 200_000)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			if bulk := q.(*headQuerier).bulk(series); bulk != (tc.name == "bulk") {
				t.Fatalf("bulk read %v", bulk)
			}
			for round := range 2 { // the second round reads through grown buffers
				set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
				var it Iterator
				seen := 0
				for set.Next() {
					s := set.At()
					var i int
					fmt.Sscan(s.Labels().Get("i"), &i)
					it = s.Iterator(it)
					var ts int64
					for ; it.Next(); ts++ {
						gotT, gotV := it.At()
						if gotT != ts*1000 || gotV != value(i, ts) {
							t.Fatalf("round %d series %d sample %d: (%d, %v), want (%d, %v)", round, i, ts, gotT, gotV, ts*1000, value(i, ts))
						}
					}
					if err := it.Err(); err != nil {
						t.Fatal(err)
					}
					if ts != n {
						t.Fatalf("round %d series %d: %d samples, want %d", round, i, ts, n)
					}
					seen++
				}
				if seen != series {
					t.Fatalf("%d series, want %d", seen, series)
				}
			}
		})
	}
}

// TestIteratorReuseAllocatesNothing: reading a series whose persisted
// chunks the cache holds through a reused iterator allocates nothing:
// the chunk list and the open chunk's copy go to the iterator's buffers.
func TestIteratorReuseAllocatesNothing(t *testing.T) {
	db := openTestDB(t, t.TempDir(), cacheTestOptions(64<<20))
	defer db.Close()
	ls := labels.FromStrings("__name__", "m")
	for ts := range int64(100) {
		if err := dbAppend(t, db, ls, ts*1000, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	for ts := int64(100); ts < 110; ts++ {
		if err := dbAppend(t, db, ls, ts*1000, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	q, err := db.Querier(0, 200_000) // not over all time: that would be a bulk read
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if !set.Next() {
		t.Fatal("no series")
	}
	s := set.At()
	var it Iterator
	read := func() {
		it = s.Iterator(it)
		n := 0
		for it.Next() {
			n++
		}
		if n != 110 {
			t.Fatalf("%d samples, want 110", n)
		}
	}
	read() // fills the cache and grows the buffers
	if allocs := testing.AllocsPerRun(20, read); allocs != 0 {
		t.Fatalf("%v allocations a read through a reused iterator, want 0", allocs)
	}
}
