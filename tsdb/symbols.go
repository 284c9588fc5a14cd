package tsdb

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// symbolTable interns label names and values. Each distinct string is
// stored once; a series keeps 4-byte references to it.
//
// Reads are lock-free: strs holds an append-only slice whose elements below
// its length never change, so a reader that loaded the slice after a series
// was published sees every symbol that series refers to. Writers serialise
// on mu.
type symbolTable struct {
	strs atomic.Pointer[[]string]

	mu  sync.Mutex
	ids map[string]uint32 // guarded by mu
}

func newSymbolTable() *symbolTable {
	st := &symbolTable{ids: map[string]uint32{}}
	strs := make([]string, 0, 1024)
	st.strs.Store(&strs)
	return st
}

// internLocked returns the reference of s, adding a private copy of s if
// new. The caller holds st.mu.
func (st *symbolTable) internLocked(s string) uint32 {
	if id, ok := st.ids[s]; ok {
		return id
	}
	s = strings.Clone(s) // the caller's string may alias a request buffer
	strs := *st.strs.Load()
	id := uint32(len(strs))
	strs = append(strs, s)
	st.strs.Store(&strs)
	st.ids[s] = id
	return id
}

// internLabels appends the references of lset's names and values to dst,
// as name, value pairs in label order.
func (st *symbolTable) internLabels(dst []uint32, lset labels.Labels) []uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	lset.Range(func(l labels.Label) {
		dst = append(dst, st.internLocked(l.Name), st.internLocked(l.Value))
	})
	return dst
}

// load returns a snapshot holding every symbol interned so far.
func (st *symbolTable) load() []string { return *st.strs.Load() }

// len returns the number of distinct symbols.
func (st *symbolTable) len() int { return len(st.load()) }

// equal reports whether the symbol references refs spell lset.
func (st *symbolTable) equal(refs []uint32, lset labels.Labels) bool {
	strs := st.load()
	i, eq := 0, true
	lset.Range(func(l labels.Label) {
		if !eq || i+1 >= len(refs) || strs[refs[i]] != l.Name || strs[refs[i+1]] != l.Value {
			eq = false
			return
		}
		i += 2
	})
	return eq && i == len(refs)
}

// labels rebuilds the label set the references spell, using b as scratch.
func (st *symbolTable) labels(b *labels.ScratchBuilder, refs []uint32) labels.Labels {
	strs := st.load()
	b.Reset()
	for i := 0; i+1 < len(refs); i += 2 {
		b.Add(strs[refs[i]], strs[refs[i+1]])
	}
	return b.Labels()
}

// get returns the label value of name in refs, or "" if absent.
func (st *symbolTable) get(refs []uint32, name string) string {
	strs := st.load()
	for i := 0; i+1 < len(refs); i += 2 {
		if strs[refs[i]] == name {
			return strs[refs[i+1]]
		}
	}
	return ""
}
