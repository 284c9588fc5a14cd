package tsdb

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// commitOne appends one sample in its own commit and returns the
// commit's error (safe to call from any goroutine).
func commitOne(db *DB, lset labels.Labels, ts int64, v float64) error {
	app := db.Appender()
	if err := app.Append(lset, ts, v); err != nil {
		app.Rollback()
		return err
	}
	return app.Commit()
}

// TestCheckpointFsyncDoesNotBlockCommits blocks the checkpoint inside its
// WAL fsync and commits meanwhile: the commit must not wait for it.
// (Before the fix the checkpoint held the commit lock across the fsync,
// and the commit waited until the guard below gave up.) In interval mode
// an acknowledgement waits for the fsync round, which includes the old
// segment, by design: BenchmarkCommitDuringCheckpoint measures that mode.
func TestCheckpointFsyncDoesNotBlockCommits(t *testing.T) {
	for _, mode := range []WALSync{WALSyncNone} {
		t.Run("sync="+string(mode), func(t *testing.T) {
			fs := &FaultFS{}
			o := testDBOptions()
			o.WALFS, o.WALSync, o.WALSyncInterval = fs, mode, time.Millisecond
			db := openTestDB(t, t.TempDir(), o)
			defer db.Close()
			a := labels.FromStrings("__name__", "a")
			if err := commitOne(db, a, 1, 1); err != nil {
				t.Fatal(err)
			}
			blocked, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			cpDone := make(chan error, 1)
			// Only the checkpoint's fsync blocks; in interval mode the
			// background fsyncs that acknowledge commits go on.
			fs.BeforeSync(func(name string) error {
				if name == walSegmentBase(1) {
					once.Do(func() { close(blocked); <-release })
				}
				return nil
			})
			go func() { cpDone <- db.Checkpoint() }()
			<-blocked // the checkpoint is inside the fsync of segment 1
			committed := make(chan error, 1)
			go func() { committed <- commitOne(db, a, 2, 2) }()
			// A deadlock guard, not a latency bound: the commit needs no
			// disk I/O that the blocked fsync holds up.
			select {
			case err := <-committed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				close(release)
				t.Fatal("a commit waited for the checkpoint's WAL fsync")
			}
			close(release)
			if err := <-cpDone; err != nil {
				t.Fatal(err)
			}
			checkSeries(t, dbSelect(t, db, 0, 10, matchAll)[a.String()], 1, 1, 2)
		})
	}
}

func walSegmentBase(i int) string { return filepath.Base(walSegmentName("", i)) }

// syncedAfter reports whether every op starting with prefix is followed
// by the op want.
func syncedAfter(ops []string, prefix, want string) error {
	for i, op := range ops {
		if strings.HasPrefix(op, prefix) && !slices.Contains(ops[i+1:], want) {
			return fmt.Errorf("%q (op %d) is not followed by %q in %q", op, i, want, ops)
		}
	}
	return nil
}

