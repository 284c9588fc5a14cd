package bench

import (
	"syscall"
	"time"
)

// ownCPU returns the user+system CPU time this process has used, so the
// harness can report its own cost per sample.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
