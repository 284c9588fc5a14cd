package tsdb

import (
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// storeReader reads persisted chunks for one querier from a consistent
// badger snapshot. It is safe for concurrent use; calls are serialised.
type storeReader struct {
	st  *store
	mu  sync.Mutex
	txn *badger.Txn
	it  *badger.Iterator
	key []byte
}

func (s *store) reader() *storeReader {
	txn := s.db.NewTransaction(false)
	return &storeReader{st: s, txn: txn, it: txn.NewIterator(badger.IteratorOptions{})}
}

func (r *storeReader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.it.Close()
	r.txn.Discard()
}

// chunks appends to dst the persisted chunks of ref that overlap
// [mint, maxt]. Chunk data is copied: it outlives the transaction.
func (r *storeReader) chunks(dst []memChunk, ref SeriesRef, mint, maxt int64) ([]memChunk, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for b := r.st.bucketOf(mint); b <= r.st.bucketOf(maxt); b++ {
		r.key = chunkPrefix(r.key, b, ref)
		for r.it.Seek(r.key); r.it.ValidForPrefix(r.key); r.it.Next() {
			item := r.it.Item()
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
