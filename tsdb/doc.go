// Package tsdb owns the time-series store: the series index (symbols and
// postings), the head of in-memory XOR chunks, the WAL and its
// checkpoints, the series index file of series records, badger for
// persisted chunks, head snapshots, recovery after a crash, retention, the eviction of inactive
// series, metric metadata, and the queriers that read all of it.
//
// The package imports nothing of the project: label sets are
// github.com/prometheus/prometheus/model/labels.Labels and samples are read
// through github.com/prometheus/prometheus/tsdb/chunkenc iterators.
package tsdb
