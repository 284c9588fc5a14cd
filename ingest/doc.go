// Package ingest owns the write path before storage: remote-write decoding
// (1.0, later 2.0), validation, limits and backpressure; ingest/ring (later)
// owns membership, hashing, replication and forwarding.
package ingest
