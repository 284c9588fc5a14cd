package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestRingHADedup: two scrapers of an HA pair (same series, __replica__
// a and b) write through two different nodes; one copy is stored, from
// the elected replica, without the replica label. When a stops, b's
// samples are taken after the failover timeout.
func TestRingHADedup(t *testing.T) {
	h := newRingHarness(t, "  ha_dedup: {enabled: true, failover_timeout: 2s}\n")
	n0, n1 := h.start("n0", 2), h.start("n1", 2)
	waitActive(t, n0.url, 30*time.Second, "n0", "n1")
	waitActive(t, n1.url, 30*time.Second, "n0", "n1")
	send := func(n *ringProc, replica string, v float64) {
		t.Helper()
		body := seriesBody("ha_test", 0, 20, time.Now().UnixMilli(), v,
			prompb.Label{Name: "cluster", Value: "c1"}, prompb.Label{Name: "__replica__", Value: replica})
		if code, msg := ringWrite(n.url, body); code != http.StatusNoContent {
			t.Fatalf("write of replica %s through %s: %d %s", replica, n.name, code, msg)
		}
	}
	// a is seen first, and is elected.
	send(n0, "a", 1)
	for range 10 {
		send(n0, "a", 1)
		send(n1, "b", 2)
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range []*ringProc{n0, n1} {
		if got := instant(t, n.url, `count(ha_test)`); got != "20" {
			t.Fatalf("%s: %s series of ha_test, want 20 (one copy)", n.name, got)
		}
		if got := instant(t, n.url, `max(max_over_time(ha_test[10m]))`); got != "1" {
			t.Fatalf("%s: max value %s while a is elected, want 1 (only a's samples)", n.name, got)
		}
		if got := instant(t, n.url, `count({__replica__!=""})`); got != "" {
			t.Fatalf("%s: %s series keep the replica label", n.name, got)
		}
	}
	// a stops: b takes over after the failover timeout.
	failover := time.Now()
	waitFor(t, 30*time.Second, "b's samples after the failover", func() bool {
		send(n1, "b", 2)
		return instant(t, n0.url, `max(max_over_time(ha_test[10m]))`) == "2"
	})
	if d := time.Since(failover); d < time.Second {
		t.Errorf("b was taken %s after a stopped, well before the 2s failover timeout", d)
	}
	// a comes back: b stays elected while it keeps sending.
	send(n0, "a", 3)
	send(n1, "b", 2)
	if got := instant(t, n1.url, `max(max_over_time(ha_test[10m]))`); got != "2" {
		t.Fatalf("a's sample was stored after b took over: max %s", got)
	}
}

// instant runs an instant query on one node and returns the value of its
// single sample ("" when the result is empty).
func instant(t *testing.T, base, q string) string {
	t.Helper()
	v := url.Values{"query": {q}, "time": {strconv.FormatInt(time.Now().Unix()+1, 10)}}
	code, body := httpGet(base + "/api/v1/query?" + v.Encode())
	if code != http.StatusOK {
		t.Fatalf("query %s: %d %s", q, code, body)
	}
	_, rest, ok := strings.Cut(body, `"value":[`)
	if !ok {
		return ""
	}
	_, rest, _ = strings.Cut(rest, `,"`)
	val, _, _ := strings.Cut(rest, `"`)
	return val
}
