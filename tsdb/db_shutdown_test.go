package tsdb

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// shutdownTestSeries is two checkpoint batches and a bit.
const shutdownTestSeries = 2*checkpointBatch + 100

// writeShutdownTestSeries commits n samples at 15 s to each of
// shutdownTestSeries series, one commit a timestamp: 130 samples close
// each series' first chunk.
func writeShutdownTestSeries(t *testing.T, db *DB, n int) []labels.Labels {
	t.Helper()
	lsets := make([]labels.Labels, shutdownTestSeries)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "up", "instance", strconv.Itoa(i))
	}
	for j := range n {
		app := db.Appender()
		ts := int64(j) * 15000
		for _, lset := range lsets {
			if err := app.Append(lset, ts, float64(ts)); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return lsets
}

func checkShutdownTestSeries(t *testing.T, db *DB, lsets []labels.Labels, n int) {
	t.Helper()
	got := dbSelect(t, db, math.MinInt64, math.MaxInt64, matchAll)
	if len(got) != len(lsets) {
		t.Fatalf("%d series, want %d", len(got), len(lsets))
	}
	for _, lset := range lsets {
		checkSeries(t, got[lset.String()], 0, 15000, n)
	}
}

func countJournalRecords(t *testing.T, j *chunkJournal) int {
	t.Helper()
	if err := j.flush(); err != nil {
		t.Fatal(err)
	}
	segs, err := journalSegments(j.dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, seg := range segs {
		f, err := os.Open(j.segmentPath(seg))
		if err != nil {
			t.Fatal(err)
		}
		_, err = scanJournalSegment(f, seg, func(journalPos, journalRecord) error { n++; return nil })
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestCheckpointStopsAtShutdownDeadline stops a checkpoint after its first
// batch, as a shutdown past its timeout does: the batch's chunks are in
// badger and gone from the head, the rest are not, and the next start
// reads every sample exactly once (the WAL still holds them all).
func TestCheckpointStopsAtShutdownDeadline(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	var db *DB
	o.afterCheckpointBatch = func() { db.shutdownDeadline.Store(1) } // long past
	db = openTestDB(t, dir, o)
	lsets := writeShutdownTestSeries(t, db, 130)
	err := db.Checkpoint()
	if !errors.Is(err, errCheckpointStopped) {
		t.Fatalf("checkpoint past the shutdown deadline: %v, want %v", err, errCheckpointStopped)
	}
	if n := countJournalRecords(t, db.journal); n == 0 || n >= shutdownTestSeries {
		t.Fatalf("a checkpoint stopped after its first batch wrote %d chunks, want between 1 and %d", n, shutdownTestSeries-1)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a stopped checkpoint left a head snapshot in place: %v", err)
	}
	// The head still answers with every sample: the batch's chunks from
	// badger, the others from memory.
	checkShutdownTestSeries(t, db, lsets, 130)
	crash(t, db)

	o.afterCheckpointBatch = nil
	db = openTestDB(t, dir, o)
	checkShutdownTestSeries(t, db, lsets, 130)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir, o)
	defer db.Close()
	checkShutdownTestSeries(t, db, lsets, 130)
}

// TestCloseBoundsItsCheckpoint closes with a timeout that has passed
// before the last checkpoint's first batch: Close returns without error
// and writes no snapshot, and the next start replays the WAL.
func TestCloseBoundsItsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	o.ShutdownCheckpointTimeout = time.Nanosecond
	db := openTestDB(t, dir, o)
	lsets := writeShutdownTestSeries(t, db, 130)
	if err := db.Close(); err != nil {
		t.Fatalf("close past its checkpoint timeout: %v", err)
	}
	if n := countJournalRecordsIn(t, dir); n != 0 {
		t.Fatalf("a checkpoint stopped before its first batch wrote %d chunks", n)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a stopped checkpoint left a head snapshot in place: %v", err)
	}
	o.ShutdownCheckpointTimeout = 0 // no bound: this close checkpoints
	db = openTestDB(t, dir, o)
	checkShutdownTestSeries(t, db, lsets, 130)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); err != nil {
		t.Fatalf("a close without a bound wrote no head snapshot: %v", err)
	}
	db = openTestDB(t, dir, o)
	defer db.Close()
	checkShutdownTestSeries(t, db, lsets, 130)
}

func countJournalRecordsIn(t *testing.T, dir string) int {
	t.Helper()
	j, err := openChunkJournal(filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	return countJournalRecords(t, j)
}

// TestCheckpointRecoveringWALIgnoresShutdownDeadline: a checkpoint that
// recovers a failed WAL finishes whatever the deadline.
func TestCheckpointRecoveringWALIgnoresShutdownDeadline(t *testing.T) {
	cp := checkpointer{mustFinish: true, db: &DB{}}
	cp.db.shutdownDeadline.Store(1)
	if cp.stopped() {
		t.Fatal("a checkpoint recovering a failed WAL stops at the shutdown deadline")
	}
	cp.mustFinish = false
	if !cp.stopped() {
		t.Fatal("a checkpoint past the shutdown deadline goes on")
	}
}

func TestShutdownCheckpointTimeoutValidate(t *testing.T) {
	o := DefaultOptions()
	o.ShutdownCheckpointTimeout = -time.Second
	if err := o.Validate(); err == nil {
		t.Fatal("a negative shutdown checkpoint timeout validates")
	}
	o.ShutdownCheckpointTimeout = 0 // no bound
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverScansJournalTail: a checkpoint completes (its snapshot names
// every chain and the journal's end); series created after it close a
// chunk each, and the next checkpoint stops after its first batch, which
// wrote their chunks and their series records (records that claim those
// samples, so WAL replay skips them); then the process dies. The next
// start must take the chains of those series from a scan of the journal
// after the snapshot's end, or their samples are lost.
func TestRecoverScansJournalTail(t *testing.T) {
	dir := t.TempDir()
	o := testDBOptions()
	var db *DB
	stopAfterBatch := false
	o.afterCheckpointBatch = func() {
		if stopAfterBatch {
			db.shutdownDeadline.Store(1) // long past
		}
	}
	db = openTestDB(t, dir, o)
	old := make([]labels.Labels, 10) // the first batch holds them and most new ones
	for i := range old {
		old[i] = labels.FromStrings("__name__", "up", "instance", strconv.Itoa(i))
		commitSteps(t, db, old[i], 0, 10, 15000)
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	end := db.journal.end()
	fresh := make([]labels.Labels, 2*checkpointBatch)
	for i := range fresh {
		fresh[i] = labels.FromStrings("__name__", "new", "instance", strconv.Itoa(i))
	}
	for j := range 130 { // a closed chunk each
		app := db.Appender()
		for _, lset := range fresh {
			if err := app.Append(lset, int64(j)*15000, float64(int64(j)*15000)); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// An out-of-order sample each makes the checkpoint write the series'
	// records again, claiming their journaled samples (collectLocked):
	// the index loop may have written them already, claiming none.
	app := db.Appender()
	for _, lset := range fresh {
		if err := app.Append(lset, 128*15000+1, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	stopAfterBatch = true
	if err := db.Checkpoint(); !errors.Is(err, errCheckpointStopped) {
		t.Fatalf("second checkpoint: %v, want it stopped", err)
	}
	if db.journal.end() == end {
		t.Fatal("the stopped checkpoint appended nothing")
	}
	crash(t, db)

	o.afterCheckpointBatch = nil
	db = openTestDB(t, dir, o)
	defer db.Close()
	got := dbSelect(t, db, math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "new"))
	if len(got) != len(fresh) {
		t.Fatalf("%d new series, want %d", len(got), len(fresh))
	}
	for _, lset := range fresh {
		if n := len(got[lset.String()]); n != 131 {
			t.Fatalf("%s: %d samples after the restart, want 131", lset, n)
		}
	}
	got = dbSelect(t, db, math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
	for _, lset := range old {
		checkSeries(t, got[lset.String()], 0, 15000, 10)
	}
}

// TestJournalMetrics: the journal's appended bytes and segments are
// exported, and the WAL's fsyncs, of which a checkpoint does one round.
func TestJournalMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	db, err := Open(t.TempDir(), testDBOptions(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for ts := int64(0); ts < 300*15000; ts += 15000 { // two closed chunks
		if err := dbAppend(t, db, labels.FromStrings("__name__", "up"), ts, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if m := f.GetMetric(); len(m) == 1 {
			if c := m[0].GetCounter(); c != nil {
				got[f.GetName()] = c.GetValue()
			} else if g := m[0].GetGauge(); g != nil {
				got[f.GetName()] = g.GetValue()
			} else if h := m[0].GetHistogram(); h != nil {
				got[f.GetName()] = float64(h.GetSampleCount())
			}
		}
	}
	if got["etcdgate_tsdb_journal_appended_bytes_total"] < 100 || got["etcdgate_tsdb_journal_segments"] != 1 {
		t.Fatalf("journal metrics after a checkpoint of two closed chunks: appended %v bytes, %v segments",
			got["etcdgate_tsdb_journal_appended_bytes_total"], got["etcdgate_tsdb_journal_segments"])
	}
	if got["etcdgate_tsdb_wal_fsync_duration_seconds"] < 1 {
		t.Fatalf("%v WAL fsync rounds observed after a checkpoint, want at least 1", got["etcdgate_tsdb_wal_fsync_duration_seconds"])
	}
}
