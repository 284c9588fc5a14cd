package tsdb

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestRecoverWithoutHeadSnapshot loses the head snapshot (deleted, or
// corrupt) after two checkpoints and a WAL tail: recovery must find every
// series and chunk in badger, and every sample is read back exactly once.
// (Before the fix the series' persisted chunks came only from the
// snapshot's time range, and all but the oldest were hidden; and a series
// record's time range, written while the samples were in open chunks,
// made replay refuse them as out of order.)
// commitSteps commits one sample of lset at each i*step for i in
// [from, to), valued as its timestamp, each in its own commit.
func commitSteps(t *testing.T, db *DB, lset labels.Labels, from, to int, step int64) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := commitOne(db, lset, int64(i)*step, float64(int64(i)*step)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecoverWithoutHeadSnapshot(t *testing.T) {
	for _, tc := range []struct {
		loss        string
		checkpoints int // 1: there is no previous snapshot to fall back to
	}{{"deleted", 2}, {"corrupt", 2}, {"deleted", 1}} {
		loss := tc.loss
		t.Run(fmt.Sprintf("%s/checkpoints=%d", loss, tc.checkpoints), func(t *testing.T) {
			dir := t.TempDir()
			o := testDBOptions()
			db := openTestDB(t, dir, o)
			a := labels.FromStrings("__name__", "a", "job", "etcd")
			b := labels.FromStrings("__name__", "b", "job", "etcd")
			const step = 15000
			write := func(lset labels.Labels, from, to int) { commitSteps(t, db, lset, from, to, step) }
			write(a, 0, 300) // two closed chunks, an open one
			write(b, 0, 10)  // an open chunk only
			if err := db.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			write(a, 300, 400) // closes a third chunk
			write(b, 10, 20)
			if tc.checkpoints == 2 {
				if err := db.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			write(a, 400, 450) // the WAL tail
			write(b, 20, 30)
			crash(t, db)
			path := filepath.Join(dir, snapshotName)
			switch loss {
			case "deleted":
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			case "corrupt":
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				data[len(data)/2] ^= 0xff
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			db = openTestDB(t, dir, o)
			got := dbSelect(t, db, 0, 1<<40, matchAll)
			checkSeries(t, got[a.String()], 0, step, 450)
			checkSeries(t, got[b.String()], 0, step, 30)
			// The head goes on where it stopped, and a clean restart
			// (with a new snapshot) reads the same.
			write(a, 450, 451)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openTestDB(t, dir, o)
			defer db.Close()
			checkSeries(t, dbSelect(t, db, 0, 1<<40, matchAll)[a.String()], 0, step, 451)
		})
	}
}
