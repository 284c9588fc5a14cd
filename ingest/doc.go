// Package ingest owns the write path before storage: remote-write
// decoding (1.0 and 2.0, with metadata), validation, relabeling through
// the relabel package, per-request and per-tenant limits, backpressure
// (429 with Retry-After), collection-completeness counting by target, and
// in a ring the placement of each series on its owners, the forwarding of
// their shares and the write quorum (ring.go), with HA-pair dedup.
package ingest
