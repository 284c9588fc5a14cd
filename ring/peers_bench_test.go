package ring

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
)

// cpuTime is the CPU time (user + system) of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkForward forwards bodies of 1,000 series × 1 sample (real
// remote write 1.0, snappy) to a loopback peer that reads and snappy-
// decodes them. cpu-µs/sample is the whole process's CPU (sender and
// peer, both here) per forwarded sample; p50-ms and p99-ms the latency
// of one Forward; conc is the number of Forwards in flight at once.
func BenchmarkForward(b *testing.B) {
	const series = 1000
	peer := startPeer(b, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			_, err = snappy.Decode(nil, body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	body := writeBody(b, series)
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			p, _ := newTestPeers(b, nil)
			var (
				mu    sync.Mutex
				lat   []time.Duration
				count int
			)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for range conc {
				wg.Go(func() {
					var mine []time.Duration
					for next.Add(1) <= int64(b.N) {
						start := time.Now()
						if err := p.Forward(context.Background(), peer, body, series); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					lat = append(lat, mine...)
					count += len(mine)
					mu.Unlock()
				})
			}
			wg.Wait()
			b.StopTimer()
			cpu := cpuTime(b) - cpu0
			if count == 0 {
				return
			}
			slices.Sort(lat)
			b.ReportMetric(float64(cpu.Microseconds())/float64(count*series), "cpu-µs/sample")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkReplication tracks the quorum of a request of 10,000 series
// with RF 3: Expect for each, three owners' Done over their batches, Wait.
func BenchmarkReplication(b *testing.B) {
	const series, rf = 10000, 3
	// Each series is owned by 3 of 4 nodes; each node gets its share as
	// one batch, as the ingest side sends one body per peer.
	batches := make([][]int32, 4)
	for i := range series {
		for o := range rf {
			n := (i + o) % 4
			batches[n] = append(batches[n], int32(i))
		}
	}
	names := []string{"node-0", "node-1", "node-2", "node-3"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r := NewReplication(series, Quorum(rf))
		for i := range series {
			r.Expect(i, rf)
		}
		for n, batch := range batches {
			r.Done(batch, names[n], nil)
		}
		if err := r.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series), "ns/series")
}
