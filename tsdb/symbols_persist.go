package tsdb

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/prometheus/model/labels"
)

// A series record in the store names its labels by persisted symbol ids
// (pids) instead of spelling them: an etcd series' ~11 labels take ~300
// bytes as strings and ~30 as pids. At ten million new series the
// strings were 3 GB that badger wrote to its memtables, flushed and
// compacted again, a quarter of the node's CPU while creating series.
//
// A symbol record in the series index file (series_index.go) gives a
// pid its string. Pids are handed out in increasing order and never
// reused within a store: the symbol table keeps, beside each string it
// holds, the pid it was given, and forgets it with the string. A string
// that leaves the head and comes back gets a new pid. Symbol records no
// series record refers to are dropped when the file is rewritten.
//
// Invariant: a series record's symbol records are in the file before it
// or in the same append ahead of it. An append writes the symbol record
// of every pid it uses that is not yet known to be in the file
// (pidDurable), and marks them known once it is written; a crash keeps
// a prefix of the file's frames. Stores written before the file kept
// symbol records in badger under prefixSymbol + pid (4 bytes,
// big-endian), which the first start with the file moves.
const (
	prefixSymbol = 'y'

	// storeSymbolsSection is a series record's section of labels as
	// pids: count:uvarint (n:uvarint (name:pid value:pid)*n)*count,
	// each pid a uvarint; the store writes one series a record.
	storeSymbolsSection byte = 16

	// pidDurable marks a pid whose symbol record is known to be in the
	// series index file; pids stay below it.
	pidDurable uint32 = 1 << 31
)

// symbolKey returns the key of pid's symbol record in a store written
// before the series index file.
func symbolKey(pid uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixSymbol}, pid)
}

// pendingSymbol is a symbol whose record a batch writes: its slot in the
// symbol table and its pid.
type pendingSymbol struct{ id, pid uint32 }

// persistedIDs appends to pids the pid of each name and value refs
// spells, handing out pids to symbols that have none, and appends to
// need those whose symbol records are not known to be in the store. ok
// is false when the pid space is used up: the caller then writes the
// record with its strings. The caller holds the series whose refs these
// are, which keeps its symbols in the table.
func (st *symbolTable) persistedIDs(refs symRefs, pids []uint32, need []pendingSymbol) (_ []uint32, _ []pendingSymbol, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ok = true
	refs.each(func(n, v uint32) {
		for _, id := range [2]uint32{n, v} {
			pid := st.pids[id]
			if pid == 0 {
				if st.nextPID == 0 {
					st.nextPID = 1
				}
				if st.nextPID >= pidDurable {
					ok = false
					return
				}
				pid = st.nextPID
				st.nextPID++
				st.pids[id] = pid
			}
			pids = append(pids, pid&^pidDurable)
			if pid&pidDurable == 0 {
				need = append(need, pendingSymbol{id: id, pid: pid})
			}
		}
	})
	return pids, need, ok
}

// markDurable records that the symbol records of written are in the
// store. A slot freed and reused since holds another pid and is left
// alone.
func (st *symbolTable) markDurable(written []pendingSymbol) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, p := range written {
		if int(p.id) < len(st.pids) && st.pids[p.id] == p.pid {
			st.pids[p.id] = p.pid | pidDurable
		}
	}
}

// recordWriter encodes the series records of one append to the series
// index file, with the symbol records they need ahead of them.
type recordWriter struct {
	frames  indexFrames
	written map[uint32]struct{} // pids whose symbol records this append holds
	pending []pendingSymbol     // those, marked durable once it is written
	pids    []uint32
	need    []pendingSymbol
	builder labels.ScratchBuilder // for a record written with its strings
	lset    labels.Labels
}

// add queues s's series record, with rec's times. The caller holds s.mu,
// and s is not deleted.
func (w *recordWriter) add(st *symbolTable, s *memSeries, rec seriesRecord) {
	pids, need, ok := st.persistedIDs(s.syms.refs(), w.pids[:0], w.need[:0])
	w.pids, w.need = pids, need
	fr := &w.frames
	if !ok {
		st.labelsInto(&w.builder, s.syms.refs(), &w.lset)
		fr.endSeries(appendSeriesValue(fr.seriesBody(s.ref), rec, w.lset))
		return
	}
	if w.written == nil {
		w.written = map[uint32]struct{}{}
	}
	strs := st.load()
	for _, p := range need {
		if _, done := w.written[p.pid]; done {
			continue
		}
		fr.symbol(p.pid, strs[p.id])
		w.written[p.pid] = struct{}{}
		w.pending = append(w.pending, p)
	}
	fr.endSeries(appendSeriesRecord(fr.seriesBody(s.ref), rec, pids))
}

// delete queues the deletion of ref's record.
func (w *recordWriter) delete(ref SeriesRef) { w.frames.delete(ref) }

// write appends the queued records to x and calls then once they are
// written, both under x's lock; it marks their symbol records durable and
// readies w for the next append. A failed append wrote none of them.
func (w *recordWriter) write(x *seriesIndex, st *symbolTable, then func()) error {
	defer w.reset()
	return x.append(&w.frames, func() {
		st.markDurable(w.pending)
		if then != nil {
			then()
		}
	})
}

// reset readies w for the next append, forgetting what it queued.
func (w *recordWriter) reset() {
	clear(w.written)
	w.pending = w.pending[:0]
	w.frames.reset()
}

