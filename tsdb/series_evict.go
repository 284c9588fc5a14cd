package tsdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/prometheus/model/labels"
)

// Eviction: a series that stopped receiving samples leaves memory.
//
// A checkpoint that finds a series without samples for the staleness
// period flushes its chunks and deactivates it (db_checkpoint.go). The next
// checkpoint evicts it, unless an appender holds it uncommitted (pins): its
// series record moves to an evicted record keyed by the time bucket of its
// newest sample, its postings are written to the store under that bucket,
// and it leaves the head's maps and postings. Its symbols are released
// once every querier and appender that may still hold it has ended (see
// epochs). Its chunks stay where they are.
//
//	'z' bucket ref                         → series record (as under 's')
//	'x' bucket len name len value ref      → minT maxT (varints): postings of evicted series
//	'h' labels-hash                        → (ref bucket)*: find an evicted series by labels
//	'r' ref                                → bucket: find it by ref (WAL replay)
//
// Queries over a range that reaches back to evicted buckets read those
// postings and records; a sample for an evicted series brings it back
// under its old ref (so the WAL and the store keep one ref per label set),
// and the next checkpoint deletes its evicted keys. Retention drops whole
// evicted buckets with the chunk buckets they outlive.
//
// The pins matter: an appender may have reactivated a series (Append) and
// not yet committed when a checkpoint deactivates it again; evicting it
// before that commit would lose the commit's samples.
const (
	prefixEvicted         = 'z'
	prefixEvictedPostings = 'x'
	prefixEvictedHash     = 'h'
	prefixEvictedRef      = 'r'
)

func appendEvictedKey(dst []byte, bucket int64, ref SeriesRef) []byte {
	dst = append(dst, prefixEvicted)
	dst = binary.BigEndian.AppendUint64(dst, flipSign(bucket))
	return binary.BigEndian.AppendUint64(dst, uint64(ref))
}

func evictedBucketPrefix(prefix byte, bucket int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, flipSign(bucket))
}

// appendPostingPrefix appends 'x' bucket len name.
func appendPostingPrefix(dst []byte, bucket int64, name string) []byte {
	dst = append(dst, prefixEvictedPostings)
	dst = binary.BigEndian.AppendUint64(dst, flipSign(bucket))
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	return append(dst, name...)
}

func appendPostingKey(dst []byte, bucket int64, name, value string, ref SeriesRef) []byte {
	dst = appendPostingPrefix(dst, bucket, name)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	dst = append(dst, value...)
	return binary.BigEndian.AppendUint64(dst, uint64(ref))
}

// parsePostingTail reads len value ref from the tail of a posting key.
func parsePostingTail(tail []byte) (value []byte, ref SeriesRef, err error) {
	n, k := binary.Uvarint(tail)
	if k <= 0 || uint64(len(tail)-k) != n+8 {
		return nil, 0, fmt.Errorf("malformed evicted posting key %q", tail)
	}
	return tail[k : k+int(n)], SeriesRef(binary.BigEndian.Uint64(tail[k+int(n):])), nil
}

// parsePostingName reads len name from a posting key after 'x' bucket and
// returns it with the rest of the key.
func parsePostingName(rest []byte) (name, tail []byte, err error) {
	n, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return nil, nil, fmt.Errorf("malformed evicted posting key %q", rest)
	}
	return rest[k : k+int(n)], rest[k+int(n):], nil
}

func evictedHashKey(hash uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixEvictedHash}, hash)
}

type hashEntry struct {
	ref    SeriesRef
	bucket int64
}

func decodeHashEntries(val []byte) ([]hashEntry, error) {
	if len(val)%16 != 0 {
		return nil, fmt.Errorf("evicted hash entry of %d bytes", len(val))
	}
	out := make([]hashEntry, 0, len(val)/16)
	for ; len(val) > 0; val = val[16:] {
		out = append(out, hashEntry{SeriesRef(binary.BigEndian.Uint64(val)), unflipSign(binary.BigEndian.Uint64(val[8:]))})
	}
	return out, nil
}

