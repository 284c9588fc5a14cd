package tsdb

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// loadSeries reads the store's series records into the head's index with
// every core, and builds the same index that restoring them one by one in
// ref order (Head.restoreSeries) builds: the same refs, symbol refs and
// reference counts, postings lists in ref order, and the same accounting.
// A profile of the sequential path at 200k series showed it spending its
// time on postings inserts, symbol interning and map growth, all under
// one lock per series; here each of those is done once per distinct
// string or list, or by workers that own disjoint parts.
//
// The records are split into ranges of refs, decoded in parallel
// (loadRange), each range interning its strings into a table of its own.
// The ranges' tables are merged in ref order, which gives every string the
// symbol ref the sequential path gives it (the order of first
// appearance). Then workers each own a share of the hash stripes, and then
// a share of the label names, to fill the series maps and the postings.
// The head must not serve yet: recovery runs before Open returns.
func (db *DB) loadSeries(src seriesRecords, dict *symbolDict, use symbolUse) error {
	return db.loadSeriesWorkers(src, dict, use, runtime.GOMAXPROCS(0))
}

// loadSeriesWorkers is loadSeries on workers goroutines.
func (db *DB) loadSeriesWorkers(src seriesRecords, dict *symbolDict, use symbolUse, workers int) error {
	ranges, err := src.ranges(workers)
	if err != nil || len(ranges) == 0 {
		return err
	}
	parallel(workers, len(ranges), func(i int) {
		ranges[i].use = newSymbolUse(dict)
		ranges[i].err = loadRange(src, ranges[i], dict)
	})
	for _, r := range ranges {
		if r.err != nil {
			return r.err
		}
		use.merge(r.use)
		r.use = nil
	}
	h := db.head
	remaps := h.symbols.internRanges(ranges)
	parallel(workers, len(ranges), func(i int) { ranges[i].spell(remaps[i]) })
	dups := h.series.setRanges(ranges, workers)
	created := h.series.refs.setRanges(ranges)
	h.index.addRanges(ranges, h.symbols.load(), workers)

	var indexBytes int64
	var lastRef SeriesRef
	mint, maxt := int64(maxInt64), int64(minInt64)
	for _, r := range ranges {
		for _, s := range r.series {
			if s != nil {
				indexBytes += seriesOverhead(len(s.syms.refs()))
				lastRef = max(lastRef, s.ref)
			}
		}
		mint, maxt = min(mint, r.minT), max(maxt, r.maxT)
	}
	for _, syms := range dups {
		h.symbols.release(syms) // never published: no reader holds it
	}
	h.numIndexed.Add(int64(created))
	h.indexBytes.Add(indexBytes)
	for {
		last := h.lastRef.Load()
		if uint64(lastRef) <= last || h.lastRef.CompareAndSwap(last, uint64(lastRef)) {
			break
		}
	}
	h.updateTimeRange(mint, maxt)
	return nil
}

// refRange is the part of the series records one worker decodes: the
// records of refs in [lo, hi], in ref order.
type refRange struct {
	lo, hi  SeriesRef
	entries []indexEntry // of the series index file: the records of [lo, hi]
	err     error
	use     symbolUse // the symbol records the range's records name

	// series are the decoded series, their syms not yet set; nil in
	// place of one whose labels an earlier series already has.
	series []*memSeries
	hashes []uint64 // label hash of each series
	// local spells each series' labels as refs into strs, uvarints
	// ending at ends[i].
	local []byte
	ends  []uint32
	// strs are the range's distinct strings in order of first
	// appearance, private copies; counts their references.
	strs   []string
	counts []uint32
	ids    map[string]uint32

	minT, maxT int64 // time range of the records

	// last holds, for each label position, the string interned there by
	// the previous series and its ref: neighbouring refs are mostly the
	// series of one target, created together, which share most labels.
	last []lastSymbol
}

type lastSymbol struct {
	s   string
	id  uint32
	set bool
}

