package tsdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestPersistedReadsConcurrent: workers of one querier read persisted
// chunks at once, each with an iterator of its own (the race detector
// watches), and every series comes back whole.
func TestPersistedReadsConcurrent(t *testing.T) {
	db := openTestDB(t, t.TempDir(), testDBOptions())
	defer db.Close()
	const series, samples, step = 200, 300, 15_000
	for s := range series {
		ls := labels.FromStrings("__name__", "m", "i", fmt.Sprint(s))
		for i := int64(0); i < samples; i++ {
			if err := dbAppend(t, db, ls, i*step, float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	q, err := db.Querier(0, samples*step)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var all []Series
	set := q.SelectUnsorted(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	for set.Next() {
		all = append(all, set.At())
	}
	if len(all) != series {
		t.Fatalf("%d series", len(all))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var it Iterator
			for i := w; i < len(all); i += 4 {
				n := 0
				for it = all[i].Iterator(it); it.Next(); n++ {
				}
				if it.Err() != nil || n != samples {
					t.Errorf("%s: %d samples, err %v", all[i].Labels(), n, it.Err())
				}
			}
		})
	}
	wg.Wait()
	if r := q.(*headQuerier).store; len(r.all) < 1 || len(r.free) != len(r.all) {
		t.Fatalf("iterators: %d opened, %d free after the reads", len(r.all), len(r.free))
	}
}

// TestPersistedReadsSkipSeeks: a reader's iterator, reused from call to
// call and not sought when it already stands on a series' first chunk,
// reads what a fresh iterator reads, whatever the order of the calls,
// with series that have no chunks in a bucket and ranges that end inside
// a series' chunks.
func TestPersistedReadsSkipSeeks(t *testing.T) {
	db := openTestDB(t, t.TempDir(), cacheTestOptions(0))
	defer db.Close()
	const series = 30
	for s := range series {
		ls := labels.FromStrings("__name__", "m", "i", fmt.Sprint(s))
		for i := int64(0); i < 180; i++ {
			// Every third series has nothing in bucket 1 (60 s to 120 s).
			if s%3 == 0 && i >= 60 && i < 120 {
				continue
			}
			if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	refs := cachedSeriesRefs(t, db)
	slices.Sort(refs)
	refs = append(refs, refs[len(refs)-1]+1, refs[len(refs)-1]+1000) // no such series
	reversed := slices.Clone(refs)
	slices.Reverse(reversed)
	rnd := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(refs)
	rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	ranges := [][2]int64{{0, 179_999}, {60_000, 119_999}, {0, 10_000}, {65_000, 70_000}, {100_000, 130_000}}
	for name, order := range map[string][]SeriesRef{"ascending": refs, "descending": reversed, "shuffled": shuffled} {
		q, err := db.Querier(minInt64, maxInt64)
		if err != nil {
			t.Fatal(err)
		}
		r := q.(*headQuerier).store
		for _, ref := range order {
			for _, rg := range ranges {
				chain := db.head.series.refs.chain(ref) // once: both reads see the same chain
				got, err := r.chunks(nil, ref, chain, rg[0], rg[1])
				if err != nil {
					t.Fatal(err)
				}
				fresh := uncached(r)
				want, err := fresh.chunks(nil, ref, chain, rg[0], rg[1])
				closeUncached(fresh)
				if err != nil {
					t.Fatal(err)
				}
				if !sameChunks(got, want) {
					t.Fatalf("%s, series %d, %v: got %s, a fresh iterator reads %s", name, ref, rg, fmtChunks(got), fmtChunks(want))
				}
			}
		}
		if len(r.all) != 1 {
			t.Fatalf("%d iterators", len(r.all))
		}
		q.Close()
	}
}