func appendHashEntries(dst []byte, es []hashEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ref))
		dst = binary.BigEndian.AppendUint64(dst, flipSign(e.bucket))
	}
	return dst
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// evictedStore reads and writes the store's keys of evicted series. The
// head calls lookup when it meets labels it does not hold; the rest runs
// under the DB's checkpointMu, which makes the read-modify-writes of hash
// entries safe.
type evictedStore struct {
	st *store
	// maxBucket is the newest bucket holding evicted series; minInt64
	// when there are none, so that a store without evictions costs a
	// new series no lookup.
	maxBucket atomic.Int64
}

func (es *evictedStore) raiseMaxBucket(b int64) {
	for {
		cur := es.maxBucket.Load()
		if b <= cur || es.maxBucket.CompareAndSwap(cur, b) {
			return
		}
	}
}

func openEvictedStore(st *store) (*evictedStore, error) {
	es := &evictedStore{st: st}
	es.maxBucket.Store(minInt64)
	err := st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{prefixEvicted}})
		defer it.Close()
		it.Seek([]byte{prefixEvicted, 0xff})
		if it.Valid() {
			key := it.Item().Key()
			if len(key) != 17 {
				return fmt.Errorf("evicted series key of %d bytes", len(key))
			}
			es.maxBucket.Store(unflipSign(binary.BigEndian.Uint64(key[1:9])))
		}
		return nil
	})
	return es, err
}

// evictedRecord is an evicted series read back from the store.
type evictedRecord struct {
	ref    SeriesRef
	bucket int64
	rec    seriesRecord
	lset   labels.Labels
}

// lookup finds the evicted series with labels lset, whose hash is hash.
func (es *evictedStore) lookup(hash uint64, lset labels.Labels) (evictedRecord, bool, error) {
	if es == nil || es.maxBucket.Load() == minInt64 {
		return evictedRecord{}, false, nil
	}
	var out evictedRecord
	found := false
	err := es.st.db.View(func(txn *badger.Txn) error {
		entries, err := getHashEntries(txn, hash)
		if err != nil {
			return err
		}
		var r walRecordReader
		for _, e := range entries {
			rec, got, err := readEvicted(txn, &r, e.bucket, e.ref)
			if err != nil {
				return err
			}
			if got && labels.Equal(rec.lset, lset) {
				out, found = rec, true
				return nil
			}
		}
		return nil
	})
	return out, found, err
}

func getHashEntries(txn *badger.Txn, hash uint64) ([]hashEntry, error) {
	item, err := txn.Get(evictedHashKey(hash))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []hashEntry
	err = item.Value(func(v []byte) error {
		var derr error
		entries, derr = decodeHashEntries(v)
		return derr
	})
	return entries, err
}

// readEvicted reads one evicted record; found is false if it is gone.
func readEvicted(txn *badger.Txn, r *walRecordReader, bucket int64, ref SeriesRef) (evictedRecord, bool, error) {
	item, err := txn.Get(appendEvictedKey(nil, bucket, ref))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return evictedRecord{}, false, nil
	}
	if err != nil {
		return evictedRecord{}, false, err
	}
	out := evictedRecord{ref: ref, bucket: bucket}
	err = item.Value(func(v []byte) error {
		return decodeSeriesValue(v, r, func(rec seriesRecord, lset labels.Labels) error {
			out.rec, out.lset = rec, lset.Copy()
			return nil
		})
	})
	return out, err == nil, err
}

// hashUpdates batches read-modify-writes of hash entries, reading through
// one transaction per batch. The caller holds the DB's checkpointMu.
type hashUpdates struct {
	es      *evictedStore
	txn     *badger.Txn // nil until the first read of a batch
	pending map[uint64][]hashEntry
}

func (u *hashUpdates) entries(hash uint64) ([]hashEntry, error) {
	if e, ok := u.pending[hash]; ok {
		return e, nil
	}
	if u.txn == nil {
		u.txn = u.es.st.db.NewTransaction(false)
	}
	entries, err := getHashEntries(u.txn, hash)
	if u.pending == nil {
		u.pending = map[uint64][]hashEntry{}
	}
	u.pending[hash] = entries
	return entries, err
}

// discard ends the batch's read transaction.
func (u *hashUpdates) discard() {
	if u.txn != nil {
		u.txn.Discard()
		u.txn = nil
	}
}