// appendSeriesRecord appends a series record: rec's times, then the
// labels as name and value pids.
func appendSeriesRecord(dst []byte, rec seriesRecord, pids []uint32) []byte {
	dst = binary.AppendVarint(dst, rec.minT)
	dst = binary.AppendVarint(dst, rec.maxT)
	dst = binary.LittleEndian.AppendUint64(dst, rec.lastV)
	dst = append(dst, storeSymbolsSection, 1)
	dst = binary.AppendUvarint(dst, uint64(len(pids)/2))
	for _, pid := range pids {
		dst = binary.AppendUvarint(dst, uint64(pid))
	}
	return dst
}

// symbolDict maps the store's pids to their strings while its series are
// loaded, and records which pids a series record used.
type symbolDict struct {
	pids []uint32 // ascending
	strs []string // of pids[i]
	// dense[pid-base] is the index of pid, -1 for none, when the pids
	// are dense enough; else sparse holds them.
	base   uint32
	dense  []int32
	sparse map[uint32]int32
}

// newSymbolDict indexes pids (ascending) and their strings.
func newSymbolDict(pids []uint32, strs []string) *symbolDict {
	d := &symbolDict{pids: pids, strs: strs}
	if len(pids) == 0 {
		return d
	}
	d.base = pids[0]
	if span := uint64(pids[len(pids)-1]-d.base) + 1; span <= 4*uint64(len(pids))+1024 {
		d.dense = make([]int32, span)
		for i := range d.dense {
			d.dense[i] = -1
		}
		for i, pid := range pids {
			d.dense[pid-d.base] = int32(i)
		}
		return d
	}
	d.sparse = make(map[uint32]int32, len(pids))
	for i, pid := range pids {
		d.sparse[pid] = int32(i)
	}
	return d
}

// index returns the index of pid, or -1.
func (d *symbolDict) index(pid uint64) int {
	if d.dense != nil {
		if pid < uint64(d.base) || pid-uint64(d.base) >= uint64(len(d.dense)) {
			return -1
		}
		return int(d.dense[pid-uint64(d.base)])
	}
	if pid > uint64(^uint32(0)) {
		return -1
	}
	if i, ok := d.sparse[uint32(pid)]; ok {
		return int(i)
	}
	return -1
}

// maxPID returns the highest pid, 0 for none.
func (d *symbolDict) maxPID() uint32 {
	if len(d.pids) == 0 {
		return 0
	}
	return d.pids[len(d.pids)-1]
}

// symbolUse marks the dictionary entries one loader's records used.
type symbolUse []uint64

func newSymbolUse(d *symbolDict) symbolUse { return make(symbolUse, (len(d.pids)+63)/64) }

func (u symbolUse) mark(i int)     { u[i/64] |= 1 << (i % 64) }
func (u symbolUse) has(i int) bool { return u[i/64]&(1<<(i%64)) != 0 }

// merge adds o's marks to u.
func (u symbolUse) merge(o symbolUse) {
	for i := range u {
		u[i] |= o[i]
	}
}

// decodeSymbolsSection decodes the labels of a storeSymbolsSection entry
// into add, marking the pids it uses.
func decodeSymbolsSection(d *decbuf, dict *symbolDict, use symbolUse, add func(name, value string)) error {
	labelCount := d.uvarint()
	if labelCount > uint64(len(d.b))/2 {
		return fmt.Errorf("%w: series of %d labels in %d bytes", errBadWALRecord, labelCount, len(d.b))
	}
	for range labelCount {
		np, vp := d.uvarint(), d.uvarint()
		if d.err != nil {
			return d.err
		}
		n, v := dict.index(np), dict.index(vp)
		if n < 0 || v < 0 {
			return fmt.Errorf("%w: series record names symbol %d or %d, which the store lacks", errBadWALRecord, np, vp)
		}
		use.mark(n)
		use.mark(v)
		add(dict.strs[n], dict.strs[v])
	}
	return nil
}

// readSymbols reads the symbol records a store kept in badger before the
// series index file. Their strings share one buffer, which the
// dictionary alone refers to: the symbol table interns copies.
func (s *store) readSymbols() (*symbolDict, error) {
	var pids []uint32
	var buf []byte
	var ends []int
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSymbol}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()
			if len(key) != 5 {
				return fmt.Errorf("symbol key of %d bytes", len(key))
			}
			err := item.Value(func(val []byte) error {
				buf = append(buf, val...)
				return nil
			})
			if err != nil {
				return err
			}
			pids = append(pids, binary.BigEndian.Uint32(key[1:]))
			ends = append(ends, len(buf))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	strs := make([]string, len(ends))
	start := 0
	for i, end := range ends {
		strs[i] = unsafe.String(unsafe.SliceData(buf[start:end]), end-start)
		start = end
	}
	return newSymbolDict(pids, strs), nil
}

// adoptPIDs gives the table's strings the pids the loaded records named
// them by, and hands out new pids above every pid the store holds. Of
// two pids of one string (a record whose deletion a crash lost), either
// will do: both symbol records stay while a record names them.
func (st *symbolTable) adoptPIDs(dict *symbolDict, use symbolUse) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, s := range dict.strs {
		if !use.has(i) {
			continue
		}
		if id, ok := st.ids[s]; ok && dict.pids[i] < pidDurable {
			st.pids[id] = dict.pids[i] | pidDurable
		}
	}
	st.nextPID = max(st.nextPID, min(dict.maxPID(), pidDurable-1)+1, 1)
}
