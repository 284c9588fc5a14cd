package tsdb

import (
	"sync"
	"sync/atomic"
)

// refPageBits sizes the pages of seriesRefs: 4096 slots, 32 KiB a page.
const refPageBits = 12

// seriesRefs finds series by ref. Refs are dense (allocated in order,
// removed only by retention), so a paged array does it in 8 bytes a
// series, where a map entry took ~34 (a heap profile at a million series
// showed the ref maps at 7% of the head). A page whose series are all
// gone is freed.
//
// mu guards the pages slice and each page's live count; slots are atomic
// so that lookups need only the read lock.
type seriesRefs struct {
	mu    sync.RWMutex
	pages []*refPage
}

type refPage struct {
	slots [1 << refPageBits]atomic.Pointer[memSeries]
	// chains holds each series' newest record in the chunk journal
	// (chunk_journal.go), 0 if none: 8 bytes a series beside its
	// pointer, where memSeries has no room left in its size class.
	// Written under the series' lock; read under it wherever the chain
	// must agree with the chunks the head still holds.
	chains [1 << refPageBits]atomic.Uint64
	live   int // guarded by seriesRefs.mu
}

func (r *seriesRefs) get(ref SeriesRef) *memSeries {
	p, i := uint64(ref)>>refPageBits, uint64(ref)&(1<<refPageBits-1)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if p >= uint64(len(r.pages)) || r.pages[p] == nil {
		return nil
	}
	return r.pages[p].slots[i].Load()
}

// chain returns the newest journal record of the series at ref, 0 if
// none. The caller holds the series' lock.
func (r *seriesRefs) chain(ref SeriesRef) journalPos {
	p, i := uint64(ref)>>refPageBits, uint64(ref)&(1<<refPageBits-1)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if p >= uint64(len(r.pages)) || r.pages[p] == nil {
		return 0
	}
	return journalPos(r.pages[p].chains[i].Load())
}

// setChain sets the newest journal record of the series at ref, which
// is in the table. The caller holds the series' lock.
func (r *seriesRefs) setChain(ref SeriesRef, pos journalPos) {
	p, i := uint64(ref)>>refPageBits, uint64(ref)&(1<<refPageBits-1)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if p >= uint64(len(r.pages)) || r.pages[p] == nil {
		panic("BUG: journal chain set for a series not in the ref table")
	}
	r.pages[p].chains[i].Store(uint64(pos))
}

func (r *seriesRefs) set(s *memSeries) {
	p, i := uint64(s.ref)>>refPageBits, uint64(s.ref)&(1<<refPageBits-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	for uint64(len(r.pages)) <= p {
		r.pages = append(r.pages, nil)
	}
	if r.pages[p] == nil {
		r.pages[p] = &refPage{}
	}
	if r.pages[p].slots[i].Swap(s) == nil {
		r.pages[p].live++
	}
}

func (r *seriesRefs) del(ref SeriesRef) {
	p, i := uint64(ref)>>refPageBits, uint64(ref)&(1<<refPageBits-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if p >= uint64(len(r.pages)) || r.pages[p] == nil {
		return
	}
	if r.pages[p].slots[i].Swap(nil) != nil {
		r.pages[p].chains[i].Store(0)
		if r.pages[p].live--; r.pages[p].live == 0 {
			r.pages[p] = nil
		}
	}
}

// from calls fn with each series of ref from on, in ref order, until fn
// returns false or an error. No lock is held while fn runs.
func (r *seriesRefs) from(from SeriesRef, fn func(*memSeries) (bool, error)) error {
	first, i0 := int(uint64(from)>>refPageBits), int(uint64(from)&(1<<refPageBits-1))
	for p := first; ; p++ {
		r.mu.RLock()
		if p >= len(r.pages) {
			r.mu.RUnlock()
			return nil
		}
		page := r.pages[p]
		r.mu.RUnlock()
		if page == nil {
			continue
		}
		start := 0
		if p == first {
			start = i0
		}
		for i := start; i < len(page.slots); i++ {
			if s := page.slots[i].Load(); s != nil {
				if more, err := fn(s); !more || err != nil {
					return err
				}
			}
		}
	}
}

// batches calls fn with the series in ref order, at most n at a time;
// the slice is reused between calls. No lock is held while fn runs.
func (r *seriesRefs) batches(n int, fn func([]*memSeries) error) error {
	batch := make([]*memSeries, 0, n)
	for p := 0; ; p++ {
		r.mu.RLock()
		if p >= len(r.pages) {
			r.mu.RUnlock()
			break
		}
		page := r.pages[p]
		r.mu.RUnlock()
		if page == nil {
			continue
		}
		for i := range page.slots {
			if s := page.slots[i].Load(); s != nil {
				batch = append(batch, s)
			}
		}
		if len(batch) >= n {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}
