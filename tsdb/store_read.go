package tsdb

import (
	"bytes"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// storeReader reads persisted chunks for one querier from a consistent
// badger snapshot. It is safe for concurrent use: the query engine reads
// series on all cores, and each concurrent call takes an iterator of its
// own over the same read-only transaction (a badger iterator is not safe
// for concurrent use; a read-only transaction may have many). Iterators
// are kept for the next call and closed with the reader.
//
// With a chunk cache, a (bucket, series) read is served from the cache
// when the cache holds it as this snapshot shows it (chunk_cache.go), and
// a read from badger fills the cache.
type storeReader struct {
	st  *store
	txn *badger.Txn
	// compacted is the store's journalCompacted before txn was taken:
	// the buckets whose journal records txn holds merged.
	compacted int64
	ver       uint64 // of the snapshot, for the cache
	cached    bool   // whether the cache serves this reader

	mu      sync.Mutex
	free    []*storeIterator // guarded by mu: not in use
	all     []*storeIterator // guarded by mu: every one open, closed by close
	retired bool             // guarded by mu: iterators are closed when returned
}

// storeIterator is one iterator of a reader and its buffers.
type storeIterator struct {
	it      *badger.Iterator
	key     []byte
	scratch []byte       // the bytes of the chunks being read
	ends    []int        // their end offsets in scratch
	read    []memChunk   // the chunks being read
	order   []chunkOrder // of each chunk in read: where its key sorts
	journal journalRead  // the series' chain, read once per call
	// past is the prefix whose keys the iterator last went past: it
	// stands on the first key after them, or is invalid. Empty: unknown.
	past []byte
}

// headRoom is the room chunks leaves in a slice it allocates for the
// head chunks a caller appends (the open chunk and a closed one or two).
const headRoom = 2

func (s *store) reader() *storeReader {
	r := &storeReader{st: s, compacted: s.journalCompacted.Load()}
	r.ver, r.cached = s.cache.version(func() { r.txn = s.db.NewTransaction(false) })
	return r
}

// get returns an iterator no other call is using.
func (r *storeReader) get() *storeIterator {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.free); n > 0 {
		it := r.free[n-1]
		r.free = r.free[:n-1]
		return it
	}
	// Point seeks: values are read one chunk at a time as the iterator
	// stands on it (PrefetchValues false).
	it := &storeIterator{it: r.txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})}
	r.all = append(r.all, it)
	return it
}

func (r *storeReader) put(it *storeIterator) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired {
		r.closeIterator(it)
		return
	}
	r.free = append(r.free, it)
}

// retire closes r's idle iterators and has the others closed as they are
// returned: a querier that moved on to a newer snapshot (headQuerier.
// storeFor) keeps r only for reads already under way, and a badger
// iterator holds the store's tables. The transaction stays until close.
func (r *storeReader) retire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retired = true
	for _, it := range r.free {
		r.closeIterator(it)
	}
	r.free = nil
}

// closeIterator closes it and forgets it; the caller holds r.mu.
func (r *storeReader) closeIterator(it *storeIterator) {
	it.it.Close()
	r.all = slices.DeleteFunc(r.all, func(x *storeIterator) bool { return x == it })
}

// close closes the iterators and the transaction; no call may be under
// way (the querier's reads have ended).
func (r *storeReader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range r.all {
		it.it.Close()
	}
	r.all, r.free = nil, nil
	r.txn.Discard()
}

// chunks appends to dst the persisted chunks of ref that overlap
// [mint, maxt], oldest bucket first. Their data outlives the transaction
// and must not be changed: it is a copy, or shared with the cache.
func (r *storeReader) chunks(dst []memChunk, ref SeriesRef, chain journalPos, mint, maxt int64) ([]memChunk, error) {
	dst, _, err := r.read(dst, nil, ref, chain, mint, maxt, false)
	return dst, err
}