// set records that hash leads to ref in bucket, replacing any entry of ref.
func (u *hashUpdates) set(hash uint64, ref SeriesRef, bucket int64) error {
	entries, err := u.entries(hash)
	if err != nil {
		return err
	}
	for i := range entries {
		if entries[i].ref == ref {
			entries[i].bucket = bucket
			return nil
		}
	}
	u.pending[hash] = append(entries, hashEntry{ref, bucket})
	return nil
}

// remove drops the entry of ref if it is still in bucket.
func (u *hashUpdates) remove(hash uint64, ref SeriesRef, bucket int64) error {
	entries, err := u.entries(hash)
	if err != nil {
		return err
	}
	for i, e := range entries {
		if e.ref == ref && e.bucket == bucket {
			u.pending[hash] = append(entries[:i:i], entries[i+1:]...)
			return nil
		}
	}
	return nil
}

// write queues the pending entries in wb and forgets them; the next read
// starts a new transaction, which sees them once wb is flushed.
func (u *hashUpdates) write(wb *badger.WriteBatch) error {
	u.discard()
	for hash, entries := range u.pending {
		var err error
		if len(entries) == 0 {
			err = wb.Delete(evictedHashKey(hash))
		} else {
			err = wb.Set(evictedHashKey(hash), appendHashEntries(nil, entries))
		}
		if err != nil {
			return err
		}
	}
	clear(u.pending)
	return nil
}

// revivedSeries is an evicted series that came back, whose evicted keys
// the next checkpoint deletes.
type revivedSeries struct {
	ref    SeriesRef
	bucket int64
	lset   labels.Labels
}

// revivedQueue collects revived series for the next checkpoint.
type revivedQueue struct {
	mu     sync.Mutex
	series []revivedSeries
}

func (q *revivedQueue) add(r revivedSeries) {
	q.mu.Lock()
	q.series = append(q.series, r)
	q.mu.Unlock()
}

func (q *revivedQueue) take() []revivedSeries {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.series
	q.series = nil
	return s
}

// deleteEvictedKeys queues in wb the deletion of an evicted series' keys.
func deleteEvictedKeys(wb *badger.WriteBatch, u *hashUpdates, r revivedSeries) error {
	if err := wb.Delete(appendEvictedKey(nil, r.bucket, r.ref)); err != nil {
		return err
	}
	if err := wb.Delete(seriesKey(prefixEvictedRef, r.ref)); err != nil {
		return err
	}
	var err error
	r.lset.Range(func(l labels.Label) {
		if err == nil {
			err = wb.Delete(appendPostingKey(nil, r.bucket, l.Name, l.Value, r.ref))
		}
	})
	if err != nil {
		return err
	}
	return u.remove(r.lset.Hash(), r.ref, r.bucket)
}

// cleanRevived deletes the evicted keys of series that came back. A failed
// write keeps them queued. The caller holds db.checkpointMu.
func (db *DB) cleanRevived() error {
	revived := db.head.revived.take()
	if len(revived) == 0 {
		return nil
	}
	wb := db.store.db.NewWriteBatch()
	defer wb.Cancel()
	u := hashUpdates{es: db.head.evicted}
	defer u.discard()
	var err error
	for _, r := range revived {
		if err = deleteEvictedKeys(wb, &u, r); err != nil {
			break
		}
	}
	if err == nil {
		if err = u.write(wb); err == nil {
			err = wb.Flush()
		}
	}
	if err != nil {
		for _, r := range revived {
			db.head.revived.add(r)
		}
		return fmt.Errorf("delete keys of revived series: %w", err)
	}
	return nil
}

// evictor evicts series during one checkpoint.
type evictor struct {
	ok      bool // the head has a store to evict to
	u       hashUpdates
	pending []evictedRecord // written to the batch, not yet flushed
	series  []*memSeries    // of pending, in order
	gone    []*memSeries    // reused by finish
}

