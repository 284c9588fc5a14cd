package bench

import (
	"net/http"
	"strconv"
	"time"
)

// backoff is the retry schedule of one request, as Prometheus's queue
// manager keeps it: the first retry waits min, each wait doubles the
// next up to max, and a Retry-After from the target replaces the wait
// (and the doubling continues from it).
type backoff struct {
	min, max time.Duration
	next     time.Duration // the wait of the coming retry; 0 before the first
}

func newBackoff(min, max time.Duration) backoff { return backoff{min: min, max: max} }

// wait returns how long to sleep before the coming retry, given the
// Retry-After of the failed attempt (0 when it had none).
func (b *backoff) wait(retryAfter time.Duration) time.Duration {
	d := b.next
	if d == 0 {
		d = b.min
	}
	if retryAfter > 0 {
		d = retryAfter
	}
	b.next = min(2*d, b.max)
	return d
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// 0 when absent, malformed or in the past.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
