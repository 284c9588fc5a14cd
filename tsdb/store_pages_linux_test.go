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
	"golang.org/x/sys/unix"
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
	var before int64
	for deadline := time.Now().Add(time.Minute); before < 16<<20; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("badger's flushed tables hold %d bytes resident after a minute, want at least 16 MiB", before)
		}
		before = residentTableBytes(t, p.dir)
	}
	if err := p.pageOut(); err != nil {
		t.Fatal(err)
	}
	after := residentTableBytes(t, p.dir)
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

// TestTablePagerPassesOnGrowth checks the pager's trigger between its
// intervals: with an interval of an hour, tables written through badger
// leave at most the slack resident.
func TestTablePagerPassesOnGrowth(t *testing.T) {
	requirePageOut(t)
	dir := filepath.Join(t.TempDir(), "badger")
	st, err := openStore(dir, 7_200_000, options.None, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	p := newTablePager(dir, slog.New(slog.DiscardHandler))
	const slack = 8 << 20
	stop, done := make(chan struct{}), make(chan struct{})
	go p.run(time.Hour, 10*time.Millisecond, slack, stop, done)
	defer func() { close(stop); <-done }()
	writeTestTables(t, st.db)
	var onDisk, resident int64
	for deadline := time.Now().Add(time.Minute); onDisk < 32<<20 || resident > slack; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute badger's tables hold %d bytes, %d of them resident; want 32 MiB, at most %d resident", onDisk, resident, slack)
		}
		onDisk, resident = tableBytesIn(t, p.dir), residentTableBytes(t, p.dir)
	}
	checkTestTables(t, st.db)
}

// TestFileResidentBytes maps a file, reads it in, and checks that the
// process's file-backed resident memory grew by about its size.
func TestFileResidentBytes(t *testing.T) {
	const size = 16 << 20
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	before := fileResidentBytes()
	var sum byte
	for i := 0; i < size; i += os.Getpagesize() {
		sum += m[i]
	}
	after := fileResidentBytes()
	if grew := after - before; grew < size*3/4 {
		t.Fatalf("file-backed resident memory grew by %d bytes (%d → %d) after reading a %d-byte mapping (sum %d)", grew, before, after, size, sum)
	}
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
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	inTable := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m, ok, err := parseMapping(line); err == nil {
			inTable = ok && filepath.Dir(m.path) == dir && strings.HasSuffix(m.path, tableSuffix)
			continue
		}
		if rest, found := strings.CutPrefix(line, "Rss:"); found && inTable {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// BenchmarkTablePagerPass times one page-out pass over n table mappings
// of 2 MiB (sparse files, a few pages of each resident), as a store of
// n tables has them: the cost that bounds how often the pager may run.
func BenchmarkTablePagerPass(b *testing.B) {
	if !pageOutSupported {
		b.Fatal("the kernel refuses MADV_PAGEOUT")
	}
	for _, n := range []int{1000, 10000, 30000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			dir := b.TempDir()
			for i := range n {
				f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)+tableSuffix))
				if err != nil {
					b.Fatal(err)
				}
				if err := f.Truncate(2 << 20); err != nil {
					b.Fatal(err)
				}
				m, err := unix.Mmap(int(f.Fd()), 0, 2<<20, unix.PROT_READ, unix.MAP_SHARED)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				defer unix.Munmap(m)
				_ = m[0] + m[1<<20]
			}
			real, err := filepath.EvalSymlinks(dir)
			if err != nil {
				b.Fatal(err)
			}
			p := &tablePager{dir: real, logger: slog.New(slog.DiscardHandler)}
			b.ResetTimer()
			for b.Loop() {
				if err := p.pageOut(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/mapping")
		})
	}
}
