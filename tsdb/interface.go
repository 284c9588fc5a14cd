package tsdb

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
)

// SeriesRef identifies a series in the head for its lifetime. Refs are
// allocated in increasing order and never reused, so postings lists sorted
// by ref are sorted by creation time too.
type SeriesRef uint64

// Appendable hands out appenders. One appender serves one write request.
type Appendable interface {
	Appender() Appender
}

// Appender adds samples to series and makes them visible on Commit.
// An Appender is not safe for concurrent use.
type Appender interface {
	// Append buffers one sample of the series lset, creating the series if
	// it is new. lset is read only during the call: the caller may reuse
	// its memory afterwards. A returned error refuses this sample only; it
	// is one of ErrOutOfOrderSample, ErrTooOldSample or
	// ErrDuplicateSampleForTimestamp. Duplicates of a stored sample (same
	// timestamp, same value bits) are accepted and ignored.
	Append(lset labels.Labels, t int64, v float64) error
	// AppendSeries is Append that also returns the series' ref, for
	// AppendRef to use with later samples of the same series.
	AppendSeries(lset labels.Labels, t int64, v float64) (SeriesRef, error)
	// AppendRef appends a sample to the series ref. It skips the lookup
	// by labels; ok is false (and nothing is appended) when the ref is no
	// longer a series of the store, and the caller appends by labels.
	AppendRef(ref SeriesRef, t int64, v float64) (ok bool, err error)
	// Lookup returns the ref of the series whose labels are ls (sorted
	// by name, as a labels.Labels holds them) for AppendRef, or 0 when
	// the store holds no such series in memory (a new one, or one evicted
	// to the store, which Append brings back). It lets a caller skip
	// validating the labels of series it already stored, and building
	// them: ls may be the labels as a request decoded them. hash is
	// labels.New(ls...).Hash(), which a caller that prefetched has
	// computed already.
	Lookup(hash uint64, ls []labels.Label) SeriesRef
	// Prefetch tells the appender that label sets with these hashes
	// (labels.Labels.Hash) are about to be looked up or appended: it
	// brings what their lookups read into the CPU caches all at once,
	// where lookup after lookup would wait for each miss in turn. It
	// changes nothing and may be skipped.
	Prefetch(hashes []uint64)
	// Commit makes the buffered samples visible to queriers. The Appender
	// must not be used after Commit or Rollback.
	Commit() error
	// Rollback drops the buffered samples.
	Rollback()
}

// Queryable opens queriers over a time range.
type Queryable interface {
	// Querier returns a Querier over samples with mint <= t <= maxt.
	Querier(mint, maxt int64) (Querier, error)
}

// Querier reads series, labels and samples over its time range.
// Matchers follow Prometheus semantics: a matcher that matches the empty
// string also matches series without that label.
type Querier interface {
	// Select returns the series matching all matchers, sorted by labels,
	// with their samples in [mint, maxt] in time order.
	Select(ctx context.Context, matchers ...*labels.Matcher) SeriesSet
	// SelectUnsorted is Select without the sort by labels, for callers
	// to whom order does not matter (the query engine): on hundreds of
	// thousands of series the sort costs as much as reading them.
	SelectUnsorted(ctx context.Context, matchers ...*labels.Matcher) SeriesSet
	// LabelNames returns the sorted label names of series matching the
	// matchers (all series when none are given).
	LabelNames(ctx context.Context, matchers ...*labels.Matcher) ([]string, error)
	// LabelValues returns the sorted values of label name among series
	// matching the matchers (all series when none are given).
	LabelValues(ctx context.Context, name string, matchers ...*labels.Matcher) ([]string, error)
	Close() error
}

// SeriesSet iterates over series. A Series from At stays valid after Next
// and until the Querier is closed, and the Iterators of different Series
// may be used from different goroutines: the query engine decodes series
// in parallel.
type SeriesSet interface {
	Next() bool
	At() Series
	Err() error
}

// Series is one series with its samples in the querier's range.
type Series interface {
	Labels() labels.Labels
	// Iterator returns an iterator over the samples; it may reuse it.
	Iterator(reuse Iterator) Iterator
}

// Iterator walks the float samples of a series in time order. The store
// holds float samples only, so this is chunkenc.Iterator without the
// histogram half (and without its Seek, whose name go vet reserves for
// io.Seeker's signature).
type Iterator interface {
	// Next advances to the next sample and reports whether there is one.
	Next() bool
	// SeekTo advances to the first sample at or after t, unless the
	// current one already is, and reports whether there is one.
	SeekTo(t int64) bool
	// At returns the current sample.
	At() (t int64, v float64)
	// Err returns the error that ended the iteration, if any.
	Err() error
}