// read is chunks, with the series' chunks in the journal from its chain
// (0: none), and with the bytes of chunks the cache does not serve
// appended to buf (one allocation of their size when buf is nil), which
// it returns; a bulk read (chunkCache.bulk: one series of a selection too
// large for the cache) takes what the cache holds without counting the
// read for eviction and puts nothing in it.
func (r *storeReader) read(dst []memChunk, buf []byte, ref SeriesRef, chain journalPos, mint, maxt int64, bulk bool) ([]memChunk, []byte, error) {
	if mint > maxt {
		return dst, buf, nil
	}
	var si *storeIterator
	defer func() {
		if si != nil {
			r.put(si)
		}
	}()
	first, last := r.st.bucketOf(mint), r.st.bucketOf(maxt)
	if !r.cached {
		si = r.get()
		si.reset()
		for b := first; b <= last; b++ {
			var err error
			if si.read, err = r.readBucket(si, b, ref, mint, maxt, si.read); err != nil {
				return dst, buf, err
			}
		}
		if err := si.readChain(r, chain, ref, mint, maxt); err != nil {
			return dst, buf, err
		}
		buf = si.copyOut(buf, si.read)
		si.sortRead(r.st)
		dst = append(slices.Grow(dst, len(si.read)+headRoom), si.read...)
		clear(si.read) // no reference to buf stays behind
		return dst, buf, nil
	}
	c := r.st.cache
	if n := last - first + 1; dst == nil && n <= 16 {
		// A bucket holds a few chunks (4 of 120 samples at 15 s in 2 h).
		dst = make([]memChunk, 0, 4*n+headRoom)
	}
	for b := first; b <= last; b++ {
		k := cacheKey{bucket: b, ref: ref, merged: b <= r.compacted}
		cs, ok := c.get(k, r.ver, bulk)
		if !ok {
			if si == nil {
				si = r.get()
			}
			si.reset()
			lo, hi := b*r.st.bucketRange, (b+1)*r.st.bucketRange-1
			if bulk {
				lo, hi = max(lo, mint), min(hi, maxt)
			}
			var err error
			if si.read, err = r.readBucket(si, b, ref, lo, hi, si.read); err != nil {
				return dst, buf, err
			}
			if err := si.readChain(r, chain, ref, lo, hi); err != nil {
				return dst, buf, err
			}
			if bulk {
				buf = si.copyOut(buf, si.read)
				si.sortRead(r.st)
				dst = append(dst, si.read...)
				clear(si.read)
				continue
			}
			// The whole bucket, so that the entry serves any range.
			data := si.copyOut(nil, si.read)
			si.sortRead(r.st)
			cs = slices.Clone(si.read)
			clear(si.read)
			c.put(k, r.ver, cs, len(data))
		}
		for _, ch := range cs {
			if ch.minT > maxt {
				break
			}
			if ch.maxT >= mint {
				dst = append(dst, ch)
			}
		}
	}
	return dst, buf, nil
}

// readBucket appends to dst the chunks of ref in bucket b that overlap
// [mint, maxt], their bytes to si.scratch and their end offsets there to
// si.ends; si.copyOut gives them their data. Values are decoded while the
// iterator stands on them (the bytes badger lends are valid only then):
// only the chunk bytes are copied.
func (r *storeReader) readBucket(si *storeIterator, b int64, ref SeriesRef, mint, maxt int64, dst []memChunk) ([]memChunk, error) {
	si.key = chunkPrefix(si.key, b, ref)
	si.seek()
	si.past = si.past[:0] // known again only if the loop goes past the prefix
	for ; si.it.ValidForPrefix(si.key); si.it.Next() {
		item := si.it.Item()
		var c memChunk
		err := item.Value(func(v []byte) error {
			var err error
			if c, err = decodeChunk(item.Key(), v); err == nil && c.minT <= maxt && c.maxT >= mint {
				si.scratch = append(si.scratch, c.data...)
				si.ends = append(si.ends, len(si.scratch))
				si.order = append(si.order, chunkKeyOrder(b, item.Key()))
			}
			return err
		})
		if err != nil {
			return dst, err
		}
		if c.minT > maxt {
			return dst, nil // the iterator stands inside the prefix
		}
		if c.maxT >= mint {
			c.data = nil
			dst = append(dst, c)
		}
	}
	si.past = append(si.past[:0], si.key...)
	return dst, nil
}

// seek positions the iterator on the first key of prefix si.key. Reads
// of series in ref order, as a query's workers make them, find it
// standing there already: the first key after the previous series'
// chunks is often the first of this one, and a badger Seek (one per
// level and table, and a key copy) costs several Next calls.
func (si *storeIterator) seek() {
	if len(si.past) > 0 && bytes.Compare(si.key, si.past) > 0 {
		// Every key before the iterator is at most past's: no key of
		// si.key lies behind it.
		if !si.it.Valid() || bytes.Compare(si.it.Item().Key(), si.key) >= 0 {
			return
		}
	}
	si.it.Seek(si.key)
}

// copyOut appends the bytes read since scratch was last emptied to buf
// and points cs, the chunks read, at them there. It returns buf.
func (si *storeIterator) copyOut(buf []byte, cs []memChunk) []byte {
	if len(si.scratch) == 0 {
		return buf
	}
	base := len(buf)
	buf = append(buf, si.scratch...)
	from := base
	for i, end := range si.ends {
		cs[i].data = buf[from : base+end : base+end]
		from = base + end
	}
	return buf
}
