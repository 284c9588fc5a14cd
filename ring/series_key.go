package ring

import (
	"context"
	"encoding/binary"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// SeriesKey names a label set across the ring's nodes: xxhash64 over each
// label's name, 0xff, value, 0xff in label order (HashSeries folds it to
// the ring's 32 bits). A pushed-down aggregation (pushdown.go) names the
// series each node evaluates by it. It does not allocate.
func SeriesKey(lset labels.Labels) uint64 {
	// Label sets up to the buffer's size (nearly all) are hashed in one
	// call, which is several times faster than feeding the digest per label;
	// longer ones stream through the digest.
	var buf [512]byte
	b := buf[:0]
	var d xxhash.Digest
	streaming := false
	lset.Range(func(l labels.Label) {
		if len(b)+len(l.Name)+len(l.Value)+2 > cap(b) {
			if !streaming {
				d.Reset()
				streaming = true
			}
			_, _ = d.Write(b)
			b = b[:0]
			_, _ = d.WriteString(l.Name)
			_, _ = d.Write([]byte{0xff})
			_, _ = d.WriteString(l.Value)
			_, _ = d.Write([]byte{0xff})
			return
		}
		b = append(b, l.Name...)
		b = append(b, 0xff)
		b = append(b, l.Value...)
		b = append(b, 0xff)
	})
	var h uint64
	if streaming {
		_, _ = d.Write(b)
		h = d.Sum64()
	} else {
		h = xxhash.Sum64(b)
	}
	return h
}

// keyHasher computes series keys and content digests of a store's
// series, reusing its buffers from series to series.
type keyHasher struct {
	buf    []byte
	chunks []tsdb.Chunk
	head   []byte
	it     tsdb.Iterator
}

// key returns s's SeriesKey, from the store's symbols when s can write
// its labels out (no label set is built).
func (k *keyHasher) key(s tsdb.Series) uint64 {
	la, ok := s.(tsdb.LabelAppender)
	if !ok {
		return SeriesKey(s.Labels())
	}
	k.buf, _ = la.AppendLabels(k.buf[:0], appendKeyPair)
	return xxhash.Sum64(k.buf)
}

func appendKeyPair(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, 0xff)
	dst = append(dst, value...)
	return append(dst, 0xff)
}

// digest returns a hash of what s holds in [mint, maxt]: of the bytes of
// its chunks that overlap the range when the store keeps it as in-order
// chunks, else of its samples there. Two replicas with equal digests hold
// the same samples in the range (replicas that received the same samples
// cut the same chunks, so this is the common case); replicas that differ
// in samples, or only in how they cut chunks, have different digests,
// and the caller reads them raw.
func (k *keyHasher) digest(s tsdb.Series, mint, maxt int64) (uint64, error) {
	var d xxhash.Digest
	var num [8]byte
	putInt := func(v uint64) {
		binary.LittleEndian.PutUint64(num[:], v)
		_, _ = d.Write(num[:])
	}
	if cs, ok := s.(tsdb.ChunkSeries); ok {
		chunks, head, ok, err := cs.Chunks(k.chunks[:0], k.head[:0])
		k.chunks, k.head = chunks, head
		if err != nil {
			return 0, err
		}
		if ok {
			_, _ = d.Write([]byte{'k'})
			for _, c := range chunks {
				if c.MaxT < mint || c.MinT > maxt {
					continue
				}
				putInt(uint64(c.MinT))
				putInt(uint64(c.MaxT))
				putInt(uint64(len(c.Data)))
				_, _ = d.Write(c.Data)
			}
			return d.Sum64(), nil
		}
	}
	_, _ = d.Write([]byte{'s'})
	k.it = s.Iterator(k.it)
	for k.it.Next() {
		t, v := k.it.At()
		if t < mint || t > maxt {
			continue
		}
		putInt(uint64(t))
		putInt(math.Float64bits(v))
	}
	return d.Sum64(), k.it.Err()
}

// keySet is a sorted set of series keys.
type keySet []uint64

// newKeySet sorts keys (in place) and drops repeats.
func newKeySet(keys []uint64) keySet {
	slices.Sort(keys)
	return keySet(slices.Compact(keys))
}

func (ks keySet) has(k uint64) bool {
	_, ok := slices.BinarySearch(ks, k)
	return ok
}

// KeyedStore is store restricted to the series with the given keys: what
// a node evaluates of a pushed-down aggregation.
func KeyedStore(store tsdb.Queryable, keys []uint64) tsdb.Queryable {
	return &keyedStore{store: store, keys: newKeySet(keys)}
}

type keyedStore struct {
	store tsdb.Queryable
	keys  keySet
}

func (s *keyedStore) Querier(mint, maxt int64) (tsdb.Querier, error) {
	q, err := s.store.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &keyedQuerier{Querier: q, keys: s.keys}, nil
}

// keyedQuerier selects only the series with keys; its listings are the
// store's (the engine does not list).
type keyedQuerier struct {
	tsdb.Querier
	keys keySet
}

func (q *keyedQuerier) Select(ctx context.Context, ms ...*labels.Matcher) tsdb.SeriesSet {
	return &keyedSeriesSet{SeriesSet: q.Querier.Select(ctx, ms...), keys: q.keys}
}

func (q *keyedQuerier) SelectUnsorted(ctx context.Context, ms ...*labels.Matcher) tsdb.SeriesSet {
	return &keyedSeriesSet{SeriesSet: q.Querier.SelectUnsorted(ctx, ms...), keys: q.keys}
}

type keyedSeriesSet struct {
	tsdb.SeriesSet
	keys keySet
	k    keyHasher
}

func (s *keyedSeriesSet) Next() bool {
	for s.SeriesSet.Next() {
		if s.keys.has(s.k.key(s.SeriesSet.At())) {
			return true
		}
	}
	return false
}
