//go:build race

package ingest

// raceEnabled: under the race detector sync.Pool drops a random share of
// what is put back, so pooled buffers are allocated again now and then.
const raceEnabled = true
