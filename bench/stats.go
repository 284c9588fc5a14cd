package bench

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// stats are a run's counters, shared by all senders of one target. Every
// field is updated atomically; lastError is guarded by mu.
type stats struct {
	seriesWritten   atomic.Int64 // series of the members scraped at least once
	samplesSent     atomic.Int64 // samples in requests, counted once per request
	samplesAccepted atomic.Int64 // accepted by the target (2xx, or the written count of a 4xx)
	samplesDropped  atomic.Int64 // refused with a 4xx other than 429: not retried
	samplesFailed   atomic.Int64 // given up on at the end of the run, still unanswered
	netErrors       atomic.Int64 // attempts that got no HTTP response
	maxLagNanos     atomic.Int64 // the furthest any scrape ran behind its due time
	readingLagNanos atomic.Int64 // the same since the timeline's last reading
	byCode          [600]codeStats
	latency         latencyHist

	mu        sync.Mutex
	lastError map[int]string // guarded by mu: the last error body per status code
}

type codeStats struct {
	requests atomic.Int64 // attempts answered with this code
	retries  atomic.Int64 // attempts with this code that were retried
	dropped  atomic.Int64 // samples dropped on this code
}

func newStats() *stats { return &stats{lastError: map[int]string{}} }

func (s *stats) code(c int) *codeStats {
	if c < 0 || c >= len(s.byCode) {
		c = 0
	}
	return &s.byCode[c]
}

func (s *stats) observeLag(d time.Duration) {
	raise(&s.maxLagNanos, int64(d))
	raise(&s.readingLagNanos, int64(d))
}

// raise sets a to v if v is larger.
func raise(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

func (s *stats) noteError(code int, msg string) {
	s.mu.Lock()
	s.lastError[code] = msg
	s.mu.Unlock()
}

// snapshot is a copy of the counters at one moment; the difference of
// two is what happened in between.
type snapshot struct {
	at                               time.Time
	sent, accepted, dropped, failed  int64
	netErrors                        int64
	requests, retries, droppedByCode map[int]int64
	latency                          [latencyBuckets]uint64
}

func (s *stats) snapshot() snapshot {
	sn := snapshot{
		at: time.Now(), sent: s.samplesSent.Load(), accepted: s.samplesAccepted.Load(),
		dropped: s.samplesDropped.Load(), failed: s.samplesFailed.Load(), netErrors: s.netErrors.Load(),
		requests: map[int]int64{}, retries: map[int]int64{}, droppedByCode: map[int]int64{},
	}
	for c := range s.byCode {
		cs := &s.byCode[c]
		if n := cs.requests.Load(); n > 0 {
			sn.requests[c] = n
		}
		if n := cs.retries.Load(); n > 0 {
			sn.retries[c] = n
		}
		if n := cs.dropped.Load(); n > 0 {
			sn.droppedByCode[c] = n
		}
	}
	for i := range sn.latency {
		sn.latency[i] = s.latency.counts[i].Load()
	}
	return sn
}

// since returns the counters of b minus those of a (a taken earlier).
func (b snapshot) since(a snapshot) snapshot {
	d := snapshot{
		at: b.at, sent: b.sent - a.sent, accepted: b.accepted - a.accepted, dropped: b.dropped - a.dropped,
		failed: b.failed - a.failed, netErrors: b.netErrors - a.netErrors,
		requests: diffCodes(b.requests, a.requests), retries: diffCodes(b.retries, a.retries),
		droppedByCode: diffCodes(b.droppedByCode, a.droppedByCode),
	}
	for i := range d.latency {
		d.latency[i] = b.latency[i] - a.latency[i]
	}
	return d
}

func diffCodes(b, a map[int]int64) map[int]int64 {
	out := map[int]int64{}
	for c, n := range b {
		if n-a[c] > 0 {
			out[c] = n - a[c]
		}
	}
	return out
}

// rejected counts attempts answered with anything but 2xx.
func (d snapshot) rejected() int64 {
	var n int64
	for c, k := range d.requests {
		if c/100 != 2 {
			n += k
		}
	}
	return n + d.netErrors
}

// latencyHist is a log-linear histogram of request latencies: 8 buckets
// per power of two of nanoseconds, so a percentile is within 9%.
// Lock-free: every sender records into it.
type latencyHist struct {
	counts [latencyBuckets]atomic.Uint64
}

const latencyBuckets = 64 * 8

func latencyBucket(d time.Duration) int {
	ns := uint64(max(d, 1))
	exp := bits.Len64(ns) - 1
	if exp < 3 {
		return int(ns)
	}
	return exp<<3 | int(ns>>(exp-3)&7)
}

// latencyBucketUpper is the largest duration that falls in bucket i.
func latencyBucketUpper(i int) time.Duration {
	if i < 8 {
		return time.Duration(i)
	}
	exp, sub := i>>3, uint64(i&7)
	return time.Duration((8+sub+1)<<(exp-3) - 1)
}

func (h *latencyHist) observe(d time.Duration) { h.counts[latencyBucket(d)].Add(1) }

// quantile returns the q-quantile (0 < q <= 1) of the counts, as the
// upper bound of its bucket; 0 when there is nothing counted.
func quantile(counts *[latencyBuckets]uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= max(rank, 1) {
			return latencyBucketUpper(i)
		}
	}
	return latencyBucketUpper(latencyBuckets - 1)
}
