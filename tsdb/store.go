package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/prometheus/prometheus/model/labels"
)

// store persists closed chunks in badger (series records go to the
// series index file, series_index.go; open chunks to the head snapshot
// file, snapshot.go). Keys:
//
//	'c' bucket ref minT kind seq     → chunk: maxT, XOR or integer chunk bytes
//	'C' bucket                       → empty: the bucket is compacted (db_compact.go)
//
// Integers are big-endian, timestamps with the sign bit flipped, so keys
// sort by time. Chunks come first by time bucket (ChunkRange), then by
// series: retention drops a whole bucket with one prefix drop, and a
// query reads a series' chunks with one seek per bucket. In-order chunks
// (kind 0) never cross a bucket; out-of-order ones (kind 1) are split at
// bucket boundaries when written, and seq keeps them apart.
type store struct {
	db      *badger.DB
	journal *chunkJournal // closed chunks of buckets not yet compacted; nil in tests of badger alone
	// journalFloor is the oldest bucket retention keeps: the journal's
	// records of older ones are dead, though their segments may remain
	// for a while. minInt64 before retention has run.
	journalFloor atomic.Int64
	// journalCompacted is the newest bucket compaction has moved into
	// badger (db_compact_journal.go): the journal's records of it and of
	// older buckets are dead. minInt64 if none.
	journalCompacted atomic.Int64
	bucketRange      int64       // milliseconds
	cache            *chunkCache // of chunks read; nil: none
	// released counts the checkpoint batches whose chunks the head
	// dropped once they were written here; raised after the batch's
	// commit and before the head drops anything (see headQuerier.storeFor).
	released atomic.Uint64
}

const (
	// prefixSeries + ref held series records in stores written before
	// the series index file (legacyRecords).
	prefixSeries = 's'
	prefixChunk  = 'c'
	chunkKeyLen  = 1 + 8 + 8 + 8 + 1 + 4

	chunkInOrder    byte = 0
	chunkOutOfOrder byte = 1
)

// storeMemTableSize is the size of one of badger's memtables, and so of
// its level-0 tables.
const storeMemTableSize = 16 << 20

// badgerOptions sizes badger for a node whose memory belongs to the head.
// Chunks and series records are small (tens to hundreds of bytes), so
// values live in the LSM tree (ValueThreshold), and the value log is
// nearly empty. Memtables: 2 × 16 MiB — a checkpoint of a million series
// flushes in a handful of tables, and they cost 32 MiB, 32 bytes a series
// at a million (with 2 × 32 MiB the heap profile showed them at 7%).
//
// Smaller memtables shrink what badger holds during a checkpoint (a
// flush builds a table of the memtable's size in a buffer that grows by
// doubling, and badger's pool hands grown buffers on to compactions):
// at 8 MiB, with level 0 bounded in the same bytes (8 and 24 tables),
// BenchmarkStoreCheckpointWrites at 10M series held 285-295 MiB of heap
// on average against 421-458, and badger's builders at 30 minutes of the
// 10M scenario 32-60 MB against 196-304. But its checkpoints took 6-10%
// longer in the benchmark, and in the scenario they fell behind: chunk
// arrays and closed-chunk holders took 1.3 GB at 31 minutes against
// 0.5 GB (closed chunks waiting to be written), RSS ended at 502 bytes a
// series and shutdown's final checkpoint ran for minutes. The
// checkpoint's pace binds before badger's memory does.
//
// The block cache (64 MiB) is only for compressed tables, where a block
// read is a decompression into a fresh buffer. An uncompressed block is a
// slice of the mmapped table, and caching it costs more than it saves:
// a key allocation, a lookup and an insertion on every block a seek
// touches (two thirds of Table.block in a profile of range queries over a
// million persisted series). Tables keep the compression they were
// written with, so a store switched to none reads its older compressed
// tables uncached until badger's compactions rewrite them. The index
// cache serves encrypted tables only, which etcdgate does not write.
func badgerOptions(dir string, compression options.CompressionType, logger *slog.Logger) badger.Options {
	blockCache := int64(64 << 20)
	if compression == options.None {
		blockCache = 0
	}
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{logger}).
		WithMemTableSize(storeMemTableSize).
		WithNumMemtables(2).
		WithValueThreshold(2 << 10). // ≤ 15% of the memtable, as badger requires
		WithValueLogFileSize(64 << 20).
		WithBlockCacheSize(blockCache).
		WithIndexCacheSize(0).
		WithNumCompactors(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		// Table builders and compactions allocate buffers of about a table:
		// 2 MiB tables keep a checkpoint's spike of transient memory small.
		WithBaseTableSize(2 << 20).
		WithCompression(compression).
		WithDetectConflicts(false).
		WithMetricsEnabled(false)
}

