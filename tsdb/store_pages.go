package tsdb

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Badger writes a table by copying it into a shared mapping of its new
// file and keeps that mapping while the table lives (table.CreateTable),
// so every page of every table written since the process started stays
// in its page tables: clean copies of files on disk, read again only when
// a query or a compaction needs them, yet counted in the node's RSS. The
// RSS then grows with the store (at 34 minutes of the 10M scenario 1.4 GB
// of its 5.2 GB were table pages; a day would be the whole store, up to
// what the kernel reclaims under pressure). The table pager asks the
// kernel every tablePagesInterval to reclaim the pages of the store's
// table mappings (MADV_PAGEOUT): they are files again, read back on the
// next access.
//
// The mappings come from /proc/self/maps, and badger may unmap a table
// (a compaction deletes it) and the kernel map something else at its
// address before the advice reaches it. That is harmless: MADV_PAGEOUT
// only reclaims — it writes dirty file pages back, and swaps anonymous
// ones out where there is swap — and never changes what memory holds, so
// a stale range costs at most a page fault later.
const tablePagesInterval = 30 * time.Second

// tableSuffix names badger's table files.
const tableSuffix = ".sst"

// mapping is one line of /proc/self/maps that maps a file.
type mapping struct {
	start, end uintptr
	path       string
}

// parseMapping parses a line of /proc/PID/maps:
//
//	start-end perms offset dev inode [path]
//
// with addresses in hex and the path (which may hold spaces) after the
// inode. Lines without a path are anonymous mappings: ok is false.
func parseMapping(line string) (m mapping, ok bool, err error) {
	fields := line
	var f [5]string
	for i := range f {
		fields = strings.TrimLeft(fields, " ")
		end := strings.IndexByte(fields, ' ')
		if end < 0 {
			if i < 4 {
				return mapping{}, false, errors.New("maps line with fewer than 5 fields")
			}
			end = len(fields)
		}
		f[i], fields = fields[:end], fields[end:]
	}
	lo, hi, found := strings.Cut(f[0], "-")
	if !found {
		return mapping{}, false, errors.New("maps line without an address range")
	}
	start, err := strconv.ParseUint(lo, 16, strconv.IntSize)
	if err != nil {
		return mapping{}, false, errors.New("maps line with a bad start address")
	}
	end, err := strconv.ParseUint(hi, 16, strconv.IntSize)
	if err != nil || end < start {
		return mapping{}, false, errors.New("maps line with a bad end address")
	}
	path := strings.TrimLeft(fields, " ")
	if path == "" {
		return mapping{}, false, nil
	}
	return mapping{start: uintptr(start), end: uintptr(end), path: path}, true, nil
}

// tableMappings returns the mappings in maps of files in dir (a clean
// absolute path) whose names end in suffix. Files already deleted are
// left out: their mappings are about to go.
func tableMappings(maps io.Reader, dir, suffix string) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(maps)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		m, ok, err := parseMapping(sc.Text())
		if err != nil {
			return nil, err
		}
		if ok && filepath.Dir(m.path) == dir && strings.HasSuffix(m.path, suffix) {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// tablePager reclaims the pages of a store's table mappings.
type tablePager struct {
	dir    string // the store's directory as the kernel names it
	logger *slog.Logger
}

// newTablePager returns a pager for the badger directory dir, or nil
// where the platform cannot page out (pageOutSupported).
func newTablePager(dir string, logger *slog.Logger) *tablePager {
	if !pageOutSupported {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs) // the kernel names files by their real path
	}
	if err != nil {
		logger.Warn("badger's table pages stay resident: cannot resolve the store's directory", "dir", dir, "err", err)
		return nil
	}
	return &tablePager{dir: abs, logger: logger}
}

// run pages out every interval until stop closes, then closes done.
func (p *tablePager) run(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := p.pageOut(); err != nil {
			p.logger.Warn("badger's table pages stay resident until the next attempt", "err", err)
		}
	}
}
