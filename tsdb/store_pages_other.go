//go:build !linux

package tsdb

// pageOutSupported: MADV_PAGEOUT is Linux's; elsewhere badger's table
// pages stay resident until the kernel reclaims them.
const pageOutSupported = false

func (p *tablePager) pageOut() error { return nil }
