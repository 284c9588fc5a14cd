package tsdb

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestIndexedRecordDoesNotHideWALSamples: a series record written by the
// index writer while the series' samples are only in the head and the WAL
// must not claim them for the store. Recovery takes a record's maxT for
// the newest sample the store holds, and WAL replay took those samples
// for duplicates of it: after a crash before the next checkpoint they
// were gone (TestDBEvictReviveRace found it, for revived series).
func TestIndexedRecordDoesNotHideWALSamples(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	db := openTestDB(t, dir, o)
	if err := dbAppend(t, db, labels.FromStrings("__name__", "before"), 500, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil { // a snapshot, as a running node has
		t.Fatal(err)
	}
	a := labels.FromStrings("__name__", "a")
	for _, ts := range []int64{1000, 2000} {
		if err := dbAppend(t, db, a, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	var w indexWriter
	if err := w.write(db, db.head.created.take()); err != nil {
		t.Fatal(err)
	}
	if !db.head.series.getByRef(2).indexPersisted {
		t.Fatal("the index writer did not write the record")
	}
	if err := dbAppend(t, db, a, 3000, 3000); err != nil {
		t.Fatal(err)
	}
	crash(t, db)
	db = openTestDB(t, dir, o)
	defer db.Close()
	got := dbSelect(t, db, 0, 10000, matchAll)[a.String()]
	checkSeries(t, got, 1000, 1000, 3)
}

// TestCreatedQueueSwap: swap hands back what was queued and queues the
// next series in the spare's memory, cleared of the series it held.
func TestCreatedQueueSwap(t *testing.T) {
	var q createdQueue
	q.enable()
	a, b, c := newMemSeries(1, seriesSyms{}), newMemSeries(2, seriesSyms{}), newMemSeries(3, seriesSyms{})
	q.add(a)
	q.add(b)
	spare := make([]*memSeries, 2, 8)
	spare[0], spare[1] = c, c
	if got := q.swap(spare); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("swap returned %v", got)
	}
	if spare[0] != nil || spare[1] != nil {
		t.Fatal("the spare still holds the series it held")
	}
	q.add(c)
	if got := q.take(); len(got) != 1 || got[0] != c || &got[:1][0] != &spare[:1][0] {
		t.Fatalf("the next series were not queued in the spare's memory: %v", got)
	}
}
