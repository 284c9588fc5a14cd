package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/tsdb"
)

// crashClient writes samples of its own series with increasing
// timestamps (value = timestamp) and records which were acknowledged.
type crashClient struct {
	id    int
	next  int64   // timestamp of the next request
	acked []int64 // timestamps whose request got 204
}

const (
	crashSeriesPerClient = 10
	crashStep            = 10 // ms between a client's requests: thousands fit well inside the future-drift limit
)

func (c *crashClient) body(ts int64) []byte {
	wr := prompb.WriteRequest{}
	for s := range crashSeriesPerClient {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "crash_test"}, {Name: "client", Value: fmt.Sprint(c.id)}, {Name: "s", Value: fmt.Sprint(s)},
			},
			Samples: []prompb.Sample{{Value: float64(ts), Timestamp: ts}},
		})
	}
	raw, _ := wr.Marshal()
	return snappy.Encode(nil, raw)
}

// run writes until a request fails (the server was killed).
func (c *crashClient) run(url string) {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		ts := c.next
		resp, err := client.Post(url+"/api/v1/write", "application/x-protobuf", strings.NewReader(string(c.body(ts))))
		if err != nil {
			return
		}
		resp.Body.Close()
		c.next += crashStep
		if resp.StatusCode == http.StatusNoContent {
			c.acked = append(c.acked, ts)
		}
	}
}

// TestCrashKeepsAcknowledgedWrites kills etcdgate with SIGKILL at random
// points while several clients write, restarts it on the same data, and
// checks that every acknowledged sample is there exactly once.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	dataDir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "etcdgate.yml")
	// Checkpoints every 200ms so that kills also land during checkpoints.
	cfg := "head:\n  checkpoint_interval: 200ms\n  out_of_order_window: 0s\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UnixMilli()
	clients := make([]*crashClient, 4)
	for i := range clients {
		clients[i] = &crashClient{id: i, next: base}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 5 {
		p, url := startGatewayIn(t, dataDir, "--config", cfgPath)
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() { defer wg.Done(); c.run(url) }()
		}
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		wg.Wait()
		total := 0
		for _, c := range clients {
			total += len(c.acked)
		}
		t.Logf("round %d: killed after %d acknowledged requests in all", round, total)
		verifyCrashData(t, dataDir, clients)
	}
	if clients[0].next-base < 50*crashStep {
		t.Fatalf("only %d requests of client 0 were tried: the test did not exercise the server", (clients[0].next-base)/crashStep)
	}
}

// verifyCrashData opens a copy of the killed node's data in process (the
// copy, so the next round recovers from the same files as the binary
// left them) and checks each client's series; then again on a copy that
// has also lost its head snapshot, which recovery must do without.
func verifyCrashData(t *testing.T, dataDir string, clients []*crashClient) {
	t.Helper()
	for _, loseSnapshot := range []bool{false, true} {
		cp := filepath.Join(t.TempDir(), "copy")
		if err := os.CopyFS(cp, os.DirFS(dataDir)); err != nil {
			t.Fatal(err)
		}
		if loseSnapshot {
			if err := os.Remove(filepath.Join(cp, "tsdb", "head.snapshot")); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		verifyCrashCopy(t, cp, clients, loseSnapshot)
	}
}

func verifyCrashCopy(t *testing.T, cp string, clients []*crashClient, lostSnapshot bool) {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.Head.OutOfOrderWindow = 0
	db, err := tsdb.Open(filepath.Join(cp, "tsdb"), opts, nil, nil)
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	defer db.Close()
	q, _ := db.Querier(math.MinInt64, math.MaxInt64)
	defer q.Close()
	set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "crash_test"))
	stored := map[string]map[int64]int{}
	var it tsdb.Iterator
	for set.Next() {
		key := set.At().Labels().Get("client") + "/" + set.At().Labels().Get("s")
		stored[key] = map[int64]int{}
		it = set.At().Iterator(it)
		prev := int64(math.MinInt64)
		for it.Next() {
			ts, v := it.At()
			if ts <= prev || v != float64(ts) {
				t.Fatalf("%s: sample (%d, %v) after %d", key, ts, v, prev)
			}
			prev = ts
			stored[key][ts]++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clients {
		for s := range crashSeriesPerClient {
			key := fmt.Sprintf("%d/%d", c.id, s)
			for _, ts := range c.acked {
				if stored[key][ts] != 1 {
					t.Fatalf("series %s: acknowledged sample at %d stored %d times (head snapshot lost: %v)", key, ts, stored[key][ts], lostSnapshot)
				}
			}
		}
	}
}
