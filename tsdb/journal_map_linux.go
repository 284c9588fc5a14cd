//go:build linux

package tsdb

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapSegment maps size bytes of a journal segment for reading (for the
// segment being written, more than the file holds yet), or returns nil
// when it cannot (the segment is then read with pread). Reads
// of a series' chain jump between segments, so the kernel is told not to
// read ahead: a fault brings in the page a record is on, not its
// neighbours, which would only swell the node's resident set.
func mapSegment(f *os.File, size int64) []byte {
	if size <= int64(len(journalMagic)) || size != int64(int(size)) {
		return nil
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	_ = unix.Madvise(data, unix.MADV_RANDOM) // advice; a kernel without it reads ahead
	return data
}

func unmapSegment(data []byte) error {
	if data == nil {
		return nil
	}
	return unix.Munmap(data)
}
