package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
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

// postWrite sends one remote-write body and returns the status (0 when
// the connection failed).
func postWrite(client *http.Client, base string, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// concurrently sends body n times at once, one goroutine a request.
func concurrently(base string, n int, body func(i int) []byte) []int {
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: n, MaxIdleConnsPerHost: n}, Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = postWrite(client, base, body(i)) })
	}
	wg.Wait()
	return codes
}

// emptySeries is the amplification body: n empty series, 2 bytes each.
func emptySeries(n int) []byte {
	return snappy.Encode(nil, bytes.Repeat([]byte{0x0a, 0x00}, n))
}

// writeConfig writes a config file and returns its --config flag.
func writeConfig(t *testing.T, yaml string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "etcdgate.yml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", p}
}

// TestAttackWriteAmplification: bodies that decode into far more memory
// than they take on the wire are refused in bounded memory.
func TestAttackWriteAmplification(t *testing.T) {
	// 30M empty series: 2.9 MB of snappy, 60 MiB decompressed, 1.9 GB of
	// structs if decoded. Refused from snappy's header (decompressed limit).
	huge := emptySeries(30 << 20)
	// At the decompressed limit (32 MiB): decompressed, then refused by the
	// decoder at the series limit (100k series, 6.4 MB).
	atLimit := emptySeries(16 << 20)
	// One series of 16M empty labels: refused at the label limit (1M
	// labels, 32 MB of structs).
	labels := bytes.Repeat([]byte{0x0a, 0x00}, 16<<20-8)
	labelsAtLimit := snappy.Encode(nil, append(binary.AppendUvarint([]byte{0x0a}, uint64(len(labels))), labels...))
	t.Logf("bodies: %d and %d bytes", len(huge), len(atLimit))
	send := func(body []byte, n int) func(t *testing.T, base string) []int {
		return func(t *testing.T, base string) []int {
			return concurrently(base, n, func(int) []byte { return body })
		}
	}
	declared := binary.AppendUvarint(nil, 1<<32-1) // 4 GiB declared
	declared = append(declared, 0x00, 'x')
	runAttacks(t, []attack{
		{name: "empty series 2.9MB", send: send(huge, 1), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 10 * time.Second, maxGrowth: 100 << 20},
		{name: "empty series 2.9MB x4", send: send(huge, 4), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 10 * time.Second, maxGrowth: 100 << 20},
		{name: "empty series at the decompressed limit", send: send(atLimit, 1), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 10 * time.Second, maxGrowth: 100 << 20},
		// Each holds 32 MiB decompressed and 6.4 MB of series: measured
		// 185-200 MiB for the four.
		{name: "empty series at the decompressed limit x4", send: send(atLimit, 4), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 20 * time.Second, maxGrowth: 400 << 20},
		// Each holds 32 MiB decompressed and up to 32 MB of labels plus the
		// garbage of doubling to it: measured 330-390 MiB for the four.
		{name: "empty labels at the decompressed limit x4", send: send(labelsAtLimit, 4), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 20 * time.Second, maxGrowth: 640 << 20},
		{name: "declared 4GiB decompressed", send: send(declared, 1), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 2 * time.Second, maxGrowth: 20 << 20},
	})
}

// TestAttackConcurrentWrites: 1,000 writes at once get 2xx or 429, never
// an error or a dead node; with a tight in-flight budget most are 429.
func TestAttackConcurrentWrites(t *testing.T) {
	now := time.Now().UnixMilli()
	bodies := make([][]byte, 1000)
	for i := range bodies {
		req := &prompb.WriteRequest{}
		for s := range 200 {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels: []prompb.Label{{Name: "__name__", Value: "attack_series"}, {Name: "instance", Value: fmt.Sprint(s)},
					{Name: "sender", Value: fmt.Sprint(i)}},
				Samples: []prompb.Sample{{Value: float64(s), Timestamp: now}},
			})
		}
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = snappy.Encode(nil, raw)
	}
	send := func(t *testing.T, base string) []int {
		codes := concurrently(base, len(bodies), func(i int) []byte { return bodies[i] })
		counts := map[int]int{}
		for _, c := range codes {
			counts[c]++
		}
		t.Logf("status counts: %v", counts)
		return codes
	}
	runAttacks(t, []attack{
		{name: "defaults", send: send, allowed: []int{http.StatusNoContent, http.StatusTooManyRequests},
			within: 90 * time.Second, maxGrowth: 600 << 20},
		{name: "8 slots", args: writeConfig(t, "limits:\n  max_inflight_write_requests: 8\n"), send: send,
			allowed: []int{http.StatusNoContent, http.StatusTooManyRequests}, within: 90 * time.Second, maxGrowth: 400 << 20},
	})
}

// TestAttackTricklingBody: a body sent at 1 byte/s is cut at the write
// request deadline (2 s here), answered 408 or with the connection closed.
func TestAttackTricklingBody(t *testing.T) {
	runAttacks(t, []attack{{
		name: "1 byte/s",
		args: writeConfig(t, "limits:\n  write_request_timeout: 2s\n"),
		send: func(t *testing.T, base string) []int {
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: 1000\r\n\r\n")
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := conn.Write([]byte{0}); err != nil {
							return
						}
					}
				}
			}()
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("no answer and no close after 30 s")
					return []int{-1}
				}
				return []int{0} // closed without an answer
			}
			resp.Body.Close()
			return []int{resp.StatusCode}
		},
		allowed:   []int{http.StatusRequestTimeout, http.StatusBadRequest, 0},
		within:    2*time.Second + 5*time.Second,
		maxGrowth: 50 << 20,
	}})
}