// TestWALDirectoryEntriesAreSynced: a segment created, a segment removed
// and the snapshot renamed into place are followed by an fsync of their
// directory, and in interval mode a write is acknowledged only once the
// directory entry of its segment is durable. (Before the fix no directory
// was synced but the snapshot's, and that only in interval mode.)
func TestWALDirectoryEntriesAreSynced(t *testing.T) {
	for _, mode := range []WALSync{WALSyncNone, WALSyncInterval} {
		t.Run("sync="+string(mode), func(t *testing.T) {
			fs := &FaultFS{}
			dir := t.TempDir()
			o := testDBOptions()
			o.WALFS, o.WALSync, o.WALSyncInterval = fs, mode, time.Millisecond
			db := openTestDB(t, dir, o)
			defer db.Close()
			a := labels.FromStrings("__name__", "a")
			if err := commitOne(db, a, 1, 1); err != nil {
				t.Fatal(err)
			}
			if mode == WALSyncInterval {
				if err := syncedAfter(fs.Ops(), "create ", "syncdir wal"); err != nil {
					t.Fatalf("acknowledged before its segment's directory entry was synced: %v", err)
				}
			}
			n := len(fs.Ops())
			// The second checkpoint removes the segments below the
			// first one's (the WAL is kept from the previous snapshot on).
			for ts := int64(2); ts <= 3; ts++ {
				if err := db.Checkpoint(); err != nil {
					t.Fatal(err)
				}
				if err := commitOne(db, a, ts, float64(ts)); err != nil {
					t.Fatal(err)
				}
			}
			ops := fs.Ops()
			for _, prefix := range []string{"create ", "remove "} {
				if !slices.ContainsFunc(ops[n:], func(op string) bool { return strings.HasPrefix(op, prefix) }) {
					t.Fatalf("checkpoint did no %q: %q", prefix, ops[n:])
				}
				if err := syncedAfter(ops, prefix, "syncdir wal"); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Contains(ops[n:], "syncdir "+filepath.Base(dir)) {
				t.Fatalf("the snapshot's rename was not followed by a sync of %s: %q", dir, ops[n:])
			}
		})
	}
}

// TestWALFailureRefusesWritesUntilItClears injects a full disk or a
// failing fsync into the WAL: writes are refused with ErrWALFailed and
// DB.Err names the cause until the fault clears and a checkpoint moves
// the head to a fresh segment; nothing acknowledged before is lost.
// (Before the fix the error stuck until restart and nothing reported it.)
func TestWALFailureRefusesWritesUntilItClears(t *testing.T) {
	cases := []struct {
		name    string
		mode    WALSync
		inject  func(*FaultFS, error)
		cause   error
		trigger string // "commit" or "checkpoint": what meets the fault first
		auto    bool   // recovery by the DB's own retry, not an explicit checkpoint
	}{
		{"write ENOSPC", WALSyncNone, (*FaultFS).FailWrites, syscall.ENOSPC, "commit", false},
		{"write ENOSPC interval", WALSyncInterval, (*FaultFS).FailWrites, syscall.ENOSPC, "commit", true},
		{"fsync EIO interval", WALSyncInterval, (*FaultFS).FailSyncs, syscall.EIO, "commit", false},
		{"fsync EIO at checkpoint", WALSyncNone, (*FaultFS).FailSyncs, syscall.EIO, "checkpoint", true},
		{"segment create fails at checkpoint", WALSyncNone, (*FaultFS).FailCreates, syscall.EDQUOT, "checkpoint", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := &FaultFS{}
			dir := t.TempDir()
			o := testDBOptions()
			o.WALFS, o.WALSync, o.WALSyncInterval = fs, tc.mode, time.Millisecond
			o.WALRecoveryInterval = time.Hour
			if tc.auto {
				o.WALRecoveryInterval = 5 * time.Millisecond
			}
			db := openTestDB(t, dir, o)
			a := labels.FromStrings("__name__", "a")
			var acked, tried []int64
			write := func(ts int64) error {
				tried = append(tried, ts)
				err := commitOne(db, a, ts, float64(ts))
				if err == nil {
					acked = append(acked, ts)
				}
				return err
			}
			for ts := int64(1); ts <= 10; ts++ {
				if err := write(ts); err != nil {
					t.Fatal(err)
				}
			}
			if db.Err() != nil {
				t.Fatalf("healthy DB reports %v", db.Err())
			}
			tc.inject(fs, tc.cause)
			switch tc.trigger {
			case "commit":
				if err := write(11); !errors.Is(err, ErrWALFailed) || !errors.Is(err, tc.cause) {
					t.Fatalf("commit with a failing WAL: %v", err)
				}
			case "checkpoint":
				if err := db.Checkpoint(); err == nil {
					t.Fatal("checkpoint succeeded with a failing WAL")
				}
			}
			if err := db.Err(); !errors.Is(err, ErrWALFailed) || !errors.Is(err, tc.cause) {
				t.Fatalf("Err() = %v, want ErrWALFailed naming %v", err, tc.cause)
			}
			if err := write(12); !errors.Is(err, ErrWALFailed) {
				t.Fatalf("commit while the WAL is failed: %v", err)
			}
			if !tc.auto {
				if err := db.Checkpoint(); err == nil || db.Err() == nil {
					t.Fatalf("recovered while the fault persists: checkpoint %v, Err %v", err, db.Err())
				}
			}
			tc.inject(fs, nil)
			if tc.auto {
				for deadline := time.Now().Add(30 * time.Second); db.Err() != nil; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("still failed after the fault cleared: %v", db.Err())
					}
				}
			} else if err := db.Checkpoint(); err != nil {
				t.Fatalf("checkpoint after the fault cleared: %v", err)
			}
			if err := db.Err(); err != nil {
				t.Fatalf("Err() after recovery: %v", err)
			}
			for ts := int64(13); ts <= 15; ts++ {
				if err := write(ts); err != nil {
					t.Fatalf("commit after recovery: %v", err)
				}
			}
			crash(t, db)
			o.WALFS = nil
			db = openTestDB(t, dir, o)
			defer db.Close()
			var got []int64
			for _, s := range dbSelect(t, db, 0, 100, matchAll)[a.String()] {
				got = append(got, s.t)
			}
			for _, ts := range acked {
				if !slices.Contains(got, ts) {
					t.Fatalf("acknowledged sample %d lost: recovered %v", ts, got)
				}
			}
			for _, ts := range got {
				if !slices.Contains(tried, ts) {
					t.Fatalf("recovered sample %d never written", ts)
				}
			}
		})
	}
}

// TestCommitTooLargeForTheWAL: a commit whose record exceeds the WAL's
// limit is refused with ErrCommitTooLarge (the API's 413), stores
// nothing, and leaves the WAL healthy. (Before, a plain error: a 500 that
// senders retry forever.)
func TestCommitTooLargeForTheWAL(t *testing.T) {
	db := openTestDB(t, t.TempDir(), testDBOptions())
	defer db.Close()
	big := strings.Repeat("x", 1<<20)
	app := db.Appender()
	for i := range walMaxRecord>>20 + 1 { // new series: their labels go in the record
		if err := app.Append(labels.FromStrings("__name__", "a", "big", fmt.Sprint(i, big)), 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); !errors.Is(err, ErrCommitTooLarge) || errors.Is(err, ErrWALFailed) {
		t.Fatalf("oversized commit: %v", err)
	}
	if err := db.Err(); err != nil {
		t.Fatalf("WAL failed by an oversized commit: %v", err)
	}
	if got := dbSelect(t, db, 0, 1<<40, matchAll); len(got) != 0 {
		t.Fatalf("an oversized commit stored %d series", len(got))
	}
	if err := commitOne(db, labels.FromStrings("__name__", "a"), 2, 1); err != nil {
		t.Fatal(err)
	}
}
