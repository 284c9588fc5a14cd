package logthrottle

import (
	"fmt"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	th := New(10*time.Second, 4)
	t0 := time.Unix(1000, 0)
	f := func(key string, at time.Duration, wantOK bool, wantHeld int) {
		t.Helper()
		if ok, held := th.Allow(key, t0.Add(at)); ok != wantOK || held != wantHeld {
			t.Fatalf("%s at %s: %v %d, want %v %d", key, at, ok, held, wantOK, wantHeld)
		}
	}
	f("a", 0, true, 0)
	f("a", time.Second, false, 0)
	f("a", 2*time.Second, false, 0)
	f("b", 2*time.Second, true, 0) // keys are apart
	f("a", 10*time.Second, true, 2)
	f("a", 11*time.Second, false, 0)
}

// TestThrottleForgetsOldKeys: keys that churn do not grow the throttle
// past maxKeys plus those logged within one period.
func TestThrottleForgetsOldKeys(t *testing.T) {
	th := New(time.Second, 4)
	t0 := time.Unix(1000, 0)
	for i := range 1000 {
		th.Allow(fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second))
	}
	if n := len(th.last); n > 5 {
		t.Fatalf("%d keys kept", n)
	}
}
