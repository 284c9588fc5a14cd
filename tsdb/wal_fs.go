package tsdb

import (
	"os"
)

// SegmentFile is what the WAL needs of an open segment file. It is the
// seam through which tests inject write and sync failures (ENOSPC, EIO)
// and block an fsync to observe who waits for it.
type SegmentFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Close() error
}

// WALFS is the file system the WAL creates and removes its segments in,
// and the head snapshot is renamed into place in. SyncDir makes a
// directory's entries (files created, renamed, removed) durable: without
// it, a power cut can lose a segment whose data was fsynced, because its
// name was not.
type WALFS interface {
	// Create opens name for appending, creating it if needed.
	Create(name string) (SegmentFile, error)
	Remove(name string) error
	SyncDir(dir string) error
}

// OSFS is the real file system.
type OSFS struct{}

// Create opens name for appending, creating it if needed.
func (OSFS) Create(name string) (SegmentFile, error) {
	return os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// Remove removes name.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// SyncDir fsyncs the directory dir.
func (OSFS) SyncDir(dir string) error { return syncDir(dir) }
