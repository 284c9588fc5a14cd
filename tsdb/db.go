package tsdb

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a DB: the head, the WAL, persistence and retention.
type Options struct {
	Head HeadOptions
	// WALSync is when writes are acknowledged relative to fsync.
	WALSync WALSync
	// WALSyncInterval is the fsync period of WALSyncInterval.
	WALSyncInterval time.Duration
	// CheckpointInterval is how often the head's new state is written to
	// the store and the WAL truncated behind it.
	CheckpointInterval time.Duration
	// StalenessPeriod: an active series with no sample this much older
	// than the newest sample of the head is flushed to the store and
	// leaves the head at the next checkpoint.
	StalenessPeriod time.Duration
	// Retention is how much data, behind the newest sample, the store
	// keeps. Whole buckets (Head.ChunkRange) older than that are dropped.
	Retention time.Duration
	// WALRecoveryInterval is how often a failed WAL is retried: a
	// checkpoint onto a fresh segment, which clears the failure if the
	// disk accepts it again.
	WALRecoveryInterval time.Duration
	// ChunkCacheBytes bounds the cache of persisted chunks that queries
	// read from the store (chunk_cache.go); 0 turns it off.
	ChunkCacheBytes int64
	// ShutdownCheckpointTimeout bounds the checkpoints of a shutdown:
	// the one running when Close is called and Close's own. Past it a
	// checkpoint stops between two batches, as a crash would stop it, and
	// the next start replays the WAL from the last checkpoint that
	// completed: nothing acknowledged is lost, the restart takes longer.
	// A checkpoint that recovers a failed WAL is never stopped (it is what
	// makes the samples of the failed segment durable). 0: no bound.
	ShutdownCheckpointTimeout time.Duration
	// StoreCompression compresses the blocks of badger's tables: none,
	// snappy or zstd. XOR chunks hardly compress; what snappy saves is
	// keys and badger's per-entry meta, 5-8% of the disk once buckets are
	// compacted, for a decompression and an allocation at every block a
	// query reads (15% of the CPU of range queries over a million
	// persisted series). Tables keep the compression they were written
	// with: a change applies as badger rewrites them.
	StoreCompression string

	// WALFS is the file system of the WAL and the head snapshot's
	// directory; nil is the real one. Tests set a FaultFS to inject
	// failures.
	WALFS WALFS

	// sequentialLoad, set by tests only, loads the series records one by
	// one (loadSeriesSequential) and the head snapshot on one worker: the
	// reference the parallel recovery is held to.
	sequentialLoad bool
	// compactBatchSeries, set by tests only, replaces the number of series
	// one compaction batch reads (compactBatchSeries, db_compact.go).
	compactBatchSeries int
	// tablePagesInterval, set by tests only, replaces tablePagesInterval
	// (store_pages.go).
	tablePagesInterval time.Duration
	// afterCheckpointBatch, set by tests only, runs after each batch a
	// checkpoint wrote and released.
	afterCheckpointBatch func()
}

// DefaultOptions returns the options etcdgate runs with by default.
func DefaultOptions() Options {
	return Options{
		Head:            DefaultHeadOptions(),
		WALSync:         WALSyncNone,
		WALSyncInterval: 100 * time.Millisecond,
		// Two minutes bound the WAL a restart replays: at a million series
		// scraped every 15 s, 8M samples, ~12 s of replay.
		CheckpointInterval:  2 * time.Minute,
		StalenessPeriod:     15 * time.Minute,
		Retention:           15 * 24 * time.Hour,
		WALRecoveryInterval: 5 * time.Second,
		ChunkCacheBytes:     64 << 20,
		// A checkpoint at ten million series takes 35-95 s once chunks
		// close, and one that fell behind took minutes; the manifests give
		// a stop 120 s, of which the HTTP server's drain takes up to 30.
		ShutdownCheckpointTimeout: time.Minute,
		StoreCompression:          "none",
	}
}

