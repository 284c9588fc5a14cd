package tsdb

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestRetentionRacingCommitKeepsSamples interleaves, deterministically,
// an append to a series that left the head, a checkpoint and a retention
// pass that would expire the series, and the append's commit: the
// acknowledged sample must be readable, before and after a crash.
// (Before the fix retention removed the series between Append and
// Commit, and the commit acknowledged the sample into a series no query
// or replay could find.)
func TestRetentionRacingCommitKeepsSamples(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	o.Head.ChunkRange = time.Hour
	o.Retention = 3 * time.Hour
	o.StalenessPeriod = 30 * time.Minute
	db := openTestDB(t, dir, o)
	hour := time.Hour.Milliseconds()
	old := labels.FromStrings("__name__", "old")
	kept := labels.FromStrings("__name__", "kept")
	for ts := int64(0); ts < hour; ts += 15000 {
		if err := commitOne(db, old, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	for ts := int64(0); ts <= 8*hour; ts += 60000 {
		if err := commitOne(db, kept, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil { // old leaves the head
		t.Fatal(err)
	}
	app := db.Appender()
	if err := app.Append(old, 8*hour, 42); err != nil { // old comes back
		t.Fatal(err)
	}
	// Before the commit: a checkpoint finds old still stale, and
	// retention finds its data expired.
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	check := func(db *DB, when string) {
		t.Helper()
		got := dbSelect(t, db, 0, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "old"))[old.String()]
		if len(got) != 1 || got[0] != (sample{8 * hour, 42}) {
			t.Fatalf("%s: acknowledged sample of old not found: %v", when, got)
		}
	}
	check(db, "after commit")
	// The series must also be expirable again once the pin is gone and
	// its data ages out, and a new append must still find it now.
	if err := commitOne(db, old, 8*hour+15000, 43); err != nil {
		t.Fatal(err)
	}
	crash(t, db)
	db = openTestDB(t, dir, o)
	defer db.Close()
	check2 := dbSelect(t, db, 0, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "old"))[old.String()]
	if len(check2) != 2 {
		t.Fatalf("after a crash: %v", check2)
	}
}

// TestRetentionIgnoresFarFutureSample: one sample ten years ahead must
// not make retention drop the history, nor the checkpoint flush every
// series as stale: both are measured from the wall clock when the newest
// sample is past it. (Before the fix both were measured from the newest
// sample: every bucket was dropped and every series deactivated.)
func TestRetentionIgnoresFarFutureSample(t *testing.T) {
	o := testDBOptions()
	o.Head.ChunkRange = time.Hour
	o.Retention = 3 * time.Hour
	o.StalenessPeriod = 30 * time.Minute
	db := openTestDB(t, t.TempDir(), o)
	defer db.Close()
	hour := time.Hour.Milliseconds()
	now := time.Now().UnixMilli() / 60000 * 60000
	a := labels.FromStrings("__name__", "a")
	for ts := now - 5*hour; ts <= now; ts += 60000 {
		if err := commitOne(db, a, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil { // closed chunks go to the store
		t.Fatal(err)
	}
	future := labels.FromStrings("__name__", "future")
	if err := commitOne(db, future, now+10*365*24*hour, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := db.head.NumSeries(); n != 2 {
		t.Fatalf("%d active series after the far-future sample, want 2", n)
	}
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	got := dbSelect(t, db, now-2*hour, now, labels.MustNewMatcher(labels.MatchEqual, "__name__", "a"))[a.String()]
	checkSeries(t, got, now-2*hour, 60000, 121)
}

// TestAppendSeriesDuringRemoval appends to a series that retention has
// marked deleted but not yet taken out of the maps (it is deleting the
// records from badger meanwhile): the append must wait the removal out
// and store the sample in the series created anew, not refuse it.
// (Before the fix the second lookup found the same doomed series and the
// sample was refused, as a 400 that senders do not retry.)
func TestAppendSeriesDuringRemoval(t *testing.T) {
	h, err := NewHead(DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := labels.FromStrings("__name__", "a")
	if err := appendOne(t, h, a, 1, 1); err != nil {
		t.Fatal(err)
	}
	s := h.series.getByRef(1)
	s.mu.Lock()
	s.deleted = true // as removeExpiredSeries marks it
	s.mu.Unlock()
	removed := make(chan struct{})
	go func() {
		defer close(removed)
		time.Sleep(20 * time.Millisecond) // let the append meet the doomed series
		h.removeSeries([]*memSeries{s})
	}()
	app := h.Appender()
	ref, err := app.AppendSeries(a, 2, 2)
	if err != nil {
		t.Fatalf("append during the removal: %v", err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	<-removed
	if ref == 1 {
		t.Fatal("sample appended to the removed series")
	}
	got := selectAll(t, h, 0, 10, matchAll)[a.String()]
	if len(got) != 1 || got[0] != (sample{2, 2}) {
		t.Fatalf("after the removal: %v", got)
	}
}
