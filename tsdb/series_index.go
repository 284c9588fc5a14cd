package tsdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// The series index file holds the store's series records and the symbol
// records they name, outside badger. Series are created by the million
// and their records then rarely change: in badger each record was
// written to a memtable, flushed and compacted again, with allocations
// per entry and per table that made badger half of what the node
// allocated and a third of its CPU while ten million series were being
// created. Appended to a file, a record costs its bytes once.
//
// The file is a sequence of frames as the WAL writes them (appendFrame):
// a header frame (seriesIndexMagic), then frames each holding records:
//
//	type:byte len:uvarint body
//	'y' symbol: pid:uvarint string         (the symbol record of pid)
//	's' series: ref:uvarint series record  (appendSeriesRecord or appendSeriesValue)
//	'd' delete: ref:uvarint                (the series left the index)
//
// Appends write whole frames; a frame cut short by a crash fails its
// length or checksum and is dropped when the file is next opened, with
// everything after it. For a ref the last record counts. The file grows
// with records superseded or deleted until a checkpoint writes it anew
// from the head (rewrite), which also drops symbols nothing names.
//
// Invariant: a series record's symbol records are in the file, in an
// earlier frame or the same one; appends hold them ahead of the series
// records that name them, and a rewrite writes every symbol the head has
// given a pid.
const (
	seriesIndexName = "series.index"

	indexRecordSymbol byte = 'y'
	indexRecordSeries byte = 's'
	indexRecordDelete byte = 'd'

	// indexFramePayload is the size at which a frame is closed: frames
	// bound what a torn write loses and what a reader checks at once.
	indexFramePayload = 1 << 20
)

// seriesIndexMagic is the header frame's payload; the last byte is the
// format version.
var seriesIndexMagic = []byte("etcdgate series index\x00\x01")

var errBadSeriesIndex = errors.New("malformed series index")

// seriesIndex appends to the series index file. Writers hold mu across
// an append and what they mark once it is written (indexPersisted), so
// that a rewrite, which holds mu throughout, sees every series whose
// record the old file holds as persisted.
type seriesIndex struct {
	path string

	mu      sync.Mutex
	f       *os.File
	size    int64 // bytes of whole frames in the file
	records int64 // series and delete records in the file
	symbols int64 // symbol records in the file
	// broken is set when a failed append could not be cut off the file:
	// appends refuse until a rewrite replaces it.
	broken error
}

// openSeriesIndex opens the file at path for appending after its first
// size bytes, which hold whole frames (readSeriesIndex found them);
// anything after them, a torn frame, is cut off.
func openSeriesIndex(path string, size, records, symbols int64) (*seriesIndex, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("open series index: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("cut series index to its whole frames: %w", err)
	}
	return &seriesIndex{path: path, f: f, size: size, records: records, symbols: symbols}, nil
}

// append writes frames' records to the file and calls then, both under
// mu. A failed write is cut off the file; the records are then not in it.
func (x *seriesIndex) append(frames *indexFrames, then func()) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.appendLocked(frames); err != nil {
		return err
	}
	if then != nil {
		then()
	}
	return nil
}

func (x *seriesIndex) appendLocked(frames *indexFrames) error {
	if x.broken != nil {
		return x.broken
	}
	b := frames.bytes()
	if len(b) == 0 {
		return nil
	}
	if _, err := x.f.Write(b); err != nil {
		if terr := x.f.Truncate(x.size); terr != nil {
			x.broken = fmt.Errorf("series index holds a partial append: %w", errors.Join(err, terr))
		}
		return fmt.Errorf("append to series index: %w", err)
	}
	x.size += int64(len(b))
	x.records += int64(frames.records)
	x.symbols += int64(frames.symbols)
	return nil
}

// sync makes what was appended durable.
func (x *seriesIndex) sync() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.f.Sync(); err != nil {
		return fmt.Errorf("sync series index: %w", err)
	}
	return nil
}

// close closes the file; x may be nil.
func (x *seriesIndex) close() error {
	if x == nil {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.f.Close()
}

// fileSize returns the bytes of the file.
func (x *seriesIndex) fileSize() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.size
}

// overgrown reports whether the file holds more than twice the records a
// rewrite would write for series live series and symbols live symbols,
// plus some slack so that a small index is not rewritten for a few.
func (x *seriesIndex) overgrown(series, symbols int64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	const slack = 1 << 16
	return x.broken != nil || x.records > 2*series+slack || x.symbols > 2*symbols+slack
}