func (o Options) fs() WALFS {
	if o.WALFS == nil {
		return OSFS{}
	}
	return o.WALFS
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	if err := o.Head.Validate(); err != nil {
		return err
	}
	switch {
	case o.WALSync != WALSyncNone && o.WALSync != WALSyncInterval:
		return fmt.Errorf("wal sync %q: want none or interval", o.WALSync)
	case o.WALSync == WALSyncInterval && o.WALSyncInterval <= 0:
		return fmt.Errorf("wal sync interval %s must be positive", o.WALSyncInterval)
	case o.WALRecoveryInterval <= 0:
		return fmt.Errorf("WAL recovery interval %s must be positive", o.WALRecoveryInterval)
	case o.CheckpointInterval <= 0:
		return fmt.Errorf("checkpoint interval %s must be positive", o.CheckpointInterval)
	case o.StalenessPeriod <= o.Head.OutOfOrderWindow:
		return fmt.Errorf("staleness period %s must exceed the out-of-order window %s", o.StalenessPeriod, o.Head.OutOfOrderWindow)
	case o.ShutdownCheckpointTimeout < 0:
		return fmt.Errorf("shutdown checkpoint timeout %s is negative", o.ShutdownCheckpointTimeout)
	case o.ChunkCacheBytes < 0:
		return fmt.Errorf("chunk cache bytes %d is negative", o.ChunkCacheBytes)
	case !validStoreCompression(o.StoreCompression):
		return fmt.Errorf("store compression %q: want none, snappy or zstd", o.StoreCompression)
	case o.Retention < o.Head.ChunkRange:
		return fmt.Errorf("retention %s is shorter than the chunk range %s", o.Retention, o.Head.ChunkRange)
	}
	return nil
}

// DB is the durable store: the head in memory, a WAL that makes every
// acknowledged sample survive a crash, the series index file holding the
// series records (series_index.go), and badger the closed chunks.
//
// Durability rule: a commit is written to the WAL before it is applied to
// the head, both under commitMu held shared (the wait for its fsync comes
// after, without the lock); a checkpoint cuts the WAL under commitMu held
// exclusively, so every record below the cut is already in the head when
// the checkpoint walks it, and therefore in the store when the checkpoint
// ends and deletes those segments. The cut only switches files: fsyncs
// run outside the lock, so no commit waits for a checkpoint's disk I/O.
type DB struct {
	dir     string
	opts    Options
	logger  *slog.Logger
	head    *Head
	wal     *wal
	store   *store
	journal *chunkJournal // closed chunks of buckets not yet compacted (chunk_journal.go)
	index   *seriesIndex
	metrics *dbMetrics

	commitMu     sync.RWMutex // shared by commits, exclusive to a WAL cut
	checkpointMu sync.Mutex   // one checkpoint or retention pass at a time
	// lastCut is the WAL segment of the snapshot in place: the WAL is
	// kept from the previous snapshot's segment on, for a recovery that
	// must fall back to it. Guarded by checkpointMu.
	lastCut int
	// chunkWrites counts the checkpoint batches that wrote chunks,
	// bucketWritten holds for each bucket the count at the last one that
	// wrote to it, and droppedThrough is the newest bucket retention
	// dropped: compaction checks them (db_compact.go). Guarded by
	// checkpointMu.
	chunkWrites    uint64
	bucketWritten  map[int64]uint64
	droppedThrough int64
	// checkpointCompleteBefore is the time before which the last
	// checkpoint whose walk completed left no chunk in the head that a
	// bucket may still receive: what makes buckets complete
	// (db_compact.go); minInt64 before the first.
	checkpointCompleteBefore atomic.Int64

	compactMu    sync.Mutex   // one compaction pass at a time
	compactState compactState // guarded by compactMu

	// shutdownDeadline is when the checkpoints of a shutdown stop
	// (Options.ShutdownCheckpointTimeout), in Unix nanoseconds; 0 while
	// the DB is not closing or without a bound.
	shutdownDeadline atomic.Int64

	stop      chan struct{}
	done      chan struct{}
	indexDone chan struct{}
	pagerDone chan struct{} // the table pager's (store_pages.go)
}

