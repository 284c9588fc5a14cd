package tsdb

import (
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// seriesRecords is where recovery reads the store's series records from:
// the series index file, or badger in a store written before the file
// existed (legacyRecords).
type seriesRecords interface {
	// ranges splits the records into ranges of refs for workers
	// loaders; none when there are no records.
	ranges(workers int) ([]*refRange, error)
	// each calls fn with the ref and record of every series of r (every
	// series when r is nil), in ref order; val is valid during the call.
	each(r *refRange, fn func(ref SeriesRef, val []byte) error) error
}

// fileRecords reads the series records of a loaded series index file.
type fileRecords struct{ li *loadedIndex }

func (f fileRecords) ranges(workers int) ([]*refRange, error) {
	es := f.li.entries
	if len(es) == 0 {
		return nil, nil
	}
	n := min(4*workers, max(len(es)/minRangeRefs, 1))
	if workers == 1 {
		n = 1
	}
	ranges := make([]*refRange, 0, n)
	for i := range n {
		part := es[len(es)*i/n : len(es)*(i+1)/n]
		ranges = append(ranges, &refRange{lo: part[0].ref, hi: part[len(part)-1].ref, entries: part, minT: maxInt64, maxT: minInt64})
	}
	return ranges, nil
}

func (f fileRecords) each(r *refRange, fn func(SeriesRef, []byte) error) error {
	es := f.li.entries
	if r != nil {
		es = r.entries
	}
	for _, e := range es {
		if err := fn(e.ref, f.li.record(e)); err != nil {
			return err
		}
	}
	return nil
}

// legacyRecords reads the series records a store kept in badger, under
// prefixSeries, before the series index file: a store's first start with
// the file loads them from here and moves them (DB.loadIndex).
type legacyRecords struct{ st *store }

func (l legacyRecords) ranges(workers int) ([]*refRange, error) {
	lo, hi, ok, err := l.refSpan()
	if err != nil || !ok {
		return nil, err
	}
	return splitRefs(lo, hi, workers), nil
}

// refSpan returns the lowest and highest ref of the records; ok is false
// when there are none.
func (l legacyRecords) refSpan() (lo, hi SeriesRef, ok bool, err error) {
	err = l.st.db.View(func(txn *badger.Txn) error {
		for _, reverse := range []bool{false, true} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSeries}, Reverse: reverse})
			if reverse {
				it.Seek([]byte{prefixSeries, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			} else {
				it.Rewind()
			}
			if !it.Valid() {
				it.Close()
				return nil
			}
			key := it.Item().Key()
			it.Close()
			if len(key) != 9 {
				return fmt.Errorf("series key of %d bytes", len(key))
			}
			ref := SeriesRef(binary.BigEndian.Uint64(key[1:]))
			if reverse {
				hi = ref
			} else {
				lo = ref
			}
		}
		ok = true
		return nil
	})
	return lo, hi, ok, err
}

func (l legacyRecords) each(r *refRange, fn func(SeriesRef, []byte) error) error {
	return l.st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSeries}, PrefetchValues: r == nil, PrefetchSize: 256})
		defer it.Close()
		from := []byte{prefixSeries}
		if r != nil {
			from = seriesKey(prefixSeries, r.lo)
		}
		for it.Seek(from); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()
			if len(key) != 9 {
				return fmt.Errorf("series key of %d bytes", len(key))
			}
			ref := SeriesRef(binary.BigEndian.Uint64(key[1:]))
			if r != nil && ref > r.hi {
				return nil
			}
			if err := item.Value(func(val []byte) error { return fn(ref, val) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// dropLegacyIndex drops badger's series and symbol records, if it holds
// any: they are in the series index file.
func (s *store) dropLegacyIndex() error {
	var prefixes [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		for _, p := range []byte{prefixSeries, prefixSymbol} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{p}})
			it.Rewind()
			if it.Valid() {
				prefixes = append(prefixes, []byte{p})
			}
			it.Close()
		}
		return nil
	})
	if err != nil || len(prefixes) == 0 {
		return err
	}
	if err := s.db.DropPrefix(prefixes...); err != nil {
		return fmt.Errorf("drop series records moved to the series index file: %w", err)
	}
	return nil
}
