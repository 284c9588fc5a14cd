package ring

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// unsafeString aliases b, as a zero-copy decoder hands out label values.
func unsafeString(b []byte) string { return unsafe.String(&b[0], len(b)) }

// fastPathTracker returns a tracker that knows n clusters, each with
// replica a elected just now in etcd; no etcd is needed for the fast path.
func fastPathTracker(tb testing.TB, n int) (*HATracker, []string) {
	tb.Helper()
	clock := newFakeClock()
	tr, err := NewHATracker(nil, haTestOpts(clock))
	if err != nil {
		tb.Fatal(err)
	}
	clusters := make([]string, n)
	tr.mu.Lock()
	for i := range clusters {
		clusters[i] = fmt.Sprintf("etcd-cluster-%06d", i)
		tr.applyLocked(clusters[i], &haState{replica: "a", electedAt: clock.unixMilli(), lastSeen: clock.unixMilli(), modRev: int64(i + 1)})
	}
	tr.mu.Unlock()
	return tr, clusters
}

// TestHAFastPathAllocs: the elected replica with a fresh record, and the
// other replica while it is fresh, cost no allocation.
func TestHAFastPathAllocs(t *testing.T) {
	tr, clusters := fastPathTracker(t, 100)
	ctx := context.Background()
	for _, tc := range []struct {
		replica string
		want    bool
	}{{"a", true}, {"b", false}} {
		allocs := testing.AllocsPerRun(1000, func() {
			if ok, err := tr.Accept(ctx, clusters[7], tc.replica, 0); ok != tc.want || err != nil {
				t.Fatalf("Accept(%s) = %v %v", tc.replica, ok, err)
			}
		})
		if allocs != 0 {
			t.Fatalf("fast path of replica %s: %v allocations per call, want 0", tc.replica, allocs)
		}
	}
}

func BenchmarkHAAcceptFastPath(b *testing.B) {
	for _, n := range []int{1, 10000} {
		tr, clusters := fastPathTracker(b, n)
		ctx := context.Background()
		b.Run(fmt.Sprintf("clusters=%d/replica=elected", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, _ := tr.Accept(ctx, clusters[i%n], "a", 0); !ok {
					b.Fatal("refused")
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("clusters=%d/replica=other", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, _ := tr.Accept(ctx, clusters[i%n], "b", 0); ok {
					b.Fatal("accepted")
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("clusters=%d/replica=elected/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if ok, _ := tr.Accept(ctx, clusters[i%n], "a", 0); !ok {
						b.Fatal("refused")
					}
					i++
				}
			})
		})
	}
}

// BenchmarkHATrackerMemory reports the heap one followed cluster costs.
func BenchmarkHATrackerMemory(b *testing.B) {
	const n = 100000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr, _ := fastPathTracker(b, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/cluster")
		runtime.KeepAlive(tr)
	}
}

// BenchmarkHAAcceptSlowPath measures the etcd txns of Accept on an
// embedded etcd: electing a new cluster, and refreshing last_seen.
func BenchmarkHAAcceptSlowPath(b *testing.B) {
	cl := etcdtest.Start(b, etcdtest.Options{Members: 1})
	clock := newFakeClock()
	o := haTestOpts(clock)
	o.MaxClusters = 1 << 30
	o.MaxCreatesPerSecond = 1 << 30
	tr, err := NewHATracker(cl.Client(b), o)
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(tr.Close)
	ctx := context.Background()
	b.Run("op=create", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if ok, err := tr.Accept(ctx, fmt.Sprintf("create-%d", i), "a", 0); !ok || err != nil {
				b.Fatal(ok, err)
			}
			i++
		}
	})
	b.Run("op=refresh", func(b *testing.B) {
		if ok, _ := tr.Accept(ctx, "refresh", "a", 0); !ok {
			b.Fatal("refused")
		}
		for b.Loop() {
			clock.add(time.Duration(tr.refreshMs) * time.Millisecond)
			if ok, err := tr.Accept(ctx, "refresh", "a", 0); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
		if w := testutil.ToFloat64(tr.metrics.writes.WithLabelValues("refresh")); w < float64(b.N) {
			b.Fatalf("%v refresh writes for %d calls", w, b.N)
		}
	})
}