// minRangeRefs is the fewest refs a range covers: below that, splitting
// costs more in duplicated strings than it gains.
const minRangeRefs = 1 << 14

// splitRefs splits [lo, hi] into ranges, a few per worker so that holes
// in the refs (retention, evictions) do not leave one worker the most.
func splitRefs(lo, hi SeriesRef, workers int) []*refRange {
	span := uint64(hi - lo) // one less than the refs in [lo, hi]: no overflow
	n := min(uint64(4*workers), max(span/minRangeRefs, 1))
	if workers == 1 {
		n = 1
	}
	step := span / n
	ranges := make([]*refRange, 0, n)
	for i := range n {
		r := &refRange{lo: lo + SeriesRef(step*i), hi: lo + SeriesRef(step*(i+1)) - 1, minT: maxInt64, maxT: minInt64}
		if i == n-1 {
			r.hi = hi
		}
		ranges = append(ranges, r)
	}
	return ranges
}

// parallel calls fn(0..n-1) on at most workers goroutines and waits.
func parallel(workers, n int, fn func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// localRefBytes is the expected size of one series' local refs: an etcd
// series spells its ~12 labels in 30 to 40 bytes, most values taking two
// bytes once a range holds more than 127 strings. Too little costs a
// copy of the whole range's refs at ten million series.
const localRefBytes = 40

// loadRange decodes the series records of r's refs.
func loadRange(src seriesRecords, r *refRange, dict *symbolDict) error {
	r.ids = map[string]uint32{}
	// The series index file gives the count. Badger's refs are dense but
	// for series removed by retention or evicted: the range's span is the
	// likely count, bounded so that a sparse range does not reserve much.
	n := min(int(r.hi-r.lo)+1, 1<<20)
	if r.entries != nil {
		n = len(r.entries)
	}
	r.series, r.hashes, r.ends = make([]*memSeries, 0, n), make([]uint64, 0, n), make([]uint32, 0, n)
	// Growing local by append from nothing copied it some twenty times
	// over at ten million series.
	r.local = make([]byte, 0, n*localRefBytes)
	var pairs []labels.Label
	var hashBuf []byte
	return src.each(r, func(ref SeriesRef, val []byte) error {
		var rec seriesRecord
		var found bool
		var err error
		rec, pairs, found, err = decodeSeriesBorrowed(val, dict, r.use, pairs[:0])
		if err != nil {
			return fmt.Errorf("series %d: %w", ref, err)
		}
		if !found {
			return nil
		}
		var hash uint64
		hash, hashBuf = LabelPairsHash(pairs, hashBuf)
		r.add(ref, rec, pairs, hash)
		return nil
	})
}

// decodeSeriesBorrowed decodes a series record, appending its labels to
// pairs sorted by name: labels as pids (appendSeriesRecord), resolved
// through dict and marked in use, or as strings (appendSeriesValue, as
// the store wrote records before pids and still does when they run out),
// which then alias val. found is false
// for a record without a series. The checks are those of
// decodeSeriesValue, and a record of more than one series (the store
// writes one a key) or with samples (a nil callback there) is refused;
// FuzzDecodeSeriesBorrowed holds the two together.
func decodeSeriesBorrowed(val []byte, dict *symbolDict, use symbolUse, pairs []labels.Label) (rec seriesRecord, _ []labels.Label, found bool, err error) {
	d := decbuf{b: val}
	rec = seriesRecord{minT: d.varint(), maxT: d.varint(), lastV: d.uint64()}
	add := func(name, value string) { pairs = append(pairs, labels.Label{Name: name, Value: value}) }
	for len(d.b) > 0 && d.err == nil {
		typ := d.byte()
		n := d.uvarint()
		switch {
		case d.err != nil || n == 0: // an empty section of any type holds nothing
		case n > uint64(len(d.b)):
			return rec, pairs, false, fmt.Errorf("%w: section of %d entries in %d bytes", errBadWALRecord, n, len(d.b))
		case typ != walSeriesSection && typ != storeSymbolsSection:
			return rec, pairs, false, fmt.Errorf("%w: section type %d in a series record", errBadWALRecord, typ)
		case n > 1 || found:
			return rec, pairs, false, fmt.Errorf("%w: series record of more than one series", errBadWALRecord)
		case typ == storeSymbolsSection:
			found = true
			if err := decodeSymbolsSection(&d, dict, use, add); err != nil {
				return rec, pairs, false, err
			}
		default:
			found = true
			d.uvarint() // the ref, which the key gives
			labelCount := d.uvarint()
			if labelCount > uint64(len(d.b)) {
				return rec, pairs, false, fmt.Errorf("%w: series of %d labels in %d bytes", errBadWALRecord, labelCount, len(d.b))
			}
			for range labelCount {
				name, value := d.borrowedStr(), d.borrowedStr()
				if d.err != nil {
					break
				}
				add(name, value)
			}
		}
	}
	if !slices.IsSortedFunc(pairs, compareLabelNames) {
		slices.SortFunc(pairs, compareLabelNames)
	}
	return rec, pairs, found, d.err
}

func compareLabelNames(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) }

