package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
)

// postWriteV2 is postWrite of a remote write 2.0 body.
func postWriteV2(client *http.Client, base string, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written") != "0" {
		return -1 // a refused 2.0 request must say it wrote nothing
	}
	return resp.StatusCode
}

// TestAttackWriteAmplificationV2: 2.0 bodies at the decompressed limit
// (32 MiB) that decode into far more than they take, four at once, are
// refused at their count limits in bounded memory, each answer with its
// written headers at 0.
func TestAttackWriteAmplificationV2(t *testing.T) {
	// 16M empty symbols (2 bytes each): refused at the symbols limit
	// (2.2M symbols, 35 MB of string headers).
	symbols := snappy.Encode(nil, bytes.Repeat([]byte{0x22, 0x00}, 16<<20))
	// 16M empty series: refused at the series limit (100k series).
	series := snappy.Encode(nil, bytes.Repeat([]byte{0x2a, 0x00}, 16<<20))
	// One series whose packed labels_refs are 32M references to "": 16M
	// labels, refused at the label limit (1M labels, 32 MB).
	refs := make([]byte, 32<<20-16)
	run := append(binary.AppendUvarint([]byte{0x0a}, uint64(len(refs))), refs...)
	labels := snappy.Encode(nil, append(binary.AppendUvarint(append([]byte{0x22, 0x00}, 0x2a), uint64(len(run))), run...))
	send := func(body []byte) func(t *testing.T, base string) []int {
		return func(t *testing.T, base string) []int {
			client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 4, MaxIdleConnsPerHost: 4}, Timeout: 2 * time.Minute}
			defer client.CloseIdleConnections()
			codes := make([]int, 4)
			var wg sync.WaitGroup
			for i := range codes {
				wg.Go(func() { codes[i] = postWriteV2(client, base, body) })
			}
			wg.Wait()
			return codes
		}
	}
	// Measured peaks for the four: 455, 165 and 349 MiB (32 MiB
	// decompressed each, plus the buffer at its limit and the garbage of
	// doubling to it).
	runAttacks(t, []attack{
		{name: "empty symbols at the decompressed limit x4", send: send(symbols), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 20 * time.Second, maxGrowth: 640 << 20},
		{name: "empty series at the decompressed limit x4", send: send(series), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 20 * time.Second, maxGrowth: 400 << 20},
		{name: "empty label references at the decompressed limit x4", send: send(labels), allowed: []int{http.StatusRequestEntityTooLarge},
			within: 20 * time.Second, maxGrowth: 640 << 20},
	})
}
