package tsdb

import (
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// Appender returns an appender whose Commit logs to the WAL before the
// samples become visible.
func (db *DB) Appender() Appender {
	a := dbAppenderPool.Get().(*dbAppender)
	a.db, a.ha = db, db.head.Appender().(*headAppender)
	return a
}

type dbAppender struct {
	db      *DB
	ha      *headAppender
	rec     []byte
	samples []walSample
	logged  []*memSeries // touched series not yet logged, whose records this commit writes
}

var dbAppenderPool = sync.Pool{New: func() any { return &dbAppender{} }}

func (a *dbAppender) Append(lset labels.Labels, t int64, v float64) error {
	return a.ha.Append(lset, t, v)
}

func (a *dbAppender) AppendSeries(lset labels.Labels, t int64, v float64) (SeriesRef, error) {
	return a.ha.AppendSeries(lset, t, v)
}

func (a *dbAppender) AppendRef(ref SeriesRef, t int64, v float64) (bool, error) {
	return a.ha.AppendRef(ref, t, v)
}

func (a *dbAppender) Lookup(hash uint64, ls []labels.Label) SeriesRef {
	return a.ha.Lookup(hash, ls)
}

func (a *dbAppender) Prefetch(hashes []uint64) { a.ha.Prefetch(hashes) }

// Commit writes one WAL record (the series not yet logged, then the
// samples) and applies the samples to the head, then waits for the fsync
// the sync mode promises. A WAL write error is returned and nothing is
// applied; after an fsync error the samples are in the head but not
// acknowledged. Either error wraps ErrWALFailed: the client retries.
func (a *dbAppender) Commit() error {
	defer a.release()
	if len(a.ha.samples) == 0 {
		a.ha.Rollback()
		return nil
	}
	for _, s := range a.ha.taken.series {
		if !s.logged.Load() {
			a.logged = append(a.logged, s)
		}
	}
	for _, p := range a.ha.samples {
		a.samples = append(a.samples, walSample{ref: p.series.ref, t: p.t, v: p.v})
	}
	a.rec = appendWALSamples(appendWALSeriesSyms(a.rec[:0], a.logged, a.db.head.symbols.load()), a.samples)

	a.db.commitMu.RLock()
	seq, err := a.db.wal.write(a.rec)
	if err != nil {
		a.db.commitMu.RUnlock()
		a.ha.Rollback()
		return err
	}
	for _, s := range a.logged {
		s.logged.Store(true)
	}
	err = a.ha.Commit()
	a.db.commitMu.RUnlock()
	if err != nil {
		return err
	}
	return a.db.wal.waitSynced(seq)
}

func (a *dbAppender) Rollback() {
	a.ha.Rollback()
	a.release()
}

func (a *dbAppender) release() {
	clear(a.logged)
	a.samples, a.logged = a.samples[:0], a.logged[:0]
	if cap(a.rec) > 1<<20 {
		a.rec = nil // one huge batch must not pin its buffer
	}
	a.db, a.ha = nil, nil
	dbAppenderPool.Put(a)
}
