package tsdb

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// podSeries is one series of a churning fleet: a pod label unique to it.
func podSeries(cluster string, i int) labels.Labels {
	return labels.FromStrings("__name__", "etcd_server_has_leader", "cluster", cluster, "pod", fmt.Sprintf("%s-%d", cluster, i))
}

// writePods appends one sample per step for n pods of cluster in [from, to)
// and returns the pods' refs.
func writePods(t testing.TB, db *DB, cluster string, n int, from, to int64) []SeriesRef {
	t.Helper()
	refs := make([]SeriesRef, n)
	for ts := from; ts < to; ts += 15000 {
		app := db.Appender()
		for i := range n {
			ref, err := app.AppendSeries(podSeries(cluster, i), ts, float64(ts))
			if err != nil {
				t.Fatal(err)
			}
			refs[i] = ref
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return refs
}

func checkpoint(t testing.TB, db *DB) {
	t.Helper()
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
}

func countKeys(t testing.TB, db *DB, prefix byte) int {
	t.Helper()
	n := 0
	if err := db.store.scan(prefix, func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func labelValues(t testing.TB, db *DB, mint, maxt int64, name string, ms ...*labels.Matcher) []string {
	t.Helper()
	q, err := db.Querier(mint, maxt)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	v, err := q.LabelValues(context.Background(), name, ms...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDBEvictsInactiveSeries: series without samples for the staleness
// period leave memory entirely (struct, postings, symbols) at the second
// checkpoint; their data stays queryable from the store by any matcher,
// before and after a restart; a sample brings one back under its old ref.
func TestDBEvictsInactiveSeries(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	db := openTestDB(t, dir, o)
	defer func() { db.Close() }()
	const minute = 60000
	oldRefs := writePods(t, db, "old", 50, 0, 30*minute)
	writePods(t, db, "new", 50, 30*minute, 60*minute) // the old cluster is gone
	symbolsBoth, bytesBoth := db.head.symbols.len(), db.head.Bytes()

	checkpoint(t, db) // the old pods leave the head's active set
	if n := db.head.NumIndexedSeries(); n != 100 {
		t.Fatalf("%d indexed series after one checkpoint, want 100", n)
	}
	checkpoint(t, db) // no reader of that epoch is left: they leave memory
	if n := db.head.NumIndexedSeries(); n != 50 {
		t.Fatalf("%d indexed series after eviction, want 50", n)
	}
	if n, want := db.head.symbols.len(), symbolsBoth-51; n != want { // "old" and its 50 pods
		t.Fatalf("%d symbols after eviction, want %d", n, want)
	}
	if b := db.head.Bytes(); b > bytesBoth*2/3 { // the old half, ~40%, is released
		t.Fatalf("head accounts %d bytes after eviction, %d with both clusters", b, bytesBoth)
	}
	if n := countKeys(t, db, prefixEvicted); n != 50 {
		t.Fatalf("%d evicted records, want 50", n)
	}

	checkOld := func(db *DB, n int) {
		t.Helper()
		old := labels.MustNewMatcher(labels.MatchEqual, "cluster", "old")
		got := dbSelect(t, db, 0, 60*minute-1, old) // before the revival's sample
		if len(got) != n {
			t.Fatalf("%d old series readable, want %d", len(got), n)
		}
		for i := range n {
			checkSeries(t, got[podSeries("old", i).String()], 0, 15000, 120)
		}
		for _, c := range []struct {
			ms   []*labels.Matcher
			want int
		}{
			{[]*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "pod", "old-1.*")}, 11},
			{[]*labels.Matcher{old, labels.MustNewMatcher(labels.MatchNotEqual, "pod", "old-3")}, n - 1},
			{[]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "etcd_server_has_leader")}, n + 50},
			{[]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "pod", "old-7"), labels.MustNewMatcher(labels.MatchEqual, "zone", "")}, 1},
		} {
			if got := dbSelect(t, db, 0, 60*minute, c.ms...); len(got) != c.want {
				t.Fatalf("%v selects %d series, want %d", c.ms, len(got), c.want)
			}
		}
		// After the old pods' last sample, none of them is selected.
		for ls, samples := range dbSelect(t, db, 45*minute, 60*minute-1, old) {
			if len(samples) != 0 {
				t.Fatalf("%s has samples after its last sample: %v", ls, samples)
			}
		}
		if v := labelValues(t, db, 0, 60*minute, "cluster"); !slices.Equal(v, []string{"new", "old"}) {
			t.Fatalf("cluster values %v", v)
		}
		if v := labelValues(t, db, 0, 60*minute, "pod", old); len(v) != n {
			t.Fatalf("%d pod values of the old cluster, want %d", len(v), n)
		}
	}
	checkOld(db, 50)

	// A sample for an evicted pod brings it back under its old ref.
	app := db.Appender()
	ref, err := app.AppendSeries(podSeries("old", 0), 60*minute, 60*minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if ref != oldRefs[0] {
		t.Fatalf("revived series has ref %d, had %d", ref, oldRefs[0])
	}
	got := dbSelect(t, db, 0, 61*minute, labels.MustNewMatcher(labels.MatchEqual, "pod", "old-0"))
	if len(got) != 1 {
		t.Fatalf("revived series selected %d times", len(got))
	}
	if s := got[podSeries("old", 0).String()]; len(s) != 121 || s[120] != (sample{60 * minute, 60 * minute}) {
		t.Fatalf("revived series holds %d samples, last %v", len(s), s[len(s)-1])
	} else {
		checkSeries(t, s[:120], 0, 15000, 120)
	}
	checkpoint(t, db) // deletes its evicted keys
	if n := countKeys(t, db, prefixEvicted); n != 49 {
		t.Fatalf("%d evicted records after a revival, want 49", n)
	}

	// A restart loads no evicted series, and still reads them.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir, o)
	if n := db.head.NumIndexedSeries(); n != 51 {
		t.Fatalf("%d series loaded at restart, want 51", n)
	}
	checkOld(db, 50)
	app = db.Appender()
	if ref, err = app.AppendSeries(podSeries("old", 1), 60*minute, 60*minute); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if ref != oldRefs[1] {
		t.Fatalf("series revived after a restart has ref %d, had %d", ref, oldRefs[1])
	}
}

// TestDBEvictionWaitsForReaders: a series that an open appender may still
// commit to stays in memory (it is pinned); one that an open querier
// holds is evicted, but the querier keeps reading its labels and samples,
// and its symbols are freed only once the querier is closed.
func TestDBEvictionWaitsForReaders(t *testing.T) {
	const minute = 60000
	t.Run("reader=appender", func(t *testing.T) {
		db := openTestDB(t, t.TempDir(), testDBOptions())
		defer db.Close()
		writePods(t, db, "old", 5, 0, 10*minute)
		// The appender holds a pod that the next checkpoint finds stale,
		// and commits only after the checkpoints.
		app := db.Appender()
		if err := app.Append(podSeries("old", 0), 10*minute, 1); err != nil {
			t.Fatal(err)
		}
		writePods(t, db, "new", 5, 30*minute, 31*minute)
		for range 3 {
			checkpoint(t, db)
		}
		if n := db.head.NumIndexedSeries(); n != 6 {
			t.Fatalf("%d indexed series with an appender open, want 6 (5 new, the pinned old pod)", n)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
		checkpoint(t, db)
		checkpoint(t, db)
		if n := db.head.NumIndexedSeries(); n != 5 {
			t.Fatalf("%d indexed series after the appender ended, want 5", n)
		}
		got := dbSelect(t, db, 0, 11*minute, labels.MustNewMatcher(labels.MatchEqual, "cluster", "old"))
		if s := got[podSeries("old", 0).String()]; len(got) != 5 || len(s) != 41 || s[40].t != 10*minute {
			t.Fatalf("the late commit's sample is lost: %d series, %d samples of pod 0", len(got), len(s))
		}
	})
	t.Run("reader=querier", func(t *testing.T) {
		db := openTestDB(t, t.TempDir(), testDBOptions())
		defer db.Close()
		writePods(t, db, "old", 5, 0, 10*minute)
		writePods(t, db, "new", 5, 30*minute, 31*minute)
		symbols := db.head.symbols.len()
		checkpoint(t, db) // the old pods' chunks are in the store, they go stale
		// A querier reads the store as of its start: one opened before
		// a checkpoint flushed chunks misses them once they leave memory,
		// eviction or not.
		q, err := db.Querier(0, 10*minute)
		if err != nil {
			t.Fatal(err)
		}
		set := q.SelectUnsorted(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "cluster", "old"))
		var held []Series
		for set.Next() {
			held = append(held, set.At())
		}
		checkpoint(t, db)
		if n := db.head.NumIndexedSeries(); n != 5 {
			t.Fatalf("%d indexed series, want 5: the old pods are evicted", n)
		}
		if n := db.head.symbols.len(); n != symbols {
			t.Fatalf("%d symbols with a querier holding evicted series, want %d", n, symbols)
		}
		var it Iterator
		for _, s := range held {
			if s.Labels().Get("cluster") != "old" || !strings.HasPrefix(s.Labels().Get("pod"), "old-") {
				t.Fatalf("held series reads %s", s.Labels())
			}
			it = s.Iterator(it)
			n := 0
			for it.Next() {
				n++
			}
			if n != 40 {
				t.Fatalf("held series %s reads %d samples, want 40", s.Labels(), n)
			}
		}
		q.Close()
		db.head.collectRemoved()
		if n, want := db.head.symbols.len(), symbols-6; n != want {
			t.Fatalf("%d symbols after the querier closed, want %d", n, want)
		}
	})
}

// TestDBRetentionDropsEvictedSeries: evicted series whose data expired
// leave the store's keys too.
func TestDBRetentionDropsEvictedSeries(t *testing.T) {
	o := testDBOptions()
	o.Head.ChunkRange = time.Hour
	o.Retention = 3 * time.Hour
	db := openTestDB(t, t.TempDir(), o)
	defer db.Close()
	hour := time.Hour.Milliseconds()
	writePods(t, db, "old", 20, 0, hour/2)
	writePods(t, db, "new", 20, hour, 2*hour)
	checkpoint(t, db)
	checkpoint(t, db)
	if n := countKeys(t, db, prefixEvicted); n != 20 {
		t.Fatalf("%d evicted records, want 20", n)
	}
	writePods(t, db, "new", 20, 2*hour, 6*hour)
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []byte{prefixEvicted, prefixEvictedPostings, prefixEvictedHash} {
		if n := countKeys(t, db, p); n != 0 {
			t.Fatalf("%d keys %q left after retention", n, p)
		}
	}
	if got := dbSelect(t, db, 0, 6*hour, labels.MustNewMatcher(labels.MatchEqual, "cluster", "old")); len(got) != 0 {
		t.Fatalf("%d expired series selected", len(got))
	}
	// The pod comes back as a new series.
	if err := dbAppend(t, db, podSeries("old", 0), 6*hour, 1); err != nil {
		t.Fatal(err)
	}
	if got := dbSelect(t, db, 0, 7*hour, labels.MustNewMatcher(labels.MatchEqual, "cluster", "old")); len(got) != 1 {
		t.Fatalf("%d series after a comeback", len(got))
	}
}

// TestDBRevivalDuringEviction: a sample arriving while an eviction is
// taking its series out of memory (after the maps, before the postings)
// revives the series, and the rest of the eviction does not take the
// revived series out again.
func TestDBRevivalDuringEviction(t *testing.T) {
	db := openTestDB(t, t.TempDir(), testDBOptions())
	defer db.Close()
	const minute = 60000
	refs := writePods(t, db, "old", 5, 0, 10*minute)
	writePods(t, db, "new", 5, 30*minute, 31*minute)
	checkpoint(t, db) // the old pods go stale
	done := make(chan error, 1)
	db.head.testHookEvicting = func() {
		db.head.testHookEvicting = nil
		go func() {
			app := db.Appender()
			_, err := app.AppendSeries(podSeries("old", 0), 31*minute, 1)
			if cerr := app.Commit(); err == nil {
				err = cerr
			}
			done <- err
		}()
		// The revival waits for the eviction to end; without that it
		// would finish well within this wait, and the eviction would
		// then take it out of the refs and postings.
		select {
		case err := <-done:
			done <- err
		case <-time.After(200 * time.Millisecond):
		}
	}
	checkpoint(t, db)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if db.head.series.getByRef(refs[0]) == nil {
		t.Fatal("the revived series is not in the ref pages")
	}
	if v := labelValues(t, db, 31*minute, 31*minute, "pod", labels.MustNewMatcher(labels.MatchEqual, "cluster", "old")); !slices.Equal(v, []string{"old-0"}) {
		t.Fatalf("pods of the old cluster at the revival: %v", v)
	}
	got := dbSelect(t, db, 0, 32*minute, labels.MustNewMatcher(labels.MatchEqual, "pod", "old-0"))
	if s := got[podSeries("old", 0).String()]; len(got) != 1 || len(s) != 41 {
		t.Fatalf("revived series reads %d series, %d samples", len(got), len(s))
	}
}