// borrowedStr is str without the copy: the string aliases d's buffer.
func (d *decbuf) borrowedStr() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := unsafe.String(unsafe.SliceData(d.b), int(n))
	d.b = d.b[n:]
	return s
}

// add appends one decoded series to r, its labels sorted pairs and hash
// their LabelPairsHash, interning them in r's table. ls is valid only
// during the call.
func (r *refRange) add(ref SeriesRef, rec seriesRecord, ls []labels.Label, hash uint64) {
	s := newMemSeries(ref, seriesSyms{})
	s.minT, s.maxT, s.lastV, s.persistedMaxT = rec.minT, rec.maxT, rec.lastV, rec.maxT
	s.indexPersisted = true
	s.logged.Store(true)
	r.series = append(r.series, s)
	r.hashes = append(r.hashes, hash)
	for i, l := range ls {
		r.local = binary.AppendUvarint(r.local, uint64(r.internAt(2*i, l.Name)))
		r.local = binary.AppendUvarint(r.local, uint64(r.internAt(2*i+1, l.Value)))
	}
	r.ends = append(r.ends, uint32(len(r.local)))
	r.minT, r.maxT = min(r.minT, rec.minT), max(r.maxT, rec.maxT)
}

// internAt is intern for the string at label position pos, checking
// first the one interned there last.
func (r *refRange) internAt(pos int, s string) uint32 {
	if pos >= len(r.last) {
		r.last = append(r.last, make([]lastSymbol, pos+1-len(r.last))...)
	}
	if l := &r.last[pos]; l.set && l.s == s {
		r.counts[l.id]++
		return l.id
	}
	id := r.intern(s)
	r.last[pos] = lastSymbol{s: r.strs[id], id: id, set: true}
	return id
}

func (r *refRange) intern(s string) uint32 {
	if id, ok := r.ids[s]; ok {
		r.counts[id]++
		return id
	}
	id := uint32(len(r.strs))
	s = strings.Clone(s) // s aliases a buffer that is reused
	r.strs = append(r.strs, s)
	r.counts = append(r.counts, 1)
	r.ids[s] = id
	return id
}

// spell sets each series' symbol refs from its range-local refs, through
// remap (local → table ref), and drops what only decoding needed.
func (r *refRange) spell(remap []uint32) {
	var buf []byte
	start := uint32(0)
	for i, s := range r.series {
		local := symRefs(r.local[start:r.ends[i]])
		start = r.ends[i]
		buf = buf[:0]
		local.each(func(n, v uint32) {
			buf = binary.AppendUvarint(buf, uint64(remap[n]))
			buf = binary.AppendUvarint(buf, uint64(remap[v]))
		})
		s.syms = packSyms(buf)
	}
	r.local, r.ends, r.strs, r.counts, r.ids, r.last = nil, nil, nil, nil, nil, nil
}

