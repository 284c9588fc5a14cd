//go:build linux

package tsdb

import (
	"bufio"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// TestTablePagerReleasesTablePages writes tables through badger, which
// leaves their pages resident, and checks that a page-out pass takes them
// out of the process's RSS and that the tables still read back.
func TestTablePagerReleasesTablePages(t *testing.T) {
	requirePageOut(t)
	dir := filepath.Join(t.TempDir(), "badger")
	st, err := openStore(dir, 7_200_000, options.None, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	writeTestTables(t, st.db)
	p := newTablePager(dir, slog.New(slog.DiscardHandler))
	// Badger flushes the memtables in the background: wait until the
	// flushed tables' pages stop growing, and count afterwards only the
	// tables the page-out saw, not one a later flush wrote.
	var before, last int64
	var tables map[string]int64
	for deadline := time.Now().Add(time.Minute); before < 16<<20 || before != last; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("badger's flushed tables hold %d bytes resident after a minute, want at least 16 MiB, settled", before)
		}
		last = before
		tables = residentTables(t, p.dir)
		before = sumValues(tables)
	}
	if err := p.pageOut(); err != nil {
		t.Fatal(err)
	}
	var after int64
	for path, n := range residentTables(t, p.dir) {
		if _, ok := tables[path]; ok {
			after += n
		}
	}
	t.Logf("resident table pages: %d KiB before, %d KiB after", before>>10, after>>10)
	if after > before/10 {
		t.Fatalf("resident table pages after a page-out: %d bytes of %d, want at most a tenth", after, before)
	}
	checkTestTables(t, st.db)
}

// TestDBPagesOutTables checks that an open DB runs the table pager: the
// tables badger writes do not stay resident.
func TestDBPagesOutTables(t *testing.T) {
	requirePageOut(t)
	o := testDBOptions()
	o.tablePagesInterval = 20 * time.Millisecond
	dir := t.TempDir()
	db := openTestDB(t, dir, o)
	defer db.Close()
	writeTestTables(t, db.store.db)
	real, err := filepath.EvalSymlinks(filepath.Join(dir, "badger"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk, resident int64
	for deadline := time.Now().Add(time.Minute); onDisk < 32<<20 || resident > 1<<20; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute badger's tables hold %d bytes, %d of them resident; want 32 MiB, at most 1 MiB resident", onDisk, resident)
		}
		onDisk, resident = tableBytesIn(t, real), residentTableBytes(t, real)
	}
	checkTestTables(t, db.store.db)
}

func requirePageOut(t *testing.T) {
	t.Helper()
	if !pageOutSupported {
		t.Fatal("the kernel refuses MADV_PAGEOUT (Linux 5.4 or later needed): badger's table pages would stay resident")
	}
}

const testTableEntries, testTableValue = 48 << 10, 1 << 10 // 48 MiB: three memtables' worth

func testTableKey(i int) []byte { return binary.BigEndian.AppendUint64([]byte{'t'}, uint64(i)) }

// writeTestTables writes 48 MiB under a prefix nothing else uses.
func writeTestTables(t *testing.T, db *badger.DB) {
	t.Helper()
	wb := db.NewWriteBatch()
	for i := range testTableEntries {
		value := make([]byte, testTableValue) // the batch keeps it until it commits
		binary.BigEndian.PutUint64(value, uint64(i)*0x9e3779b97f4a7c15)
		if err := wb.Set(testTableKey(i), value); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
}

func checkTestTables(t *testing.T, db *badger.DB) {
	t.Helper()
	err := db.View(func(txn *badger.Txn) error {
		for _, i := range []int{0, testTableEntries / 2, testTableEntries - 1} {
			item, err := txn.Get(testTableKey(i))
			if err != nil {
				return err
			}
			got, err := item.ValueCopy(nil)
			if err != nil || len(got) != testTableValue || binary.BigEndian.Uint64(got) != uint64(i)*0x9e3779b97f4a7c15 {
				t.Errorf("entry %d after the page-out: %d bytes, %v", i, len(got), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// residentTableBytes sums the Rss of the process's mappings of table
// files in dir, from /proc/self/smaps.
func residentTableBytes(t *testing.T, dir string) int64 {
	t.Helper()
	return sumValues(residentTables(t, dir))
}

// residentTables returns the Rss of the process's mappings of each table
// file in dir, from /proc/self/smaps.
func residentTables(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tables := map[string]int64{}
	table := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m, ok, err := parseMapping(line); err == nil {
			table = ""
			if ok && filepath.Dir(m.path) == dir && strings.HasSuffix(m.path, tableSuffix) {
				table = m.path
			}
			continue
		}
		if rest, found := strings.CutPrefix(line, "Rss:"); found && table != "" {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			tables[table] += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tables
}

func sumValues(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
