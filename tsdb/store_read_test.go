package tsdb

import (
	"context"
	"fmt"
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