// internRanges interns the ranges' strings, range after range in ref
// order, so that each gets the ref it gets when the series are interned
// one by one in ref order, with its count of references. It returns, for
// each range, its local refs' table refs.
func (st *symbolTable) internRanges(ranges []*refRange) [][]uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	total := 0
	for _, r := range ranges {
		total += len(r.strs)
	}
	if len(st.ids) == 0 {
		// An upper bound: strings shared by ranges count once per range.
		st.ids = make(map[string]uint32, total)
	}
	strs := *st.strs.Load()
	strs = slices.Grow(strs, total)
	st.count = slices.Grow(st.count, total)
	st.pids = slices.Grow(st.pids, total)
	remaps := make([][]uint32, len(ranges))
	for i, r := range ranges {
		remap := make([]uint32, len(r.strs))
		for j, s := range r.strs {
			remap[j] = st.internCountLocked(&strs, s, r.counts[j])
		}
		remaps[i] = remap
	}
	st.strs.Store(&strs)
	return remaps
}

// internCountLocked is internLocked for n references at once to s, a
// private copy, appending new slots to *strs, which the caller publishes.
// The caller holds st.mu.
func (st *symbolTable) internCountLocked(strs *[]string, s string, n uint32) uint32 {
	if id, ok := st.ids[s]; ok {
		st.count[id] += n
		return id
	}
	var id uint32
	if k := len(st.free); k > 0 {
		id = st.free[k-1]
		st.free = st.free[:k-1]
		(*strs)[id] = s // no reader looks at a free slot
		st.count[id] = n
	} else {
		id = uint32(len(*strs))
		*strs = append(*strs, s)
		st.count = append(st.count, n)
		st.pids = append(st.pids, 0)
	}
	st.ids[s] = id
	st.live.Add(1)
	st.bytes.Add(int64(len(s)) + symbolOverhead)
	return id
}

// setRanges puts the ranges' series in the hash maps, each worker owning
// a share of the stripes and meeting the series in ref order, so that of
// two series with the same labels the first stays, as in getOrSet. The
// later one is replaced by nil in its range, and its record's times go to
// the first, as the sequential path does. It returns the symbol refs of
// those duplicates, which the caller releases.
func (s *stripeSeries) setRanges(ranges []*refRange, workers int) []symRefs {
	perStripe := make([]int, len(s.stripes))
	for _, r := range ranges {
		for _, hash := range r.hashes {
			perStripe[hash&s.mask]++
		}
	}
	workers = min(workers, len(s.stripes))
	dups := make([][]symRefs, workers)
	parallel(workers, workers, func(w int) {
		for i := w; i < len(s.stripes); i += workers {
			s.stripes[i].Lock()
			s.stripes[i].reserve(perStripe[i])
			s.stripes[i].Unlock()
		}
		for _, r := range ranges {
			for j, hash := range r.hashes {
				if int(hash&s.mask)%workers != w {
					continue
				}
				series := r.series[j]
				sp := s.stripe(hash)
				sp.Lock()
				if old := sp.getBySyms(hash, series.syms.refs()); old != nil {
					old.mu.Lock()
					old.minT, old.maxT, old.lastV, old.persistedMaxT = series.minT, series.maxT, series.lastV, series.persistedMaxT
					old.mu.Unlock()
					r.series[j] = nil
					dups[w] = append(dups[w], series.syms.refs())
				} else {
					sp.set(hash, series)
				}
				sp.Unlock()
			}
		}
	})
	return slices.Concat(dups...)
}

