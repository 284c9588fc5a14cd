package tsdb

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestQueryAcrossCheckpointRelease: a querier opened before a checkpoint
// reads a series after the checkpoint wrote its closed chunks to the
// store and dropped them from the head. The querier's own store snapshot
// predates the write, so it must read them from a newer one: otherwise
// the chunks are in neither place and their samples are missing.
func TestQueryAcrossCheckpointRelease(t *testing.T) {
	db := openTestDB(t, t.TempDir(), cacheTestOptions(0)) // chunks of 4 samples
	defer db.Close()
	ls := labels.FromStrings("__name__", "m")
	for i := range int64(10) {
		if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	q, err := db.Querier(0, 59_999)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.SelectUnsorted(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if !set.Next() {
		t.Fatal("no series")
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	s := db.head.series.getByRef(set.At().(*headSeries).s.ref)
	s.mu.Lock()
	closed := len(s.closedChunks())
	s.mu.Unlock()
	if closed != 0 {
		t.Fatalf("the checkpoint left %d closed chunks in the head: the test needs them released", closed)
	}
	want := int64(10)
	for round := range 3 {
		it := set.At().Iterator(nil)
		n := int64(0)
		for it.Next() {
			if ts, _ := it.At(); ts != n*1000 {
				t.Fatalf("round %d: sample %d at %d", round, n, ts)
			}
			n++
		}
		if it.Err() != nil || n != want {
			t.Fatalf("round %d: read %d of %d samples (err %v)", round, n, want, it.Err())
		}
		// More samples and another checkpoint: the querier moves on to a
		// newer snapshot again, retiring the last one.
		for i := want; i < want+8; i++ {
			if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
				t.Fatal(err)
			}
		}
		want += 8
		if err := db.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	hq := q.(*headQuerier)
	if !hq.store.retired || len(hq.older) < 1 || hq.newer == nil || hq.newer.retired {
		t.Fatalf("snapshots: own retired %v, %d older, newer %v", hq.store.retired, len(hq.older), hq.newer)
	}
}

// TestStoreReaderRetire: a retired reader closes its idle iterators at
// once and the others as they are returned, and still serves reads.
func TestStoreReaderRetire(t *testing.T) {
	db, ref := checkpointedSeries(t, cacheTestOptions(0), 10)
	defer db.Close()
	r := db.store.reader()
	a, b := r.get(), r.get()
	r.put(a)
	r.retire()
	if len(r.free) != 0 || len(r.all) != 1 {
		t.Fatalf("after retire: %d free, %d open", len(r.free), len(r.all))
	}
	r.put(b)
	if len(r.all) != 0 {
		t.Fatalf("%d iterators open after the last was returned", len(r.all))
	}
	chunks, err := r.chunks(nil, ref, db.head.series.refs.chain(ref), 0, 59_999)
	if err != nil || len(chunks) == 0 || len(r.all) != 0 {
		t.Fatalf("read from a retired reader: %d chunks, err %v, %d iterators left open", len(chunks), err, len(r.all))
	}
	r.close()
}
