// Package tsdb owns the time-series store: the series index (symbols and
// postings), the head of in-memory XOR chunks, and the queriers that read
// them. Later it also owns the WAL, badger persistence and retention.
//
// The package imports nothing of the project: label sets are
// github.com/prometheus/prometheus/model/labels.Labels and samples are read
// through github.com/prometheus/prometheus/tsdb/chunkenc iterators.
package tsdb