// evictLocked queues the eviction of s in the checkpoint's batch if s may
// leave memory, and reports whether it did. The caller holds s.mu.
func (cp *checkpointer) evictLocked(s *memSeries) (bool, error) {
	ev := &cp.evict
	if !ev.ok || s.active || s.pins > 0 || s.deleted || s.maxT == minInt64 {
		return false, nil
	}
	st, h := cp.db.store, cp.db.head
	bucket := st.bucketOf(s.maxT)
	if err := cp.moveChainLocked(s); err != nil {
		return false, err
	}
	h.symbols.labelsInto(&cp.builder, s.syms.refs(), &cp.lset)
	rec := seriesRecord{minT: s.minT, maxT: s.maxT, lastV: s.lastV}
	err := cp.set(func(b []byte) []byte { return appendEvictedKey(b, bucket, s.ref) },
		func(b []byte) []byte { return appendSeriesValue(b, rec, cp.lset) })
	if err != nil {
		return false, err
	}
	cp.lset.Range(func(l labels.Label) {
		if err == nil {
			err = cp.set(func(b []byte) []byte { return appendPostingKey(b, bucket, l.Name, l.Value, s.ref) },
				func(b []byte) []byte { return appendPostingValue(b, rec.minT, rec.maxT) })
		}
	})
	if err != nil {
		return false, err
	}
	// Written to the series index after the batch: should a crash come
	// between, the series is found both in the index and evicted, and
	// the next checkpoint evicts it again.
	cp.records.delete(s.ref)
	err = cp.set(func(b []byte) []byte { return appendSeriesKey(b, prefixEvictedRef, s.ref) },
		func(b []byte) []byte { return binary.BigEndian.AppendUint64(b, flipSign(bucket)) })
	if err != nil {
		return false, err
	}
	if err := ev.u.set(cp.lset.Hash(), s.ref, bucket); err != nil {
		return false, err
	}
	ev.pending = append(ev.pending, evictedRecord{ref: s.ref, bucket: bucket, lset: cp.lset.Copy()})
	ev.series = append(ev.series, s)
	return true, nil
}

// queueEvictionHashes adds the batch's hash entries to its write batch;
// persist calls it before flushing.
func (cp *checkpointer) queueEvictionHashes() error { return cp.evict.u.write(cp.wb) }

// finishEvictions takes the series whose evicted keys are flushed out of
// memory. A series that an appender brought back meanwhile stays: its
// record is written again and its evicted keys deleted, as for a series
// revived from the store.
func (cp *checkpointer) finishEvictions() {
	ev, h := &cp.evict, cp.db.head
	if len(ev.series) == 0 {
		return
	}
	h.evicted.raiseMaxBucket(maxBucketOf(ev.pending))
	h.evictMu.Lock()
	defer h.evictMu.Unlock()
	ev.gone = ev.gone[:0]
	for i, s := range ev.series {
		if h.unlinkIfInactive(s) {
			ev.gone = append(ev.gone, s)
			continue
		}
		s.mu.Lock()
		s.indexPersisted = false
		s.mu.Unlock()
		// Its record left the store: the next commit logs the series
		// again, so that a replay finds it.
		s.logged.Store(false)
		h.created.add(s)
		p := ev.pending[i]
		h.revived.add(revivedSeries{ref: p.ref, bucket: p.bucket, lset: p.lset})
	}
	if h.testHookEvicting != nil {
		h.testHookEvicting()
	}
	h.forgetUnlinked(ev.gone)
	h.metrics.seriesEvicted.Add(float64(len(ev.gone)))
	clear(ev.series)
	clear(ev.pending)
	ev.series, ev.pending = ev.series[:0], ev.pending[:0]
}

func maxBucketOf(rs []evictedRecord) int64 {
	m := int64(minInt64)
	for _, r := range rs {
		m = max(m, r.bucket)
	}
	return m
}

