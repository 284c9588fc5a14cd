package tsdb

import (
	"os"
	"strconv"
	"testing"
)

// benchSeries is the number of series a scale benchmark loads:
// ETCDGATE_BENCH_SERIES when set, else def. Effects that depend on the
// working set outgrowing the CPU caches (hash lookups, pointer chasing)
// only show at a million series and more.
func benchSeries(b *testing.B, def int) int {
	v := os.Getenv("ETCDGATE_BENCH_SERIES")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("ETCDGATE_BENCH_SERIES=%q: want a positive count", v)
	}
	return n
}
