package tsdb

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"unsafe"
)

// loadedIndex is what reading the series index file found. Its strings
// and record bodies alias the mapped file until release.
type loadedIndex struct {
	data             []byte // the file, mapped read-only; nil if empty
	size             int64  // bytes of whole frames, from the start
	torn             int64  // bytes after them: a frame a crash cut short
	records, symbols int64  // in the whole frames
	dict             *symbolDict
	// entries are the positions of the series records that count (the
	// last of each ref, unless a delete came after it), by ref.
	entries []indexEntry
}

// indexEntry is a series or delete record in the mapped file: its ref
// and the offset of its type byte.
type indexEntry struct {
	ref SeriesRef
	off uint64
}

// deletedEntry marks, in off, a ref whose last record is a delete.
const deletedEntry = 1 << 63

// indexRecordBytes is what a record is expected to take in the file at
// least, to size the entries before reading them.
const indexRecordBytes = 56

// readSeriesIndex maps and reads the series index file at path; found is
// false if there is none. The caller releases what it returns.
func readSeriesIndex(path string) (_ *loadedIndex, found bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open series index: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, true, fmt.Errorf("stat series index: %w", err)
	}
	li := &loadedIndex{}
	if fi.Size() > 0 {
		if int64(int(fi.Size())) != fi.Size() {
			return nil, true, fmt.Errorf("%w: %d bytes", errBadSeriesIndex, fi.Size())
		}
		if li.data, err = syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED); err != nil {
			return nil, true, fmt.Errorf("map series index: %w", err)
		}
	}
	if err := li.parse(); err != nil {
		li.release()
		return nil, true, err
	}
	return li, true, nil
}

// release unmaps the file: nothing read from li may be used after.
func (li *loadedIndex) release() {
	if li.data != nil {
		syscall.Munmap(li.data)
		li.data = nil
	}
	li.dict, li.entries = nil, nil
}

// parse reads li.data's frames: symbols into the dictionary, series
// records into entries. It stops at the first frame that is cut short or
// fails its checksum, as the WAL does: appends write whole frames, so
// only the last can be torn. A whole frame that does not parse is
// corruption and an error.
func (li *loadedIndex) parse() error {
	data := li.data
	header, off, ok := readFrame(data, 0)
	if !ok || string(header) != string(seriesIndexMagic) {
		if len(data) == 0 {
			return fmt.Errorf("%w: empty file", errBadSeriesIndex)
		}
		return fmt.Errorf("%w: bad header", errBadSeriesIndex)
	}
	var pids []uint32
	var strs []string
	// A series record of etcd's ~12 labels takes ~65 bytes: growing the
	// entries by append from nothing allocated five times their size.
	li.entries = make([]indexEntry, 0, len(data)/indexRecordBytes)
	for off < len(data) {
		payload, next, ok := readFrame(data, off)
		if !ok {
			break
		}
		base := uint64(off + walFrameHeader)
		err := eachIndexRecord(payload, func(typ byte, at int, ref uint64, rest []byte) error {
			switch typ {
			case indexRecordSymbol:
				if ref >= uint64(pidDurable) || ref == 0 {
					return fmt.Errorf("%w: symbol id %d", errBadSeriesIndex, ref)
				}
				pids = append(pids, uint32(ref))
				strs = append(strs, unsafe.String(unsafe.SliceData(rest), len(rest)))
				li.symbols++
			case indexRecordSeries:
				li.entries = append(li.entries, indexEntry{ref: SeriesRef(ref), off: base + uint64(at)})
				li.records++
			case indexRecordDelete:
				li.entries = append(li.entries, indexEntry{ref: SeriesRef(ref), off: deletedEntry | base + uint64(at)})
				li.records++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("frame at offset %d: %w", off, err)
		}
		off = next
	}
	li.size, li.torn = int64(off), int64(len(data)-off)
	li.dict = sortedSymbolDict(pids, strs)
	li.entries = lastEntries(li.entries)
	return nil
}

// eachIndexRecord calls fn with each record of a frame's payload: its
// type, its offset in the payload, the uvarint its body starts with (a
// pid or a ref) and the rest of the body.
func eachIndexRecord(payload []byte, fn func(typ byte, at int, id uint64, rest []byte) error) error {
	d := decbuf{b: payload}
	for len(d.b) > 0 {
		at := len(payload) - len(d.b)
		typ := d.byte()
		n := d.uvarint()
		if d.err != nil || n > uint64(len(d.b)) {
			return fmt.Errorf("%w: record cut short", errBadSeriesIndex)
		}
		body := decbuf{b: d.b[:n]}
		d.b = d.b[n:]
		id := body.uvarint()
		if body.err != nil {
			return fmt.Errorf("%w: record without an id", errBadSeriesIndex)
		}
		switch typ {
		case indexRecordSymbol, indexRecordSeries:
		case indexRecordDelete:
			if len(body.b) != 0 {
				return fmt.Errorf("%w: delete record of %d bytes", errBadSeriesIndex, n)
			}
		default:
			return fmt.Errorf("%w: record type %d", errBadSeriesIndex, typ)
		}
		if err := fn(typ, at, id, body.b); err != nil {
			return err
		}
	}
	return nil
}

// sortedSymbolDict builds the dictionary of symbol records read in file
// order: by pid, the last record of a pid counting.
func sortedSymbolDict(pids []uint32, strs []string) *symbolDict {
	order := make([]int, len(pids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Or(cmp.Compare(pids[a], pids[b]), cmp.Compare(a, b)) })
	outPIDs, outStrs := make([]uint32, 0, len(pids)), make([]string, 0, len(pids))
	for i, o := range order {
		if i+1 < len(order) && pids[order[i+1]] == pids[o] {
			continue // a later record of the pid
		}
		outPIDs, outStrs = append(outPIDs, pids[o]), append(outStrs, strs[o])
	}
	return newSymbolDict(outPIDs, outStrs)
}

// lastEntries sorts entries (in file order) by ref and keeps, of each
// ref, the last, dropping refs whose last is a delete. It reuses entries.
func lastEntries(entries []indexEntry) []indexEntry {
	// File order is offset order: sorting by (ref, offset) puts each
	// ref's last record last. Appends come mostly in ref order, which the
	// sort detects.
	slices.SortFunc(entries, func(a, b indexEntry) int {
		return cmp.Or(cmp.Compare(a.ref, b.ref), cmp.Compare(a.off&^deletedEntry, b.off&^deletedEntry))
	})
	out := entries[:0]
	for i, e := range entries {
		if i+1 < len(entries) && entries[i+1].ref == e.ref {
			continue
		}
		if e.off&deletedEntry == 0 {
			out = append(out, e)
		}
	}
	clear(entries[len(out):])
	return slices.Clip(out)
}

// record returns the series record of e: its body after the ref. The
// record was checked when the file was parsed.
func (li *loadedIndex) record(e indexEntry) []byte {
	d := decbuf{b: li.data[e.off:]}
	d.byte()
	n := d.uvarint()
	body := decbuf{b: d.b[:n]}
	body.uvarint()
	return body.b
}
