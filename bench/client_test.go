package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func TestBackoffSchedule(t *testing.T) {
	for _, tc := range []struct {
		name        string
		retryAfters []time.Duration // per failed attempt, 0 for none
		want        []time.Duration
	}{
		{"doubles from min to max", make([]time.Duration, 10), []time.Duration{
			30 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond, 240 * time.Millisecond, 480 * time.Millisecond,
			960 * time.Millisecond, 1920 * time.Millisecond, 3840 * time.Millisecond, 5 * time.Second, 5 * time.Second}},
		{"Retry-After replaces the wait and doubling goes on from it", []time.Duration{0, 2 * time.Second, 0, 0}, []time.Duration{
			30 * time.Millisecond, 2 * time.Second, 4 * time.Second, 5 * time.Second}},
		{"a long Retry-After is honoured beyond max", []time.Duration{10 * time.Second, 0}, []time.Duration{
			10 * time.Second, 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackoff(30*time.Millisecond, 5*time.Second)
			var got []time.Duration
			for _, ra := range tc.retryAfters {
				got = append(got, b.wait(ra))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("waits %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"0", 0},
		{"-4", 0},
		{"soon", 0},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		h := http.Header{}
		if tc.value != "" {
			h.Set("Retry-After", tc.value)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("Retry-After %q: %v, want %v", tc.value, got, tc.want)
		}
	}
}

// scriptedTarget answers write requests with the scripted replies in
// order, then 204, and keeps what it was sent.
type scriptedTarget struct {
	mu      sync.Mutex
	replies []reply
	got     []*http.Request
	samples []int
}

type reply struct {
	code       int
	retryAfter string
	written    int // X-Prometheus-Remote-Write-Samples-Written, when > 0
}

func (s *scriptedTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(raw)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, r)
	s.samples = append(s.samples, len(wr.Timeseries))
	rep := reply{code: http.StatusNoContent}
	if len(s.replies) > 0 {
		rep, s.replies = s.replies[0], s.replies[1:]
	}
	s.mu.Unlock()
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if rep.written > 0 {
		w.Header().Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(rep.written))
	}
	w.WriteHeader(rep.code)
}

// TestWriteClientRetries runs the client against a test server that
// answers 429 (with and without Retry-After), 503 and 400, and checks
// what was retried, after which waits, and what was counted.
func TestWriteClientRetries(t *testing.T) {
	const n = 10 // samples per request
	for _, tc := range []struct {
		name                      string
		replies                   []reply
		waits                     []time.Duration
		attempts                  int
		accepted, dropped, failed int64
		retries                   map[int]int64
	}{
		{"accepted at once", nil, nil, 1, n, 0, 0, map[int]int64{}},
		{"429 without Retry-After backs off exponentially", []reply{{code: 429}, {code: 429}, {code: 429}},
			[]time.Duration{30 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond}, 4, n, 0, 0, map[int]int64{429: 3}},
		{"429 with Retry-After waits as told", []reply{{code: 429, retryAfter: "2"}, {code: 429}},
			[]time.Duration{2 * time.Second, 4 * time.Second}, 3, n, 0, 0, map[int]int64{429: 2}},
		{"503 is retried, with Retry-After", []reply{{code: 503}, {code: 503, retryAfter: "1"}, {code: 500}},
			[]time.Duration{30 * time.Millisecond, time.Second, 2 * time.Second}, 4, n, 0, 0, map[int]int64{503: 2, 500: 1}},
		{"400 is dropped, not retried", []reply{{code: 400}}, nil, 1, 0, n, 0, map[int]int64{}},
		{"400 keeps the samples the target wrote", []reply{{code: 400, written: 7}}, nil, 1, 7, 3, 0, map[int]int64{}},
		{"413 is dropped", []reply{{code: 413}}, nil, 1, 0, n, 0, map[int]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := &scriptedTarget{replies: tc.replies}
			srv := httptest.NewServer(target)
			defer srv.Close()
			st := newStats()
			o := DefaultOptions().Send
			c := newWriteClient(srv.URL+"/api/v1/write", srv.Client(), o, st)
			var waits []time.Duration
			c.sleep = func(_ context.Context, d time.Duration) bool { waits = append(waits, d); return true }
			c.write(context.Background(), encodedRequest(t, n), n)

			if !slices.Equal(waits, tc.waits) || len(target.got) != tc.attempts {
				t.Fatalf("%d attempts after waits %v, want %d after %v", len(target.got), waits, tc.attempts, tc.waits)
			}
			sn := st.snapshot()
			if sn.sent != n || sn.accepted != tc.accepted || sn.dropped != tc.dropped || sn.failed != tc.failed {
				t.Fatalf("sent %d accepted %d dropped %d failed %d, want %d %d %d %d",
					sn.sent, sn.accepted, sn.dropped, sn.failed, n, tc.accepted, tc.dropped, tc.failed)
			}
			if len(sn.retries) != len(tc.retries) {
				t.Fatalf("retries %v, want %v", sn.retries, tc.retries)
			}
			for code, k := range tc.retries {
				if sn.retries[code] != k {
					t.Fatalf("retries %v, want %v", sn.retries, tc.retries)
				}
			}
			for _, r := range target.got {
				if r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("Content-Encoding") != "snappy" ||
					r.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
					t.Fatalf("headers %v", r.Header)
				}
			}
		})
	}
}

// TestWriteClientGivesUpWhenTheRunEnds: a target that keeps answering
// 503 holds the request until the context ends; its samples then count
// as failed, not accepted nor dropped.
func TestWriteClientGivesUpWhenTheRunEnds(t *testing.T) {
	target := &scriptedTarget{replies: []reply{{code: 503}, {code: 503}, {code: 503}}}
	srv := httptest.NewServer(target)
	defer srv.Close()
	st := newStats()
	c := newWriteClient(srv.URL, srv.Client(), DefaultOptions().Send, st)
	ctx, cancel := context.WithCancel(context.Background())
	tries := 0
	c.sleep = func(context.Context, time.Duration) bool {
		tries++
		if tries == 2 {
			cancel()
			return false
		}
		return true
	}
	c.write(ctx, encodedRequest(t, 4), 4)
	if sn := st.snapshot(); sn.failed != 4 || sn.accepted != 0 || sn.retries[503] != 2 {
		t.Fatalf("failed %d accepted %d retries %v", sn.failed, sn.accepted, sn.retries)
	}
}

// encodedRequest returns a snappy remote-write body of n series.
func encodedRequest(t *testing.T, n int) []byte {
	t.Helper()
	var wr prompb.WriteRequest
	for i := range n {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "i", Value: strconv.Itoa(i)}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: 1}},
		})
	}
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}
