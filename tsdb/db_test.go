package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

func testDBOptions() Options {
	o := DefaultOptions()
	o.Head.StripeSize = 64
	o.CheckpointInterval = time.Hour // tests checkpoint explicitly
	return o
}

func openTestDB(t testing.TB, dir string, o Options) *DB {
	t.Helper()
	db, err := Open(dir, o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// crash stops db as kill -9 would leave it: no checkpoint. The WAL, the
// series index and badger files are closed, which loses nothing a killed process keeps
// (both write through the page cache).
func crash(t testing.TB, db *DB) {
	t.Helper()
	close(db.stop)
	<-db.done
	<-db.indexDone
	if err := errors.Join(db.wal.close(), db.index.close(), db.journal.close(), db.store.close()); err != nil {
		t.Fatal(err)
	}
}

func dbAppend(t testing.TB, db *DB, lset labels.Labels, ts int64, v float64) error {
	t.Helper()
	return appendOne(t, db, lset, ts, v)
}

func dbSelect(t testing.TB, db *DB, mint, maxt int64, ms ...*labels.Matcher) map[string][]sample {
	t.Helper()
	return selectAll(t, db, mint, maxt, ms...)
}

var matchAll = labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")

// checkSeries asserts the series holds exactly the samples t0, t0+step,
// ... (n of them), value = timestamp, in order and without duplicates.
func checkSeries(t *testing.T, got []sample, t0, step int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d samples, want %d (first %v)", len(got), n, got[:min(len(got), 3)])
	}
	for i, s := range got {
		if want := t0 + int64(i)*step; s.t != want || s.v != float64(want) {
			t.Fatalf("sample %d = %v, want t=%d", i, s, want)
		}
	}
}

func TestDBRecoversFromWALAndCheckpoints(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir, testDBOptions())
	a := labels.FromStrings("__name__", "a", "job", "etcd")
	b := labels.FromStrings("__name__", "b", "job", "etcd")
	for ts := int64(0); ts < 300*15000; ts += 15000 { // several chunks
		if err := dbAppend(t, db, a, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	for ts := int64(300 * 15000); ts < 400*15000; ts += 15000 { // WAL tail after the checkpoint
		if err := dbAppend(t, db, a, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
		if err := dbAppend(t, db, b, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, db)

	db = openTestDB(t, dir, testDBOptions())
	got := dbSelect(t, db, math.MinInt64, math.MaxInt64, matchAll)
	checkSeries(t, got[a.String()], 0, 15000, 400)
	checkSeries(t, got[b.String()], 300*15000, 15000, 100)
	// The head continues where it stopped: the next sample is in order.
	if err := dbAppend(t, db, a, 400*15000, 400*15000); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// After a clean close the WAL holds nothing to replay.
	db = openTestDB(t, dir, testDBOptions())
	defer db.Close()
	checkSeries(t, dbSelect(t, db, math.MinInt64, math.MaxInt64, matchAll)[a.String()], 0, 15000, 401)
}

// TestDBTornWALRecord cuts the last WAL record in half, as a crash during
// a write leaves it: recovery keeps every intact record and goes on.
func TestDBTornWALRecord(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir, testDBOptions())
	a := labels.FromStrings("__name__", "a")
	for ts := int64(1); ts <= 10; ts++ {
		if err := dbAppend(t, db, a, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, db)
	segs, _ := walSegments(filepath.Join(dir, "wal"))
	last := walSegmentName(filepath.Join(dir, "wal"), segs[len(segs)-1])
	info, _ := os.Stat(last)
	if err := os.Truncate(last, info.Size()-5); err != nil { // tear the 10th record
		t.Fatal(err)
	}
	db = openTestDB(t, dir, testDBOptions())
	checkSeries(t, dbSelect(t, db, 0, 100, matchAll)[a.String()], 1, 1, 9)
	if err := dbAppend(t, db, a, 10, 10); err != nil {
		t.Fatal(err)
	}
	crash(t, db)
	db = openTestDB(t, dir, testDBOptions())
	defer db.Close()
	checkSeries(t, dbSelect(t, db, 0, 100, matchAll)[a.String()], 1, 1, 10)
}

func TestDBCorruptWALRecordChecksum(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir, testDBOptions())
	a := labels.FromStrings("__name__", "a")
	for ts := int64(1); ts <= 3; ts++ {
		if err := dbAppend(t, db, a, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, db)
	segs, _ := walSegments(filepath.Join(dir, "wal"))
	last := walSegmentName(filepath.Join(dir, "wal"), segs[len(segs)-1])
	data, _ := os.ReadFile(last)
	data[len(data)-1] ^= 0xff // flip a bit of the last record's payload
	if err := os.WriteFile(last, data, 0o644); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir, testDBOptions())
	defer db.Close()
	checkSeries(t, dbSelect(t, db, 0, 100, matchAll)[a.String()], 1, 1, 2)
}

// TestDBOutOfOrderAcrossPersistedBoundary puts out-of-order samples into
// the time range of chunks already in the store, checkpoints them too,
// and reads everything back merged, before and after a restart.
func TestDBOutOfOrderAcrossPersistedBoundary(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	o.Head.OutOfOrderWindow = time.Hour
	o.StalenessPeriod = 2 * time.Hour
	db := openTestDB(t, dir, o)
	a := labels.FromStrings("__name__", "a")
	const step = 10000
	for ts := int64(0); ts < 400*step; ts += 2 * step { // even steps, in order
		if err := dbAppend(t, db, a, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil { // closed chunks go to the store
		t.Fatal(err)
	}
	if len(db.head.series.getByRef(1).closedChunks()) != 0 {
		t.Fatal("closed chunks still in memory after the checkpoint")
	}
	oldest := int64(400*step) - time.Hour.Milliseconds()
	for ts := oldest + step; ts < 400*step; ts += 2 * step { // odd steps, inside the window
		if err := dbAppend(t, db, a, ts, float64(ts)); err != nil {
			t.Fatalf("ts %d: %v", ts, err)
		}
	}
	check := func(db *DB) {
		got := dbSelect(t, db, oldest, 400*step, matchAll)[a.String()]
		checkSeries(t, got, oldest, step, int(400*step-oldest)/step)
		all := dbSelect(t, db, 0, 400*step, matchAll)[a.String()]
		if len(all) != 200+len(got)/2 {
			t.Fatalf("%d samples in all, want %d", len(all), 200+len(got)/2)
		}
	}
	check(db)
	if err := db.Checkpoint(); err != nil { // out-of-order chunks go to the store
		t.Fatal(err)
	}
	check(db)
	crash(t, db)
	db = openTestDB(t, dir, o)
	defer db.Close()
	check(db)
}

// TestDBSeriesChurnFreesMemory: series that stop receiving samples leave
// the head at a checkpoint, their memory is released, and their data is
// still read from the store.
func TestDBSeriesChurnFreesMemory(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	o.StalenessPeriod = 15 * time.Minute
	db := openTestDB(t, dir, o)
	defer db.Close()
	writeCluster := func(cluster string, from, to int64) {
		for ts := from; ts < to; ts += 15000 {
			app := db.Appender()
			for m := range 50 {
				ls := labels.FromStrings("__name__", "etcd_server_has_leader", "cluster", cluster, "member", fmt.Sprint(m))
				if err := app.Append(ls, ts, float64(ts)); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeCluster("old", 0, 30*60000)
	writeCluster("new", 30*60000, 60*60000) // the old cluster is gone
	bytesBoth := db.head.chunkBytes.Load()
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := db.head.NumSeries(); n != 50 {
		t.Fatalf("%d active series after churn, want 50", n)
	}
	if n := db.head.NumIndexedSeries(); n != 100 {
		t.Fatalf("%d indexed series, want 100", n)
	}
	if b := db.head.chunkBytes.Load(); b > bytesBoth*7/10 { // the old half, ~40% of the bytes, is released
		t.Fatalf("head chunk bytes %d after churn, %d with both clusters", b, bytesBoth)
	}
	got := dbSelect(t, db, 0, 60*60000, labels.MustNewMatcher(labels.MatchEqual, "cluster", "old"))
	if len(got) != 50 {
		t.Fatalf("%d old series readable", len(got))
	}
	for _, s := range got {
		checkSeries(t, s, 0, 15000, 120)
	}
	// A sample for a series that left the head brings it back.
	ls := labels.FromStrings("__name__", "etcd_server_has_leader", "cluster", "old", "member", "0")
	if err := dbAppend(t, db, ls, 60*60000, 60*60000); err != nil {
		t.Fatal(err)
	}
	if n := db.head.NumSeries(); n != 51 {
		t.Fatalf("%d active series after a comeback, want 51", n)
	}
}

func TestDBLimits(t *testing.T) {
	o := testDBOptions()
	o.Head.Limits = HeadLimits{MaxSeries: 10}
	db := openTestDB(t, t.TempDir(), o)
	defer db.Close()
	series := func(i int) labels.Labels { return labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)) }
	for i := range 10 {
		if err := dbAppend(t, db, series(i), 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	err := dbAppend(t, db, series(10), 1000, 1)
	if !errors.Is(err, ErrSeriesLimit) || RejectReason(err) != "series_limit" {
		t.Fatalf("11th series: %v", err)
	}
	if err := dbAppend(t, db, series(3), 2000, 2); err != nil {
		t.Fatalf("existing series refused at the limit: %v", err)
	}
	db.SetLimits(HeadLimits{MaxBytes: db.head.Bytes()})
	if err := dbAppend(t, db, series(11), 1000, 1); !errors.Is(err, ErrHeadBytesLimit) {
		t.Fatalf("series past the byte limit: %v", err)
	}
	if err := dbAppend(t, db, series(4), 2000, 2); err != nil {
		t.Fatalf("existing series refused at the byte limit: %v", err)
	}
	db.SetLimits(HeadLimits{})
	if err := dbAppend(t, db, series(11), 1000, 1); err != nil {
		t.Fatalf("after raising the limits: %v", err)
	}
}

// TestDBRetention drops whole buckets that aged out, shrinks the disk,
// and forgets series that have no data left.
func TestDBRetention(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	o.Head.ChunkRange = time.Hour
	o.Retention = 3 * time.Hour
	o.StalenessPeriod = 30 * time.Minute
	db := openTestDB(t, dir, o)
	defer func() { db.Close() }()
	const step = 15000
	write := func(name string, from, to int64, n int) {
		for ts := from; ts < to; ts += step {
			app := db.Appender()
			for i := range n {
				if err := app.Append(labels.FromStrings("__name__", name, "i", fmt.Sprint(i)), ts, float64(ts)); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	hour := time.Hour.Milliseconds()
	write("old", 0, 2*hour, 300)            // two buckets of a series set that then stops
	write("kept", 0, 8*hour, 20)            // eight buckets of a set that goes on
	if err := db.Checkpoint(); err != nil { // the old set leaves the head
		t.Fatal(err)
	}
	// Closing flushes badger's memtables into tables, which are what
	// retention shrinks; reopening reads the state back.
	reopen := func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openTestDB(t, dir, o)
	}
	reopen()
	before := tableBytes(t, dir)
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	reopen()
	after := tableBytes(t, dir)
	t.Logf("badger tables %d bytes before retention, %d after", before, after)
	if after >= before*3/4 {
		t.Fatalf("disk usage did not go down: %d -> %d", before, after)
	}
	got := dbSelect(t, db, 0, 8*hour, labels.MustNewMatcher(labels.MatchEqual, "__name__", "kept"))
	for _, s := range got {
		if s[0].t < 4*hour {
			t.Fatalf("sample at %d survived retention (newest %d, retention 3h)", s[0].t, db.head.MaxTime())
		}
	}
	if len(dbSelect(t, db, 0, 8*hour, labels.MustNewMatcher(labels.MatchEqual, "__name__", "old"))) != 0 {
		t.Fatal("expired series still selected")
	}
	q, _ := db.Querier(math.MinInt64, math.MaxInt64)
	defer q.Close()
	if names, _ := q.LabelValues(context.Background(), "__name__"); fmt.Sprint(names) != "[kept]" {
		t.Fatalf("metric names after retention: %v", names)
	}
	if db.head.NumIndexedSeries() != 20 {
		t.Fatalf("%d series indexed", db.head.NumIndexedSeries())
	}
}

// TestDBConcurrentCommitsSurviveCrash: concurrent writers share group
// commits; every acknowledged sample is recovered exactly once.
func TestDBConcurrentCommitsSurviveCrash(t *testing.T) {
	for _, mode := range []WALSync{WALSyncNone, WALSyncInterval} {
		t.Run("sync="+string(mode), func(t *testing.T) {
			dir := t.TempDir()
			o := testDBOptions()
			o.WALSync, o.WALSyncInterval = mode, 5*time.Millisecond
			db := openTestDB(t, dir, o)
			const writers, rounds = 4, 100
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range rounds {
						app := db.Appender()
						for s := range 10 {
							ls := labels.FromStrings("__name__", "m", "w", fmt.Sprint(w), "s", fmt.Sprint(s))
							if err := app.Append(ls, int64(r), float64(r)); err != nil {
								t.Error(err)
							}
						}
						if err := app.Commit(); err != nil {
							t.Error(err)
						}
						if r == rounds/2 && w == 0 {
							if err := db.Checkpoint(); err != nil {
								t.Error(err)
							}
						}
					}
				}()
			}
			wg.Wait()
			crash(t, db)
			db = openTestDB(t, dir, o)
			defer db.Close()
			got := dbSelect(t, db, 0, rounds, matchAll)
			if len(got) != writers*10 {
				t.Fatalf("%d series recovered", len(got))
			}
			for ls, s := range got {
				if len(s) != rounds {
					t.Fatalf("%s: %d samples, want %d", ls, len(s), rounds)
				}
			}
		})
	}
}

// tableBytes is the size of badger's tables: its memtable and value-log
// files are preallocated and say nothing about the data.
func tableBytes(t testing.TB, dir string) int64 { return tableBytesIn(t, filepath.Join(dir, "badger")) }

func tableBytesIn(t testing.TB, badgerDir string) int64 {
	files, err := filepath.Glob(filepath.Join(badgerDir, "*.sst"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		if info, err := os.Stat(f); err == nil {
			n += info.Size()
		}
	}
	return n
}

// TestDBIndexesNewSeriesWithoutCheckpoint: series records reach the store
// soon after the series are created, not at the next checkpoint.
func TestDBIndexesNewSeriesWithoutCheckpoint(t *testing.T) {
	db := openTestDB(t, t.TempDir(), testDBOptions())
	defer db.Close()
	app := db.Appender()
	for i := range 100 {
		if err := app.Append(labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n := len(indexedRecords(t, db)); n == 100 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 100 series records in the store", len(indexedRecords(t, db)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
