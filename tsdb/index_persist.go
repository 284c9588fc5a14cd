package tsdb

import (
	"fmt"
	"sync"
	"time"
)

// createdQueue collects series as they are created, so the DB can write
// their records to the store's index soon after, in small batches: the
// index is persisted as series are created, not in one burst of millions
// of records at the next checkpoint (which, at 5M new series, made
// badger's compactions take 1.3 GB at once). A zero queue is disabled.
type createdQueue struct {
	mu      sync.Mutex
	enabled bool
	series  []*memSeries
}

func (q *createdQueue) enable() {
	q.mu.Lock()
	q.enabled = true
	q.mu.Unlock()
}

func (q *createdQueue) add(s *memSeries) {
	q.mu.Lock()
	if q.enabled {
		q.series = append(q.series, s)
	}
	q.mu.Unlock()
}

// take returns the queued series and empties the queue.
func (q *createdQueue) take() []*memSeries { return q.swap(nil) }

// swap returns the queued series and queues the next ones in spare's
// memory (cleared), so that a queue filled again every second does not
// grow a new slice from nothing each time.
func (q *createdQueue) swap(spare []*memSeries) []*memSeries {
	clear(spare)
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.series
	q.series = spare[:0]
	return s
}

// maxSpareQueue is the most series a spare queue keeps room for: a burst
// of millions must not pin its slice.
const maxSpareQueue = 1 << 16

// indexInterval is how often new series records are written to the store.
const indexInterval = time.Second

// indexLoop writes the records of new series every indexInterval until
// stop is closed. A failed write leaves the series to the next
// checkpoint, which writes every series the store lacks.
func (db *DB) indexLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(indexInterval)
	defer t.Stop()
	var w indexWriter
	var spare []*memSeries
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		created := db.head.created.swap(spare)
		if err := w.write(db, created); err != nil {
			db.logger.Warn("writing new series to the index failed; the next checkpoint retries", "err", err)
		}
		spare = nil
		if cap(created) <= maxSpareQueue {
			spare = created
		}
	}
}

// indexWriter appends new series' records to the series index file in
// batches.
type indexWriter struct {
	records recordWriter
	done    []*memSeries
}

func (w *indexWriter) write(db *DB, series []*memSeries) error {
	for len(series) > 0 {
		n := min(len(series), checkpointBatch)
		if err := w.writeBatch(db, series[:n]); err != nil {
			return err
		}
		series = series[n:]
	}
	return nil
}

func (w *indexWriter) writeBatch(db *DB, batch []*memSeries) error {
	w.done = w.done[:0]
	for _, s := range batch {
		s.mu.Lock()
		if !s.indexPersisted && !s.deleted {
			w.records.add(db.head.symbols, s, storedRecord(s, s.persistedMaxT))
			w.done = append(w.done, s)
		}
		s.mu.Unlock()
	}
	// Marked under the index's lock: a rewrite, which holds it, then
	// finds them persisted and writes them into the new file.
	err := w.records.write(db.index, db.head.symbols, func() {
		for _, s := range w.done {
			s.mu.Lock()
			s.indexPersisted = true
			s.mu.Unlock()
		}
	})
	clear(w.done)
	if err != nil {
		return fmt.Errorf("write series records: %w", err)
	}
	return nil
}
