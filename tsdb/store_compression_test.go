package tsdb

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestStoreCompression: every compression writes chunks that read back
// whole, and a store reopened with another compression still reads the
// tables written before (badger's manifest records each table's own).
func TestStoreCompression(t *testing.T) {
	bad := cacheTestOptions(0)
	bad.StoreCompression = "lz4"
	if err := bad.Validate(); err == nil {
		t.Fatal("store compression lz4 accepted")
	}
	names := []string{"none", "snappy", "zstd"}
	for _, first := range names {
		for _, second := range names {
			t.Run(first+"-then-"+second, func(t *testing.T) {
				dir := t.TempDir()
				ls := labels.FromStrings("__name__", "m")
				write := func(compression string, from int64) {
					o := cacheTestOptions(0)
					o.StoreCompression = compression
					o.StalenessPeriod = time.Minute // buckets complete within the 300 s written
					db := openTestDB(t, dir, o)
					for i := from; i < from+300; i++ {
						if err := dbAppend(t, db, ls, i*1000, float64(i)); err != nil {
							t.Fatal(err)
						}
					}
					// Badger holds compacted buckets: the journal the rest.
					if err := db.Checkpoint(); err != nil {
						t.Fatal(err)
					}
					if err := db.Compact(); err != nil {
						t.Fatal(err)
					}
					got := dbSelect(t, db, minInt64, maxInt64)[ls.String()]
					if len(got) != int(from)+300 {
						t.Fatalf("after writing with %s: %d samples, want %d", compression, len(got), from+300)
					}
					for i, s := range got {
						if s.t != int64(i)*1000 || s.v != float64(i) {
							t.Fatalf("sample %d is %v", i, s)
						}
					}
					if err := db.Close(); err != nil {
						t.Fatal(err)
					}
				}
				write(first, 0)
				write(second, 300)
				if tableBytesIn(t, filepath.Join(dir, "badger")) == 0 {
					t.Fatalf("no tables written with %s and %s", first, second)
				}
			})
		}
	}
}
