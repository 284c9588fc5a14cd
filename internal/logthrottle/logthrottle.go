// Package logthrottle keeps log lines that can fire per request or per
// run from flooding the log: one line per key per period gets through,
// and the lines held back are counted for the next one that does.
package logthrottle

import (
	"sync"
	"time"
)

// Throttle is safe for concurrent use.
type Throttle struct {
	period  time.Duration // immutable
	maxKeys int           // immutable

	mu         sync.Mutex
	last       map[string]time.Time // guarded by mu
	suppressed map[string]int       // guarded by mu
}

// New returns a throttle of one line per key per period. Past maxKeys
// keys, those not logged for a period are forgotten, so that keys that
// churn (targets, clusters) cannot grow it without bound.
func New(period time.Duration, maxKeys int) *Throttle {
	return &Throttle{period: period, maxKeys: maxKeys, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

// Allow reports whether a line for key may be logged at now, and how
// many were held back since the last one that was.
func (t *Throttle) Allow(key string, now time.Time) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, seen := t.last[key]; seen && now.Sub(last) < t.period {
		t.suppressed[key]++
		return false, 0
	}
	suppressed = t.suppressed[key]
	delete(t.suppressed, key)
	t.last[key] = now
	if len(t.last) > t.maxKeys {
		for k, at := range t.last {
			if now.Sub(at) >= t.period {
				delete(t.last, k)
				delete(t.suppressed, k)
			}
		}
	}
	return true, suppressed
}
