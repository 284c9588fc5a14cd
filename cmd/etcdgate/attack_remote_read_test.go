package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// postRemoteRead sends body to /api/v1/read and returns the status,
// after reading (and counting) the answer.
func postRemoteRead(t *testing.T, base string, body io.Reader) (int, string, int64) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/read", "application/x-protobuf", body)
	if err != nil {
		return 0, err.Error(), 0
	}
	defer resp.Body.Close()
	var head bytes.Buffer
	n, _ := io.Copy(io.Discard, io.TeeReader(io.LimitReader(resp.Body, 300), &head))
	m, _ := io.Copy(io.Discard, resp.Body)
	msg := ""
	if resp.StatusCode != http.StatusOK {
		msg = head.String()
	}
	return resp.StatusCode, msg, n + m
}

// everySeries is a read of every series of the last hour in typ.
func everySeries(typ prompb.ReadRequest_ResponseType) []byte {
	now := time.Now()
	raw, _ := (&prompb.ReadRequest{AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{typ},
		Queries: []*prompb.Query{{StartTimestampMs: now.Add(-time.Hour).UnixMilli(), EndTimestampMs: now.Add(time.Minute).UnixMilli(),
			Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: "__name__", Value: ".+"}}}}}).Marshal()
	return snappy.Encode(nil, raw)
}

// TestAttackRemoteRead: hostile remote read bodies are refused before
// they are decompressed or decoded; reads of more series or samples than
// a query may hold are refused before the samples are read; a crowd of
// whole-store reads is answered or refused within the slots.
func TestAttackRemoteRead(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "etcdgate.yml")
	if err := os.WriteFile(cfg, []byte("query:\n  max_concurrency: 2\n  max_series: 20000\n  max_samples: 15000\n  timeout: 10s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	one := func(body func() io.Reader, want string) func(t *testing.T, base string) []int {
		return func(t *testing.T, base string) []int {
			code, msg, _ := postRemoteRead(t, base, body())
			t.Logf("%d %s", code, msg)
			if !strings.Contains(msg, want) {
				t.Errorf("answer %q does not say %q", msg, want)
			}
			return []int{code}
		}
	}
	runAttacks(t, []attack{
		{
			// Sent chunked, without a Content-Length: refused at the limit.
			name:    "a body of 100 MiB",
			send:    one(func() io.Reader { return io.LimitReader(zeros{}, 100<<20) }, "too large"),
			allowed: []int{http.StatusRequestEntityTooLarge}, within: 10 * time.Second, maxGrowth: 50 << 20,
		},
		{
			name: "snappy announcing 3 GiB",
			send: one(func() io.Reader {
				return bytes.NewReader(append(binary.AppendUvarint(nil, 3<<30), make([]byte, 1000)...))
			}, "too large"),
			allowed: []int{http.StatusRequestEntityTooLarge}, within: 2 * time.Second, maxGrowth: 50 << 20,
		},
		{
			name: "a million empty queries in 2 MiB",
			send: one(func() io.Reader {
				return bytes.NewReader(snappy.Encode(nil, bytes.Repeat([]byte{0x0a, 0x00}, 1<<20)))
			}, "1048576 queries, limit 64"),
			allowed: []int{http.StatusBadRequest}, within: 2 * time.Second, maxGrowth: 50 << 20,
		},
		{
			name: "every series of a store over the limits",
			args: []string{"--config", cfg},
			send: func(t *testing.T, base string) []int {
				seedSeries(t, base, 50000)
				var codes []int
				for _, typ := range []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS} {
					code, msg, _ := postRemoteRead(t, base, bytes.NewReader(everySeries(typ)))
					if code != http.StatusUnprocessableEntity || !strings.Contains(msg, "more than 20000 series") {
						t.Errorf("%s of 50,000 series with max_series 20000: %d %s", typ, code, msg)
					}
					codes = append(codes, code)
				}
				return codes
			},
			allowed: []int{http.StatusUnprocessableEntity}, within: 60 * time.Second, maxGrowth: 400 << 20,
		},
		{
			name: "a crowd of whole-store reads",
			args: []string{"--config", cfg},
			send: func(t *testing.T, base string) []int {
				seedSeries(t, base, 15000)
				var (
					mu    sync.Mutex
					codes []int
					wg    sync.WaitGroup
				)
				for i := range 32 {
					typ := prompb.ReadRequest_STREAMED_XOR_CHUNKS
					if i%2 == 0 {
						typ = prompb.ReadRequest_SAMPLES
					}
					wg.Go(func() {
						code, _, n := postRemoteRead(t, base, bytes.NewReader(everySeries(typ)))
						if code == http.StatusOK && n == 0 {
							t.Errorf("%s: an empty answer", typ)
						}
						mu.Lock()
						codes = append(codes, code)
						mu.Unlock()
					})
				}
				wg.Wait()
				n503 := 0
				for _, c := range codes {
					if c == http.StatusServiceUnavailable {
						n503++
					}
				}
				t.Logf("%d of %d answered 503", n503, len(codes))
				return codes
			},
			// 503: no slot before query.timeout.
			allowed: []int{http.StatusOK, http.StatusServiceUnavailable}, within: 60 * time.Second, maxGrowth: 400 << 20,
		},
	})
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
