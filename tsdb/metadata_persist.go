package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Metric metadata is written through to badger when it changes, one key
// per metric name holding all of the name's entries:
//
//	'm' name → version:byte(1) count:uvarint { type help unit: uvarint length, bytes }
//
// the most recently seen first. It is not in the WAL: a change is written
// before the write request that carried it is answered, and badger's own
// log keeps it through a kill -9, like the series index. Metadata changes
// rarely (an exporter's upgrade), so writing it through costs nothing in
// the steady state, where every arrival is already known.
const (
	prefixMetadata         = 'm'
	metadataValueVersion   = 1
	metadataMinEntryLength = 3 // three empty strings
)

var errBadMetadataValue = errors.New("malformed metadata record")

func appendMetadataKey(dst []byte, name string) []byte {
	return append(append(dst, prefixMetadata), name...)
}

func appendMetadataValue(dst []byte, mds []Metadata) []byte {
	dst = append(dst, metadataValueVersion)
	dst = binary.AppendUvarint(dst, uint64(len(mds)))
	for _, md := range mds {
		for _, s := range [3]string{md.Type, md.Help, md.Unit} {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
	}
	return dst
}

// decodeMetadataValue decodes a value of appendMetadataValue; the strings
// are copies.
func decodeMetadataValue(val []byte) ([]Metadata, error) {
	if len(val) == 0 || val[0] != metadataValueVersion {
		return nil, fmt.Errorf("%w: unknown version", errBadMetadataValue)
	}
	d := decbuf{b: val[1:]}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)/metadataMinEntryLength) {
		return nil, fmt.Errorf("%w: bad entry count", errBadMetadataValue)
	}
	mds := make([]Metadata, n)
	for i := range mds {
		var f [3]string
		for j := range f {
			l := d.uvarint()
			if d.err != nil || l > uint64(len(d.b)) {
				return nil, fmt.Errorf("%w: truncated entry %d", errBadMetadataValue, i)
			}
			f[j] = string(d.b[:l])
			d.b = d.b[l:]
		}
		mds[i] = Metadata{Type: f[0], Help: f[1], Unit: f[2]}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadMetadataValue, len(d.b))
	}
	return mds, nil
}

// AddMetadata keeps the metric metadata of mds that is new (see
// metadata.go) and writes what changed to the store before it returns.
// mds may alias a request body: it is not kept. Metadata over a bound is
// dropped and counted, not an error; the error is the store's, and the
// metadata stays in memory, written at the next change or checkpoint.
func (db *DB) AddMetadata(mds []MetricMetadata) error {
	if db.head.metadata.add(mds, time.Now()) == 0 {
		return nil
	}
	return db.persistMetadata()
}

// Metadata returns the metric metadata kept, as Head.Metadata.
func (db *DB) Metadata(metric string, limit, limitPerMetric int) []MetricMetadataList {
	return db.head.Metadata(metric, limit, limitPerMetric)
}

// persistMetadata writes the names changed since the last write. Writes
// are serialized, and each reads the names' state when it runs, so the
// last write of a name holds its newest state.
func (db *DB) persistMetadata() error {
	ms := db.head.metadata
	ms.persistMu.Lock()
	defer ms.persistMu.Unlock()
	names := ms.takeDirty()
	if len(names) == 0 {
		return nil
	}
	wb := db.store.db.NewWriteBatch()
	defer wb.Cancel()
	for _, name := range names {
		mds, ok := ms.snapshotOf(name)
		if !ok {
			continue
		}
		if err := wb.Set(appendMetadataKey(nil, name), appendMetadataValue(nil, mds)); err != nil {
			ms.markDirty(names)
			ms.persistFailure.Inc()
			return fmt.Errorf("write metadata: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		ms.markDirty(names)
		ms.persistFailure.Inc()
		return fmt.Errorf("write metadata: %w", err)
	}
	return nil
}

// loadMetadata restores the metadata the store holds. A malformed record
// loses that name's metadata only: senders send it again.
func (db *DB) loadMetadata() error {
	ms := db.head.metadata
	bad := 0
	err := db.store.scan(prefixMetadata, func(key, val []byte) error {
		mds, err := decodeMetadataValue(val)
		if err != nil || len(key) < 2 {
			bad++
			return nil
		}
		ms.restore(string(key[1:]), mds)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load metadata: %w", err)
	}
	if bad > 0 {
		db.logger.Warn("malformed metric metadata records skipped; senders send them again", "records", bad)
	}
	ms.takeDirty() // what was restored is already in the store
	return nil
}
