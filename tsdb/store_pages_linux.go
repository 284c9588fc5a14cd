//go:build linux

package tsdb

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// pageOutSupported asks the kernel once, on a page of our own, whether it
// knows MADV_PAGEOUT (Linux 5.4 and later).
var pageOutSupported = func() bool {
	page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return false
	}
	defer unix.Munmap(page)
	return unix.Madvise(page, unix.MADV_PAGEOUT) == nil
}()

// pageOut advises the kernel to reclaim the pages of every table mapping.
// A range unmapped since /proc/self/maps was read (ENOMEM), or mapped
// again as something the advice does not apply to (EINVAL), is skipped.
func (p *tablePager) pageOut() error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	maps, err := tableMappings(f, p.dir, tableSuffix)
	f.Close()
	if err != nil {
		return fmt.Errorf("read /proc/self/maps: %w", err)
	}
	for _, m := range maps {
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_PAGEOUT)
		switch errno {
		case 0, unix.ENOMEM, unix.EINVAL:
		default:
			return fmt.Errorf("madvise %s: %w", m.path, errno)
		}
	}
	return nil
}