// dropEvictedThrough drops the evicted series whose newest sample lies in
// a bucket up to last: retention dropped their chunks. The caller holds
// db.checkpointMu.
func (db *DB) dropEvictedThrough(last int64) error {
	es := db.head.evicted
	if es == nil || es.maxBucket.Load() == minInt64 {
		return nil
	}
	u := hashUpdates{es: es}
	defer u.discard()
	var buckets []int64
	var refKeys [][]byte
	err := db.store.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixEvicted}, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		var r walRecordReader
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			if len(key) != 17 {
				return fmt.Errorf("evicted series key of %d bytes", len(key))
			}
			b := unflipSign(binary.BigEndian.Uint64(key[1:9]))
			if b > last {
				break
			}
			if len(buckets) == 0 || buckets[len(buckets)-1] != b {
				buckets = append(buckets, b)
			}
			ref := SeriesRef(binary.BigEndian.Uint64(key[9:]))
			err := it.Item().Value(func(v []byte) error {
				return decodeSeriesValue(v, &r, func(_ seriesRecord, lset labels.Labels) error {
					return u.remove(lset.Hash(), ref, b)
				})
			})
			if err != nil {
				return err
			}
			if rb, found, err := refBucket(txn, ref); err != nil {
				return err
			} else if found && rb == b {
				refKeys = append(refKeys, seriesKey(prefixEvictedRef, ref))
			}
		}
		return nil
	})
	if err != nil || len(buckets) == 0 {
		return err
	}
	wb := db.store.db.NewWriteBatch()
	defer wb.Cancel()
	if err := u.write(wb); err != nil {
		return err
	}
	for _, k := range refKeys {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("delete hash entries of expired series: %w", err)
	}
	var prefixes [][]byte
	for _, b := range buckets {
		prefixes = append(prefixes, evictedBucketPrefix(prefixEvicted, b), evictedBucketPrefix(prefixEvictedPostings, b))
	}
	if err := db.store.db.DropPrefix(prefixes...); err != nil {
		return fmt.Errorf("drop evicted buckets: %w", err)
	}
	return nil
}

// evictedSeries is an evicted series a querier found.
type evictedSeries struct {
	ref        SeriesRef
	lset       labels.Labels
	minT, maxT int64
}

// evictedMatching returns the evicted series matching ms with samples in
// [mint, maxt], leaving out those the head holds again. It reads a fresh
// view of the store: a series evicted after the querier's snapshot was
// taken is no longer in the head's maps, but is in this view. The inHead
// series already found count toward the series limit of ctx.
func (q *headQuerier) evictedMatching(ctx context.Context, ms []*labels.Matcher, inHead int) ([]evictedSeries, error) {
	h := q.head
	es := h.evicted
	if es == nil || q.store == nil {
		return nil, nil
	}
	maxBucket := es.maxBucket.Load()
	if maxBucket == minInt64 {
		return nil, nil
	}
	var out []evictedSeries
	err := es.st.db.View(func(txn *badger.Txn) error {
		seen := map[SeriesRef]struct{}{}
		var r walRecordReader
		n := 0
		check := func(bucket int64, ref SeriesRef) error {
			if n++; n%ctxCheckInterval == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if _, ok := seen[ref]; ok || h.series.getByRef(ref) != nil {
				return nil
			}
			rec, found, err := readEvicted(txn, &r, bucket, ref)
			if err != nil || !found {
				return err
			}
			if rec.rec.minT > q.maxt || rec.rec.maxT < q.mint || !matchesAll(ms, rec.lset) {
				return nil
			}
			seen[ref] = struct{}{}
			out = append(out, evictedSeries{ref: ref, lset: rec.lset, minT: rec.rec.minT, maxT: rec.rec.maxT})
			return checkSeriesLimit(ctx, inHead+len(out))
		}
		pick := candidateMatcher(ms)
		return eachEvictedBucket(txn, es.st.bucketOf(q.mint), maxBucket, func(it *badger.Iterator, b int64) error {
			if pick == nil {
				return scanEvictedBucket(it, b, check)
			}
			return scanEvictedPostings(it, b, pick, q.mint, q.maxt, check)
		})
	})
	return out, err
}

// candidateMatcher picks the matcher whose postings list the candidates:
// one that does not match the empty string, an equality if there is one.
// nil means every series is a candidate.
func candidateMatcher(ms []*labels.Matcher) *labels.Matcher {
	var pick *labels.Matcher
	for _, m := range ms {
		if m.Matches("") {
			continue
		}
		if m.Type == labels.MatchEqual {
			return m
		}
		if pick == nil {
			pick = m
		}
	}
	return pick
}