// validStoreCompression reports whether name is a compression
// storeCompression knows (Options.StoreCompression).
func validStoreCompression(name string) bool {
	return name == "none" || name == "snappy" || name == "zstd"
}

// storeCompression returns badger's compression of a valid name.
func storeCompression(name string) options.CompressionType {
	switch name {
	case "snappy":
		return options.Snappy
	case "zstd":
		return options.ZSTD
	}
	return options.None
}

func openStore(dir string, bucketRange int64, compression options.CompressionType, logger *slog.Logger) (*store, error) {
	db, err := badger.Open(badgerOptions(dir, compression, logger))
	if err != nil {
		return nil, fmt.Errorf("open badger in %s: %w", dir, err)
	}
	st := &store{db: db, bucketRange: bucketRange}
	st.journalFloor.Store(minInt64)
	st.journalCompacted.Store(minInt64)
	return st, nil
}

func (s *store) close() error { return s.db.Close() }

func flipSign(t int64) uint64 { return uint64(t) ^ (1 << 63) }

func unflipSign(u uint64) int64 { return int64(u ^ (1 << 63)) }

func (s *store) bucketOf(t int64) int64 {
	return chunkRangeEnd(t, s.bucketRange)/s.bucketRange - 1
}

func seriesKey(prefix byte, ref SeriesRef) []byte { return appendSeriesKey(nil, prefix, ref) }

func appendSeriesKey(dst []byte, prefix byte, ref SeriesRef) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefix), uint64(ref))
}

func chunkPrefix(dst []byte, bucket int64, ref SeriesRef) []byte {
	dst = append(dst[:0], prefixChunk)
	dst = binary.BigEndian.AppendUint64(dst, flipSign(bucket))
	return binary.BigEndian.AppendUint64(dst, uint64(ref))
}

func (s *store) appendChunkKey(dst []byte, ref SeriesRef, minT int64, kind byte, seq uint32) []byte {
	k := append(dst, prefixChunk)
	k = binary.BigEndian.AppendUint64(k, flipSign(s.bucketOf(minT)))
	k = binary.BigEndian.AppendUint64(k, uint64(ref))
	k = binary.BigEndian.AppendUint64(k, flipSign(minT))
	k = append(k, kind)
	return binary.BigEndian.AppendUint32(k, seq)
}

func appendChunkValue(dst []byte, c memChunk) []byte {
	return append(binary.AppendVarint(dst, c.maxT), c.data...)
}

func decodeChunk(key, val []byte) (memChunk, error) {
	if len(key) != chunkKeyLen {
		return memChunk{}, fmt.Errorf("chunk key of %d bytes", len(key))
	}
	maxT, n := binary.Varint(val)
	if n <= 0 {
		return memChunk{}, errors.New("chunk value without max time")
	}
	minT := unflipSign(binary.BigEndian.Uint64(key[17:25]))
	return memChunk{data: val[n:], minT: minT, maxT: maxT}, nil
}

// seriesRecord is what the store keeps of a series besides its chunks.
type seriesRecord struct {
	minT, maxT int64
	lastV      uint64
}

// storedRecord is s's series record as the store may hold it: its time
// range only as far as the store's chunks go (persisted, the newest
// timestamp they hold). Recovery takes a record's maxT for the newest
// sample the store holds; a record that claimed one still only in the
// head and the WAL would make WAL replay take the WAL's copy for a
// duplicate and drop it. Past persisted the value is not known (lastV 0):
// a sample resent at exactly that timestamp is then refused as another
// value instead of ignored, and the store holds it anyway. The caller
// holds s.mu.
func storedRecord(s *memSeries, persisted int64) seriesRecord {
	if persisted >= s.maxT {
		return seriesRecord{minT: s.minT, maxT: s.maxT, lastV: s.lastV}
	}
	return seriesRecord{minT: s.minT, maxT: persisted}
}

func appendSeriesValue(dst []byte, rec seriesRecord, lset labels.Labels) []byte {
	v := binary.AppendVarint(dst, rec.minT)
	v = binary.AppendVarint(v, rec.maxT)
	v = binary.LittleEndian.AppendUint64(v, rec.lastV)
	return appendWALSeries(v, []walSeries{{lset: lset}})
}

func decodeSeriesValue(val []byte, r *walRecordReader, fn func(seriesRecord, labels.Labels) error) error {
	d := decbuf{b: val}
	rec := seriesRecord{minT: d.varint(), maxT: d.varint(), lastV: d.uint64()}
	if d.err != nil {
		return d.err
	}
	return r.decode(d.b, func(_ SeriesRef, lset labels.Labels) error { return fn(rec, lset) }, nil)
}

// scan calls fn for every key under prefix; val is valid during the call.
func (s *store) scan(prefix byte, fn func(key, val []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// badgerLogger routes badger's logs to slog, dropping its chatty Info.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(string, ...any)        {}
func (b badgerLogger) Debugf(string, ...any)       {}
