package tsdb

import (
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// storeReader reads persisted chunks for one querier from a consistent
// badger snapshot. It is safe for concurrent use: the query engine reads
// series on all cores, and each concurrent call takes an iterator of its
// own over the same read-only transaction (a badger iterator is not safe
// for concurrent use; a read-only transaction may have many). Iterators
// are kept for the next call and closed with the reader.
type storeReader struct {
	st  *store
	txn *badger.Txn

	mu   sync.Mutex
	free []*storeIterator // guarded by mu: not in use
	all  []*storeIterator // guarded by mu: every one opened, closed by close
}

// storeIterator is one iterator of a reader and its key buffer.
type storeIterator struct {
	it  *badger.Iterator
	key []byte
}

func (s *store) reader() *storeReader {
	return &storeReader{st: s, txn: s.db.NewTransaction(false)}
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
	it := &storeIterator{it: r.txn.NewIterator(badger.IteratorOptions{})}
	r.all = append(r.all, it)
	return it
}

func (r *storeReader) put(it *storeIterator) {
	r.mu.Lock()
	r.free = append(r.free, it)
	r.mu.Unlock()
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
// [mint, maxt]. Chunk data is copied: it outlives the transaction.
func (r *storeReader) chunks(dst []memChunk, ref SeriesRef, mint, maxt int64) ([]memChunk, error) {
	si := r.get()
	defer r.put(si)
	for b := r.st.bucketOf(mint); b <= r.st.bucketOf(maxt); b++ {
		si.key = chunkPrefix(si.key, b, ref)
		for si.it.Seek(si.key); si.it.ValidForPrefix(si.key); si.it.Next() {
			item := si.it.Item()
			val, err := item.ValueCopy(nil)
			if err != nil {
				return dst, err
			}
			c, err := decodeChunk(item.Key(), val)
			if err != nil {
				return dst, err
			}
			if c.minT > maxt {
				break
			}
			if c.maxT >= mint {
				dst = append(dst, c)
			}
		}
	}
	return dst, nil
}