func matchesAll(ms []*labels.Matcher, lset labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

func scanEvictedBucket(it *badger.Iterator, b int64, fn func(int64, SeriesRef) error) error {
	p := evictedBucketPrefix(prefixEvicted, b)
	for it.Seek(p); it.ValidForPrefix(p); it.Next() {
		key := it.Item().Key()
		if len(key) != 17 {
			return fmt.Errorf("evicted series key of %d bytes", len(key))
		}
		if err := fn(b, SeriesRef(binary.BigEndian.Uint64(key[9:]))); err != nil {
			return err
		}
	}
	return nil
}

// scanEvictedPostings calls fn with the series of bucket b whose label
// m.Name matches m and whose samples overlap [mint, maxt], as the posting
// says: a query of recent data skips series evicted earlier in the bucket
// without reading their records.
func scanEvictedPostings(it *badger.Iterator, b int64, m *labels.Matcher, mint, maxt int64, fn func(int64, SeriesRef) error) error {
	p := appendPostingPrefix(nil, b, m.Name)
	if m.Type == labels.MatchEqual {
		p = binary.AppendUvarint(p, uint64(len(m.Value)))
		p = append(p, m.Value...)
	}
	for it.Seek(p); it.ValidForPrefix(p); it.Next() {
		item := it.Item()
		tail := item.Key()[len(p):]
		var ref SeriesRef
		if m.Type == labels.MatchEqual {
			if len(tail) != 8 {
				continue // cannot happen: the value's length is in the prefix
			}
			ref = SeriesRef(binary.BigEndian.Uint64(tail))
		} else {
			value, r, err := parsePostingTail(tail)
			if err != nil {
				return err
			}
			if !m.Matches(string(value)) {
				continue
			}
			ref = r
		}
		var minT, maxT int64
		err := item.Value(func(v []byte) error {
			var err error
			minT, maxT, err = decodePostingValue(v)
			return err
		})
		if err != nil {
			return err
		}
		if minT > maxt || maxT < mint {
			continue
		}
		if err := fn(b, ref); err != nil {
			return err
		}
	}
	return nil
}

func appendPostingValue(dst []byte, minT, maxT int64) []byte {
	return binary.AppendVarint(binary.AppendVarint(dst, minT), maxT)
}

func decodePostingValue(v []byte) (minT, maxT int64, err error) {
	d := decbuf{b: v}
	minT, maxT = d.varint(), d.varint()
	if d.err == nil && len(d.b) > 0 {
		d.fail("posting value")
	}
	return minT, maxT, d.err
}

// evictedLabelNames adds to seen the label names of evicted series in
// buckets the querier's range reaches, one seek per name.
func (q *headQuerier) evictedLabelNames(seen map[string]struct{}) error {
	return q.eachEvictedBucket(func(it *badger.Iterator, b int64) error {
		p := evictedBucketPrefix(prefixEvictedPostings, b)
		for it.Seek(p); it.ValidForPrefix(p); {
			name, _, err := parsePostingName(it.Item().Key()[len(p):])
			if err != nil {
				return err
			}
			seen[string(name)] = struct{}{}
			it.Seek(prefixEnd(appendPostingPrefix(nil, b, string(name))))
		}
		return nil
	})
}

// evictedLabelValues adds to seen the values of name among evicted series
// in buckets the querier's range reaches, one seek per value.
func (q *headQuerier) evictedLabelValues(name string, seen map[string]struct{}) error {
	return q.eachEvictedBucket(func(it *badger.Iterator, b int64) error {
		p := appendPostingPrefix(nil, b, name)
		for it.Seek(p); it.ValidForPrefix(p); {
			value, _, err := parsePostingTail(it.Item().Key()[len(p):])
			if err != nil {
				return err
			}
			seen[string(value)] = struct{}{}
			next := binary.AppendUvarint(bytes.Clone(p), uint64(len(value)))
			it.Seek(prefixEnd(append(next, value...)))
		}
		return nil
	})
}

func (q *headQuerier) eachEvictedBucket(fn func(*badger.Iterator, int64) error) error {
	es := q.head.evicted
	if es == nil || q.store == nil {
		return nil
	}
	maxBucket := es.maxBucket.Load()
	if maxBucket == minInt64 {
		return nil
	}
	return es.st.db.View(func(txn *badger.Txn) error {
		return eachEvictedBucket(txn, es.st.bucketOf(q.mint), maxBucket, fn)
	})
}

// eachEvictedBucket calls fn with every bucket in [from, to] that holds
// evicted series, skipping empty ones with a seek: a range that starts at
// the beginning of time costs no more than one over the retention.
func eachEvictedBucket(txn *badger.Txn, from, to int64, fn func(*badger.Iterator, int64) error) error {
	find := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixEvicted}})
	defer find.Close()
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	for b := from; b <= to; b++ {
		find.Seek(evictedBucketPrefix(prefixEvicted, b))
		if !find.Valid() {
			return nil
		}
		key := find.Item().Key()
		if len(key) != 17 {
			return fmt.Errorf("evicted series key of %d bytes", len(key))
		}
		if b = unflipSign(binary.BigEndian.Uint64(key[1:9])); b > to {
			return nil
		}
		if err := fn(it, b); err != nil {
			return err
		}
	}
	return nil
}

