//go:build !linux

package tsdb

import "os"

// mapSegment: elsewhere every journal read is a pread.
func mapSegment(*os.File, int64) []byte { return nil }

func unmapSegment([]byte) error { return nil }
