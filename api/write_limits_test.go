package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/tsdb"
)

// newLimitedEnv is a test API whose ingester has the given limits and
// memory limit (0: none).
func newLimitedEnv(t *testing.T, lim ingest.Limits, memoryLimit int64) (*testEnv, *ingest.Ingester) {
	t.Helper()
	e := newTestEnv(t)
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(head, ingest.Options{Limits: lim, MemoryLimit: memoryLimit, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	e.head = head
	e.api.SetBackend(in, head)
	return e, in
}

// postFull is post that also returns the response headers.
func (e *testEnv) postFull(body []byte) (int, http.Header, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.server.URL+"/api/v1/write", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestWriteOverloadAnswers429: past the in-flight request or byte budget,
// or under memory pressure, a write is answered 429 with Retry-After at
// once, and stores nothing; once the budget frees, writes pass again.
// Requests over a per-request limit are 413 (permanent).
func TestWriteOverloadAnswers429(t *testing.T) {
	body := encode(t, series(one(1), "__name__", "up", "job", "etcd"))
	t.Run("requests", func(t *testing.T) {
		lim := ingest.DefaultLimits()
		lim.MaxInflightWriteRequests = 2
		e, in := newLimitedEnv(t, lim, 0)
		a1, err1 := in.Admit(10)
		a2, err2 := in.Admit(10)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		code, hdr, msg := e.postFull(body)
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" || !strings.Contains(msg, "max_inflight_write_requests") {
			t.Fatalf("with every slot taken: %d Retry-After %q %q", code, hdr.Get("Retry-After"), msg)
		}
		if n := e.head.NumSeries(); n != 0 {
			t.Fatalf("a refused write stored %d series", n)
		}
		a1.Release()
		a2.Release()
		if code, _, msg := e.postFull(body); code != http.StatusNoContent {
			t.Fatalf("after release: %d %s", code, msg)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		lim := ingest.DefaultLimits()
		lim.MaxCompressedBodyBytes = 1 << 20
		lim.MaxInflightWriteBytes = 1 << 20
		e, in := newLimitedEnv(t, lim, 0)
		a, err := in.Admit(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		code, hdr, msg := e.postFull(body)
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "max_inflight_write_bytes") {
			t.Fatalf("with the byte budget taken: %d Retry-After %q %q", code, hdr.Get("Retry-After"), msg)
		}
		a.Release()
		if code, _, msg := e.postFull(body); code != http.StatusNoContent {
			t.Fatalf("after release: %d %s", code, msg)
		}
	})
	t.Run("memory", func(t *testing.T) {
		e, _ := newLimitedEnv(t, ingest.DefaultLimits(), 1<<10)
		runtime.GC()
		code, hdr, msg := e.postFull(body)
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "5" || !strings.Contains(msg, "live heap") {
			t.Fatalf("under memory pressure: %d Retry-After %q %q", code, hdr.Get("Retry-After"), msg)
		}
	})
	t.Run("too many series is 413", func(t *testing.T) {
		lim := ingest.DefaultLimits()
		lim.MaxSeriesPerRequest = 2
		e, _ := newLimitedEnv(t, lim, 0)
		var ts []prompb.TimeSeries
		for _, j := range []string{"a", "b", "c"} {
			ts = append(ts, series(one(1), "__name__", "up", "job", j))
		}
		code, hdr, msg := e.postFull(encode(t, ts...))
		if code != http.StatusRequestEntityTooLarge || hdr.Get("Retry-After") != "" || !strings.Contains(msg, "more than 2 series") {
			t.Fatalf("3 series at a limit of 2: %d %q", code, msg)
		}
		if n := e.head.NumSeries(); n != 0 {
			t.Fatalf("a refused request stored %d series", n)
		}
	})
}

// TestWriteBodyDeadline: a body that stops arriving is cut at the write
// request timeout with 408 and the slot is freed; a body that arrives in
// time on the same kind of connection is stored.
func TestWriteBodyDeadline(t *testing.T) {
	lim := ingest.DefaultLimits()
	lim.WriteRequestTimeout = 300 * time.Millisecond
	lim.MaxInflightWriteRequests = 1
	e, _ := newLimitedEnv(t, lim, 0)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.server.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 10 bytes promised, 1 sent, then nothing.
	fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: 10\r\n\r\nx")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(msg), "write_request_timeout") {
		t.Fatalf("stalled body: %d %s", resp.StatusCode, msg)
	}
	// The only slot is free again.
	body := encode(t, series(one(1), "__name__", "up", "job", "etcd"))
	if code, _, msg := e.postFull(body); code != http.StatusNoContent {
		t.Fatalf("after the cut: %d %s", code, msg)
	}
}