// Open opens (or creates) the store in dir and recovers its state: the
// series index from its file, the open chunks from the head snapshot,
// then the WAL tail. It returns
// when the DB is ready to serve.
func Open(dir string, opts Options, reg prometheus.Registerer, logger *slog.Logger) (*DB, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	head, err := NewHead(opts.Head, reg)
	if err != nil {
		return nil, err
	}
	st, err := openStore(filepath.Join(dir, "badger"), opts.Head.ChunkRange.Milliseconds(), storeCompression(opts.StoreCompression), logger)
	if err != nil {
		return nil, err
	}
	journal, err := openChunkJournal(filepath.Join(dir, "chunks"))
	if err != nil {
		st.close()
		return nil, fmt.Errorf("open chunk journal: %w", err)
	}
	db := &DB{dir: dir, opts: opts, logger: logger, head: head, store: st, journal: journal, droppedThrough: minInt64, bucketWritten: map[int64]uint64{},
		stop: make(chan struct{}), done: make(chan struct{}), indexDone: make(chan struct{}), pagerDone: make(chan struct{})}
	db.checkpointCompleteBefore.Store(minInt64)
	db.metrics = newDBMetrics(reg, journal)
	st.cache = newChunkCache(opts.ChunkCacheBytes, reg)
	st.journal = journal
	if head.evicted, err = openEvictedStore(st); err != nil {
		journal.close()
		st.close()
		return nil, err
	}
	// closeFiles closes what Open opened when it fails past this point.
	closeFiles := func() {
		db.index.close()
		journal.close()
		st.close()
	}
	if err := db.recover(); err != nil {
		closeFiles()
		return nil, fmt.Errorf("recover %s: %w", dir, err)
	}
	compacted, err := st.compactedThrough()
	if err != nil {
		closeFiles()
		return nil, err
	}
	st.journalCompacted.Store(compacted)
	// The journal's records of buckets that retention dropped before the
	// restart stay dead until its first pass.
	if lastDead, ok := db.lastDeadBucket(); ok {
		st.journalFloor.Store(lastDead + 1)
	}
	if err := db.loadMetadata(); err != nil {
		closeFiles()
		return nil, err
	}
	if db.wal, err = openWAL(filepath.Join(dir, "wal"), opts.fs(), opts.WALSync, opts.WALSyncInterval, db.metrics.walFsyncSeconds, logger); err != nil {
		closeFiles()
		return nil, err
	}
	db.metrics.recoverySeconds.Set(time.Since(start).Seconds())
	logger.Info("tsdb ready", "series", head.NumIndexedSeries(), "active_series", head.NumSeries(),
		"duration", time.Since(start).Round(time.Millisecond))
	head.created.enable()
	go db.run()
	go db.indexLoop(db.stop, db.indexDone)
	if p := newTablePager(filepath.Join(dir, "badger"), logger); p != nil {
		go p.run(cmp.Or(opts.tablePagesInterval, tablePagesInterval), db.stop, db.pagerDone)
	} else {
		close(db.pagerDone)
	}
	return db, nil
}

// Err reports why the DB cannot accept writes: nil, or an error wrapping
// ErrWALFailed and its cause.
func (db *DB) Err() error { return db.wal.failure() }

// Head returns the in-memory head.
func (db *DB) Head() *Head { return db.head }

// NumHeadSeries is the number of series in the head.
func (db *DB) NumHeadSeries() int64 { return db.head.NumSeries() }

// SetLimits replaces the head's memory ceiling.
func (db *DB) SetLimits(l HeadLimits) { db.head.SetLimits(l) }

