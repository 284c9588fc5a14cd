package tsdb

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// symbolTable interns label names and values. Each distinct string is
// stored once; a series keeps uvarint references to it, and each reference
// is counted, so that a string no series uses any more is dropped and its
// slot reused: label churn (pods and instances that come and go) does not
// grow the table.
//
// Reads are lock-free: strs holds a slice whose slots change only while no
// reader can look at them. A slot is filled before the series referring to
// it is published, and cleared (its count at zero) only once the head's
// epochs say that no reader can still hold a series referring to it (see
// Head.removeSeries). A reader that loaded the slice after a series was
// published sees every symbol that series refers to. Writers serialise on
// mu.
type symbolTable struct {
	strs  atomic.Pointer[[]string]
	live  atomic.Int64 // strings in the table
	bytes atomic.Int64 // memory the table accounts for its strings

	mu    sync.Mutex
	ids   map[string]uint32 // guarded by mu
	count []uint32          // guarded by mu: references to each slot, 0 for a free one
	free  []uint32          // guarded by mu: free slots, reused before the slice grows
	// pids: guarded by mu; each slot's persisted id in the store, 0 for
	// none, with pidDurable once its symbol record is known to be there
	// (symbols_persist.go). nextPID is the next one to hand out.
	pids    []uint32
	nextPID uint32
	// recent holds, for each label position, the string internSyms
	// interned there last and its slot: the series of one target, created
	// together, share most of their strings, and a comparison with the
	// string a position held before costs less than a map lookup. Guarded
	// by mu; an entry whose slot is freed is cleared.
	recent []recentSymbol
}

// recentSymbol is an entry of symbolTable.recent; s is "" when unset.
type recentSymbol struct {
	s  string
	id uint32
}

// maxRecentSymbols bounds the label positions recent covers.
const maxRecentSymbols = 64

// symbolOverhead estimates what a symbol costs besides its bytes: its slot
// (16), count (4), map entry (~16+4 with the swiss table's slack) and the
// postings map entry keyed by it (~48 with its one-element list).
const symbolOverhead = 96

func newSymbolTable() *symbolTable {
	st := &symbolTable{ids: map[string]uint32{}}
	strs := make([]string, 0, 1024)
	st.strs.Store(&strs)
	return st
}

// internLocked returns the reference of s, adding a private copy of s if
// new, and counts one more reference to it. The caller holds st.mu.
func (st *symbolTable) internLocked(s string) uint32 {
	if id, ok := st.ids[s]; ok {
		st.count[id]++
		return id
	}
	s = strings.Clone(s) // the caller's string may alias a request buffer
	strs := *st.strs.Load()
	var id uint32
	if n := len(st.free); n > 0 {
		id = st.free[n-1]
		st.free = st.free[:n-1]
		strs[id] = s // no reader looks at a free slot
		st.count[id] = 1
	} else {
		id = uint32(len(strs))
		strs = append(strs, s)
		st.strs.Store(&strs)
		st.count = append(st.count, 1)
		st.pids = append(st.pids, 0)
	}
	st.ids[s] = id
	st.live.Add(1)
	st.bytes.Add(int64(len(s)) + symbolOverhead)
	return id
}

// releaseLocked drops one reference to id, freeing the slot at zero. The
// caller holds st.mu, and no reader may still hold a series referring to
// id through this reference.
func (st *symbolTable) releaseLocked(id uint32) {
	if st.count[id] == 0 {
		panic("BUG: symbol released more often than interned")
	}
	if st.count[id]--; st.count[id] > 0 {
		return
	}
	strs := *st.strs.Load()
	s := strs[id]
	delete(st.ids, s)
	for i := range st.recent {
		if st.recent[i].id == id {
			st.recent[i] = recentSymbol{}
		}
	}
	strs[id] = ""   // drop the string's memory
	st.pids[id] = 0 // a string that comes back gets a new pid
	st.free = append(st.free, id)
	st.live.Add(-1)
	st.bytes.Add(-int64(len(s)) - symbolOverhead)
}

// release drops the references of one series' label set.
func (st *symbolTable) release(refs symRefs) {
	st.mu.Lock()
	defer st.mu.Unlock()
	refs.each(func(n, v uint32) {
		st.releaseLocked(n)
		st.releaseLocked(v)
	})
}

// size returns the memory the table accounts for its strings.
func (st *symbolTable) size() int64 { return st.bytes.Load() }

