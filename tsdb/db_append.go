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
	series  []walSeries
	samples []walSample
	logged  []*memSeries
	builder labels.ScratchBuilder
}

var dbAppenderPool = sync.Pool{New: func() any { return &dbAppender{builder: labels.NewScratchBuilder(16)} }}

func (a *dbAppender) Append(lset labels.Labels, t int64, v float64) error {
	return a.ha.Append(lset, t, v)
}

func (a *dbAppender) AppendSeries(lset labels.Labels, t int64, v float64) (SeriesRef, error) {
	return a.ha.AppendSeries(lset, t, v)
}

func (a *dbAppender) AppendRef(ref SeriesRef, t int64, v float64) (bool, error) {
	return a.ha.AppendRef(ref, t, v)
}

// Commit writes one WAL record (the series not yet logged, then the
// samples) and applies the samples to the head. A WAL error is returned
// and nothing is applied: the client retries.
func (a *dbAppender) Commit() error {
	defer a.release()
	if len(a.ha.samples) == 0 {
		a.ha.Rollback()
		return nil
	}
	for s := range a.ha.newest {
		if !s.logged.Load() {
			a.series = append(a.series, walSeries{ref: s.ref, lset: a.db.head.symbols.labels(&a.builder, s.syms)})
			a.logged = append(a.logged, s)
		}
	}
	for _, p := range a.ha.samples {
		a.samples = append(a.samples, walSample{ref: p.series.ref, t: p.t, v: p.v})
	}
	a.rec = appendWALSamples(appendWALSeries(a.rec[:0], a.series), a.samples)

	a.db.commitMu.RLock()
	defer a.db.commitMu.RUnlock()
	if err := a.db.wal.log(a.rec); err != nil {
		a.ha.Rollback()
		return err
	}
	for _, s := range a.logged {
		s.logged.Store(true)
	}
	return a.ha.Commit()
}

func (a *dbAppender) Rollback() {
	a.ha.Rollback()
	a.release()
}

func (a *dbAppender) release() {
	clear(a.series)
	clear(a.logged)
	a.series, a.samples, a.logged = a.series[:0], a.samples[:0], a.logged[:0]
	if cap(a.rec) > 1<<20 {
		a.rec = nil // one huge batch must not pin its buffer
	}
	a.db, a.ha = nil, nil
	dbAppenderPool.Put(a)
}