// SetMetadataLimits replaces the bounds of the metric metadata
// (Head.SetMetadataLimits).
func (db *DB) SetMetadataLimits(o MetadataOptions) error { return db.head.SetMetadataLimits(o) }

// Stats returns the head's cardinality statistics.
func (db *DB) Stats(limit int) Stats { return db.head.Stats(limit) }

// run checkpoints and applies retention every CheckpointInterval, and
// retries a failed WAL every WALRecoveryInterval, backing off to every
// 16th after repeated failures: each attempt is a whole checkpoint.
func (db *DB) run() {
	defer close(db.done)
	t := time.NewTicker(db.opts.CheckpointInterval)
	defer t.Stop()
	retry := time.NewTicker(db.opts.WALRecoveryInterval)
	defer retry.Stop()
	failures, skip := 0, 0
	for {
		select {
		case <-db.stop:
			return
		case <-retry.C:
			switch {
			case db.wal.failure() == nil:
				failures, skip = 0, 0
			case skip > 0:
				skip--
			default:
				if err := db.Checkpoint(); err != nil {
					failures++
					skip = 1<<min(failures, 4) - 1
					db.logger.Warn("WAL recovery failed; writes stay refused", "err", err, "next_attempt_in", db.opts.WALRecoveryInterval*time.Duration(skip+1))
				}
			}
			continue
		case <-t.C:
		}
		if err := db.Checkpoint(); err != nil && !errors.Is(err, errCheckpointStopped) {
			db.logger.Error("checkpoint failed; the WAL keeps the data", "err", err)
		}
		if err := db.ApplyRetention(); err != nil {
			db.logger.Error("retention failed", "err", err)
		}
		db.compactPass()
	}
}

// compactPass compacts complete buckets for at most a quarter of the
// checkpoint interval, or until the DB closes; the next pass goes on
// where it stopped.
func (db *DB) compactPass() {
	deadline := time.Now().Add(db.opts.CheckpointInterval / 4)
	st, err := db.compact(func() bool {
		select {
		case <-db.stop:
			return true
		default:
			return time.Now().After(deadline)
		}
	})
	if err != nil {
		db.logger.Error("compaction failed; the chunks stay as they were", "err", err)
	}
	if st.buckets > 0 || st.malformed > 0 {
		db.logger.Info("persisted chunks compacted", "buckets", st.buckets, "series", st.series,
			"chunks_merged", st.merged, "chunks_written", st.written, "malformed_series", st.malformed)
	}
}

// Close checkpoints, so the next start replays little, and closes. The
// checkpoint running when it is called, and its own, stop after
// Options.ShutdownCheckpointTimeout: the next start then replays the WAL
// behind the last checkpoint that completed.
func (db *DB) Close() error {
	if t := db.opts.ShutdownCheckpointTimeout; t > 0 {
		db.shutdownDeadline.Store(time.Now().Add(t).UnixNano())
	}
	close(db.stop)
	<-db.done
	<-db.indexDone
	<-db.pagerDone
	var cpErr error
	if db.pastShutdownDeadline() && db.wal.failure() == nil {
		// Time is up already: cutting a segment and starting a snapshot
		// would only be undone at the first batch.
		cpErr = errCheckpointStopped
	} else {
		cpErr = db.Checkpoint()
	}
	if errors.Is(cpErr, errCheckpointStopped) {
		db.logger.Warn("the last checkpoint stopped at the shutdown timeout; the next start replays the WAL behind the checkpoint before it",
			"timeout", db.opts.ShutdownCheckpointTimeout)
		cpErr = nil
	}
	werr := db.wal.close()
	ierr := db.index.close()
	jerr := db.journal.close()
	serr := db.store.close()
	return errors.Join(cpErr, werr, ierr, jerr, serr)
}

// pastShutdownDeadline reports whether the DB is closing and its
// checkpoints' time is up.
func (db *DB) pastShutdownDeadline() bool {
	d := db.shutdownDeadline.Load()
	return d != 0 && time.Now().UnixNano() > d
}