// symRefs spells a label set as symbol references, name then value for
// each label in label order, each reference a uvarint. Symbols interned
// early (label names, common values) take one byte: an etcd series of 12
// labels takes ~40 bytes where 24 uint32s take 96. A string, not a slice,
// saves 8 more bytes of header per series.
type symRefs string

// next decodes the reference at byte offset i and returns it with the
// offset of the following one.
func (r symRefs) next(i int) (uint32, int) {
	var v uint32
	for shift := 0; ; shift += 7 {
		c := r[i]
		i++
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, i
		}
	}
}

// labelCount returns the number of labels r spells: half its uvarints,
// each of which ends in the one byte below 0x80.
func (r symRefs) labelCount() int {
	n := 0
	for i := 0; i < len(r); i++ {
		if r[i] < 0x80 {
			n++
		}
	}
	return n / 2
}

// each calls fn with the name and value references of every label.
func (r symRefs) each(fn func(name, value uint32)) {
	for i := 0; i < len(r); {
		var n, v uint32
		n, i = r.next(i)
		v, i = r.next(i)
		fn(n, v)
	}
}

// internSyms returns the references spelling lset, interning what is new,
// packed for a series.
func (st *symbolTable) internSyms(lset labels.Labels) seriesSyms {
	st.mu.Lock()
	defer st.mu.Unlock()
	buf := make([]byte, 0, 4*lset.Len())
	pos := 0
	lset.Range(func(l labels.Label) {
		buf = binary.AppendUvarint(buf, uint64(st.internAtLocked(pos, l.Name)))
		buf = binary.AppendUvarint(buf, uint64(st.internAtLocked(pos+1, l.Value)))
		pos += 2
	})
	return packSyms(buf)
}

// internAtLocked is internLocked for the string at label position pos.
// The caller holds st.mu.
func (st *symbolTable) internAtLocked(pos int, s string) uint32 {
	if pos >= maxRecentSymbols || s == "" {
		return st.internLocked(s)
	}
	if pos >= len(st.recent) {
		st.recent = append(st.recent, make([]recentSymbol, pos+1-len(st.recent))...)
	}
	if r := &st.recent[pos]; r.s == s {
		st.count[r.id]++
		return r.id
	}
	id := st.internLocked(s)
	st.recent[pos] = recentSymbol{s: (*st.strs.Load())[id], id: id}
	return id
}

// load returns the slots; those of published series are filled.
func (st *symbolTable) load() []string { return *st.strs.Load() }

// len returns the number of distinct symbols in use.
func (st *symbolTable) len() int { return int(st.live.Load()) }

// equal reports whether refs spell lset.
func (st *symbolTable) equal(refs symRefs, lset labels.Labels) bool {
	strs := st.load()
	i, eq := 0, true
	lset.Range(func(l labels.Label) {
		if !eq || i >= len(refs) {
			eq = false
			return
		}
		var n, v uint32
		n, i = refs.next(i)
		if i >= len(refs) {
			eq = false
			return
		}
		v, i = refs.next(i)
		eq = strs[n] == l.Name && strs[v] == l.Value
	})
	return eq && i == len(refs)
}

// equalPairs reports whether refs spell the label pairs ls.
func (st *symbolTable) equalPairs(refs symRefs, ls []labels.Label) bool {
	strs := st.load()
	i := 0
	for _, l := range ls {
		if i >= len(refs) {
			return false
		}
		var n, v uint32
		n, i = refs.next(i)
		if i >= len(refs) {
			return false
		}
		v, i = refs.next(i)
		if strs[n] != l.Name || strs[v] != l.Value {
			return false
		}
	}
	return i == len(refs)
}

// labels rebuilds the label set refs spell, using b as scratch.
func (st *symbolTable) labels(b *labels.ScratchBuilder, refs symRefs) labels.Labels {
	strs := st.load()
	b.Reset()
	refs.each(func(n, v uint32) { b.Add(strs[n], strs[v]) })
	return b.Labels()
}

// labelsInto writes the label set refs spell into ls, reusing ls's
// memory through b: ls must not be shared.
func (st *symbolTable) labelsInto(b *labels.ScratchBuilder, refs symRefs, ls *labels.Labels) {
	strs := st.load()
	b.Reset()
	refs.each(func(n, v uint32) { b.Add(strs[n], strs[v]) })
	b.Overwrite(ls)
}

// get returns the value of label name in refs, or "" if absent.
func (st *symbolTable) get(refs symRefs, name string) string {
	strs := st.load()
	value := ""
	refs.each(func(n, v uint32) {
		if strs[n] == name {
			value = strs[v]
		}
	})
	return value
}
