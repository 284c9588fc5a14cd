package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// The memory limit is what the node sizes itself to: GOMEMLIMIT, the
// head's ceiling and the in-flight write budget all derive from it. It is
// limits.memory_limit_bytes when set, else the lowest cgroup memory limit
// on the process's cgroup path (a container's limit), else the host's RAM:
// sizing from the host's RAM inside a container is how a node gets killed
// by the kernel long before the Go runtime sees any pressure.

// goMemLimitFraction of the memory limit becomes GOMEMLIMIT: the rest is
// for what the Go runtime does not count (thread stacks, cgo, the page
// cache of badger's files charged to the cgroup).
const goMemLimitFraction = 0.9

// detectMemoryLimit returns the memory this process may use and where the
// figure comes from, reading the files under root ("/" in production).
// It returns 0 when nothing can be read.
func detectMemoryLimit(root string) (limit int64, source string) {
	host := hostMemory(root)
	if cg, src := cgroupMemoryLimit(root); cg > 0 && (host == 0 || cg < host) {
		return cg, src
	}
	if host > 0 {
		return host, "/proc/meminfo MemTotal"
	}
	return 0, "unknown"
}

// hostMemory reads MemTotal from /proc/meminfo, in bytes.
func hostMemory(root string) int64 {
	data, err := os.ReadFile(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil || kb <= 0 {
			return 0
		}
		return kb << 10
	}
	return 0
}

// cgroupMemoryLimit returns the lowest memory limit set on the process's
// cgroup or an ancestor, for cgroup v2 (memory.max) or v1
// (memory.limit_in_bytes), or 0 when none is set. Inside a container the
// cgroup namespace makes the process's own cgroup the root of
// /sys/fs/cgroup, so the root's files are read too.
func cgroupMemoryLimit(root string) (int64, string) {
	data, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, ""
	}
	var best int64
	var source string
	consider := func(file string) {
		v, ok := readCgroupLimit(filepath.Join(root, file))
		if ok && v > 0 && (best == 0 || v < best) {
			best, source = v, "/"+file
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = "sys/fs/cgroup", "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + parts[2]); ; p = path.Dir(p) {
			consider(path.Join(dir, p, file))
			if p == "/" {
				break
			}
		}
	}
	return best, source
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readCgroupLimit reads a memory.max or memory.limit_in_bytes file: "max"
// and v1's "no limit" (a page-rounded MaxInt64) mean none.
func readCgroupLimit(file string) (int64, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v >= math.MaxInt64/2 {
		return 0, false
	}
	return v, true
}

// setGoMemLimit sets GOMEMLIMIT to goMemLimitFraction of memLimit unless
// the GOMEMLIMIT environment variable is set, and returns the limit in
// force (0 if none), to which the write path's memory watermark is
// relative.
func setGoMemLimit(memLimit int64) (int64, string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
			return l, "GOMEMLIMIT environment variable"
		}
		return 0, "GOMEMLIMIT environment variable (off)"
	}
	if memLimit <= 0 {
		return 0, "no memory limit known"
	}
	l := int64(float64(memLimit) * goMemLimitFraction)
	debug.SetMemoryLimit(l)
	return l, fmt.Sprintf("%.0f%% of limits.memory_limit_bytes", goMemLimitFraction*100)
}

// defaultInflightLimits sizes the write path's in-flight budget from the
// memory limit: an eighth of it for bodies and what they decode into
// (the head takes half, see defaultHeadLimits), at least 64 MiB, and one
// request slot per 4 MiB of that, between 16 and 1024. Realistic requests
// hold 1 to 3 MiB each.
func defaultInflightLimits(memBytes int64) (requests, bytes int) {
	b := int64(256 << 20) // memory unknown: ingest.DefaultLimits' figure
	if memBytes > 0 {
		b = max(64<<20, memBytes/8)
	}
	b = min(b, math.MaxInt32)
	return int(min(max(b/(4<<20), 16), 1024)), int(b)
}