// rewrite replaces the file by one that write fills: a temporary file,
// fsynced and renamed into place. Appends wait meanwhile. write emits
// records into frames and flushes them with flush when they are full.
func (x *seriesIndex) rewrite(write func(frames *indexFrames, flush func() error) error) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	f, size, records, symbols, err := writeSeriesIndex(x.path, write)
	if err != nil {
		return err
	}
	x.f.Close()
	x.f, x.size, x.records, x.symbols, x.broken = f, size, records, symbols, nil
	return nil
}

// writeSeriesIndex writes a new series index file at path through a
// temporary file and returns it open for appending.
func writeSeriesIndex(path string, write func(frames *indexFrames, flush func() error) error) (f *os.File, size, records, symbols int64, err error) {
	tmp := path + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("create series index: %w", err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(out, 1<<20)
	if _, err = w.Write(appendFrame(nil, seriesIndexMagic)); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("write series index: %w", err)
	}
	size = walFrameHeader + int64(len(seriesIndexMagic))
	var frames indexFrames
	flush := func() error {
		b := frames.bytes()
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write series index: %w", err)
		}
		size += int64(len(b))
		records += int64(frames.records)
		symbols += int64(frames.symbols)
		frames.reset()
		return nil
	}
	if err = write(&frames, flush); err != nil {
		return nil, 0, 0, 0, err
	}
	if err = flush(); err != nil {
		return nil, 0, 0, 0, err
	}
	if err = w.Flush(); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("write series index: %w", err)
	}
	if err = out.Sync(); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("sync series index: %w", err)
	}
	if err = out.Close(); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("close series index: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("rename series index into place: %w", err)
	}
	if err = syncDir(filepath.Dir(path)); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("sync series index directory: %w", err)
	}
	if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("open series index: %w", err)
	}
	return f, size, records, symbols, nil
}

// indexFrames encodes records into frames for one append.
type indexFrames struct {
	done    []byte // whole frames
	payload []byte // records of the frame being filled
	body    []byte // scratch of one record's body
	records int    // series and delete records, in done and payload
	symbols int
}

// symbol adds the symbol record of pid.
func (fr *indexFrames) symbol(pid uint32, s string) {
	fr.addRecord(indexRecordSymbol, uint64(pid), s)
	fr.symbols++
}

// seriesBody starts the body of ref's series record: the caller appends
// the record (appendSeriesRecord or appendSeriesValue) and passes the
// result to endSeries. Records of other types may be added in between.
func (fr *indexFrames) seriesBody(ref SeriesRef) []byte {
	return binary.AppendUvarint(fr.body[:0], uint64(ref))
}

// endSeries adds the series record whose body seriesBody started.
func (fr *indexFrames) endSeries(body []byte) {
	fr.body = body
	fr.payload = append(binary.AppendUvarint(append(fr.payload, indexRecordSeries), uint64(len(body))), body...)
	fr.records++
	fr.closeIfFull()
}

// delete adds the deletion of ref.
func (fr *indexFrames) delete(ref SeriesRef) {
	fr.addRecord(indexRecordDelete, uint64(ref), "")
	fr.records++
}

// addRecord adds a record whose body is id and rest.
func (fr *indexFrames) addRecord(typ byte, id uint64, rest string) {
	n := uvarintLen(id) + len(rest)
	fr.payload = binary.AppendUvarint(binary.AppendUvarint(append(fr.payload, typ), uint64(n)), id)
	fr.payload = append(fr.payload, rest...)
	fr.closeIfFull()
}

func (fr *indexFrames) closeIfFull() {
	if len(fr.payload) >= indexFramePayload {
		fr.closeFrame()
	}
}

func (fr *indexFrames) closeFrame() {
	if len(fr.payload) > 0 {
		fr.done = appendFrame(fr.done, fr.payload)
		fr.payload = fr.payload[:0]
	}
}

// bytes closes the open frame and returns every frame.
func (fr *indexFrames) bytes() []byte {
	fr.closeFrame()
	return fr.done
}

// size returns the bytes fr holds.
func (fr *indexFrames) size() int { return len(fr.done) + len(fr.payload) }

// reset empties fr, keeping its memory unless it grew past a few frames.
func (fr *indexFrames) reset() {
	if cap(fr.done) > 4*indexFramePayload {
		fr.done = nil
	}
	fr.done, fr.payload = fr.done[:0], fr.payload[:0]
	fr.records, fr.symbols = 0, 0
}