// setRanges puts the ranges' series (nil ones skipped) in the ref table
// and returns how many it added.
func (r *seriesRefs) setRanges(ranges []*refRange) (created int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rg := range ranges {
		for _, s := range rg.series {
			if s == nil {
				continue
			}
			p, i := uint64(s.ref)>>refPageBits, uint64(s.ref)&(1<<refPageBits-1)
			if n := int(p) + 1; n > len(r.pages) {
				r.pages = append(r.pages, make([]*refPage, n-len(r.pages))...)
			}
			if r.pages[p] == nil {
				r.pages[p] = &refPage{}
			}
			if r.pages[p].slots[i].Swap(s) == nil {
				r.pages[p].live++
			}
			created++
		}
		rg.hashes = nil
	}
	return created
}

// addRanges indexes the ranges' series (nil ones skipped): workers each
// own a share of the label names and build their lists in ref order,
// keyed by the strings the index keeps, so that no list or map is built
// twice. Each name keeps the list of the value it met last out of its
// map, and each label position the name it met last: neighbouring refs
// share most labels, so most labels cost no map operation.
func (p *postings) addRanges(ranges []*refRange, strs []string, workers int) {
	byName := make([]map[uint32]*nameLists, workers)
	parallel(workers, workers, func(w int) {
		names := map[uint32]*nameLists{}
		type lastName struct {
			n     uint32
			lists *nameLists
		}
		var last []lastName // by label position
		for _, r := range ranges {
			for _, s := range r.series {
				if s == nil {
					continue
				}
				pos := -1
				s.syms.refs().each(func(n, v uint32) {
					if pos++; int(n)%workers != w {
						return
					}
					if pos >= len(last) {
						last = append(last, make([]lastName, pos+1-len(last))...)
					}
					nl := last[pos].lists
					if nl == nil || last[pos].n != n {
						if nl = names[n]; nl == nil {
							nl = &nameLists{values: map[string]*postingList{}}
							names[n] = nl
						}
						last[pos] = lastName{n, nl}
					}
					nl.add(v, s.ref, strs)
				})
			}
		}
		for _, nl := range names {
			for _, l := range nl.values {
				l.clip()
			}
		}
		byName[w] = names
	})
	var all postingList
	for _, r := range ranges {
		for _, s := range r.series {
			if s != nil {
				all.add(s.ref)
			}
		}
	}
	all.clip()
	p.mu.Lock()
	defer p.mu.Unlock()
	grown := -p.all.bytes()
	p.all = mergeLists(&p.all, &all)
	grown += p.all.bytes()
	for _, names := range byName {
		for n, nl := range names {
			name, values := strs[n], nl.values
			old := p.m[name]
			if old == nil {
				p.m[name] = values
				for _, l := range values {
					grown += l.bytes()
				}
				continue
			}
			for v, l := range values {
				if o := old[v]; o != nil {
					grown -= o.bytes()
					merged := mergeLists(o, l)
					l = &merged
				}
				old[v] = l
				grown += l.bytes()
			}
		}
	}
	p.size.Add(grown)
}

// nameLists are the postings of one label name being built.
type nameLists struct {
	values map[string]*postingList
	cur    *postingList // the list of value curV
	curV   uint32
	has    bool
}

func (nl *nameLists) add(v uint32, ref SeriesRef, strs []string) {
	if !nl.has || nl.curV != v {
		value := strs[v]
		nl.cur = nl.values[value]
		if nl.cur == nil {
			nl.cur = &postingList{}
			nl.values[value] = nl.cur
		}
		nl.curV, nl.has = v, true
	}
	nl.cur.add(ref)
}

// mergeLists returns the union of two lists; it returns b itself when a is
// empty.
func mergeLists(a, b *postingList) postingList {
	if a.len() == 0 {
		return *b
	}
	return newPostingList(slices.Compact(mergeSorted(a.appendTo(nil), b.appendTo(nil))))
}

// mergeSorted merges two sorted lists; it returns b itself when a is
// empty.
func mergeSorted(a, b []SeriesRef) []SeriesRef {
	if len(a) == 0 {
		return b
	}
	out := make([]SeriesRef, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