// evictedIterator reads an evicted series' persisted chunks.
func (q *headQuerier) evictedIterator(e *evictedSeries, it Iterator, bulk bool) Iterator {
	mint, maxt := max(q.mint, e.minT), min(q.maxt, e.maxT)
	if mint > maxt {
		return emptyIterator(it)
	}
	b := buffersOf(it)
	chunks, bytes, err := q.store.read(b.chunks, b.bytes, e.ref, 0, mint, maxt, bulk) // evicted: no chain
	if err != nil {
		return errIterator{err}
	}
	return seriesSnapshot{chunks: chunks, bytes: bytes}.iterator(it, q.mint, q.maxt)
}

func emptyIterator(reuse Iterator) Iterator {
	return seriesSnapshot{}.iterator(reuse, math.MaxInt64, math.MinInt64)
}

// startEvictions prepares a checkpoint's evictions: it deletes the evicted
// keys of revived series.
func (db *DB) startEvictions(cp *checkpointer) error {
	if err := db.cleanRevived(); err != nil {
		return err
	}
	h := db.head
	cp.evict.ok = h.evicted != nil
	cp.evict.u.es = h.evicted
	return nil
}

// refBucket reads the bucket of the evicted series ref.
func refBucket(txn *badger.Txn, ref SeriesRef) (int64, bool, error) {
	item, err := txn.Get(seriesKey(prefixEvictedRef, ref))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var b int64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("evicted ref entry of %d bytes", len(v))
		}
		b = unflipSign(binary.BigEndian.Uint64(v))
		return nil
	})
	return b, err == nil, err
}

// byRef reads the evicted series ref, if there is one.
func (es *evictedStore) byRef(ref SeriesRef) (evictedRecord, bool, error) {
	if es == nil || es.maxBucket.Load() == minInt64 {
		return evictedRecord{}, false, nil
	}
	var out evictedRecord
	found := false
	err := es.st.db.View(func(txn *badger.Txn) error {
		b, ok, err := refBucket(txn, ref)
		if err != nil || !ok {
			return err
		}
		var r walRecordReader
		out, found, err = readEvicted(txn, &r, b, ref)
		return err
	})
	return out, found, err
}

// restoreEvictedState gives a series that WAL replay restored the state of
// its evicted record, if it has one: it was revived and logged anew before
// a crash that came before its record was written back. The next
// checkpoint writes its record and deletes its evicted keys.
func (h *Head) restoreEvictedState(s *memSeries) error {
	ev, found, err := h.evicted.byRef(s.ref)
	if err != nil || !found {
		return err
	}
	s.mu.Lock()
	s.minT = min(s.minT, ev.rec.minT)
	if ev.rec.maxT > s.maxT {
		s.maxT, s.lastV = ev.rec.maxT, ev.rec.lastV
	}
	s.persistedMaxT = max(s.persistedMaxT, ev.rec.maxT)
	s.indexPersisted = false
	s.mu.Unlock()
	h.revived.add(revivedSeries{ref: ev.ref, bucket: ev.bucket, lset: ev.lset})
	return nil
}

// restoreEvicted brings back, during WAL replay, the evicted series ref
// that a replayed sample belongs to; nil if there is none.
func (h *Head) restoreEvicted(ref SeriesRef) (*memSeries, error) {
	ev, found, err := h.evicted.byRef(ref)
	if err != nil || !found {
		return nil, err
	}
	s := h.restoreSeries(ref, ev.lset)
	if s.ref != ref {
		return nil, nil
	}
	return s, h.restoreEvictedState(s)
}
