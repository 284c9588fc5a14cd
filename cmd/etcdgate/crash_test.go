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
// With outOfOrder, every fifth request also carries an older sample.
type crashClient struct {
	id         int
	outOfOrder bool
	next       int64   // timestamp of the next request
	acked      []int64 // timestamps of the samples whose request got 204
}

const (
	crashSeriesPerClient = 10
	crashStep            = 10 // ms between a client's requests: thousands fit well inside the future-drift limit
	// crashLate is how far behind its request an out-of-order sample is:
	// off the crashStep grid, so that no other sample has its timestamp.
	crashLate = 5*crashStep - 3
)

// timestamps returns the timestamps of the samples a request at ts
// carries, older first.
func (c *crashClient) timestamps(ts int64) []int64 {
	if c.outOfOrder && ts/crashStep%5 == 0 {
		return []int64{ts - crashLate, ts}
	}
	return []int64{ts}
}

func (c *crashClient) body(ts int64) []byte {
	wr := prompb.WriteRequest{}
	var samples []prompb.Sample
	for _, t := range c.timestamps(ts) {
		samples = append(samples, prompb.Sample{Value: float64(t), Timestamp: t})
	}
	for s := range crashSeriesPerClient {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "crash_test"}, {Name: "client", Value: fmt.Sprint(c.id)}, {Name: "s", Value: fmt.Sprint(s)},
			},
			Samples: samples,
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
			c.acked = append(c.acked, c.timestamps(ts)...)
		}
	}
}

// TestCrashKeepsAcknowledgedWrites kills etcdgate with SIGKILL at random
// points while several clients write, restarts it on the same data, and
// checks that every acknowledged sample is there exactly once.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	testCrashKeepsAcknowledgedWrites(t, 0)
}

// TestCrashKeepsAcknowledgedOutOfOrderWrites is the crash test with
// out-of-order samples: checkpoints write out-of-order chunks, and a kill
// between them and the head snapshot must lose none of the in-order
// samples that only the WAL holds. The window, 100 ms of sample time, is
// far shorter than the WAL a restart replays (clients write about 10 s of
// it a second): replay must not judge samples by it.
func TestCrashKeepsAcknowledgedOutOfOrderWrites(t *testing.T) {
	testCrashKeepsAcknowledgedWrites(t, 100*time.Millisecond)
}

func testCrashKeepsAcknowledgedWrites(t *testing.T, oooWindow time.Duration) {
	dataDir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "etcdgate.yml")
	// Checkpoints every 200ms so that kills also land during checkpoints.
	cfg := fmt.Sprintf("head:\n  checkpoint_interval: 200ms\n  out_of_order_window: %s\n", oooWindow)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UnixMilli()
	clients := make([]*crashClient, 4)
	for i := range clients {
		clients[i] = &crashClient{id: i, outOfOrder: oooWindow > 0, next: base}
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
		verifyCrashData(t, dataDir, clients, oooWindow)
	}
	if clients[0].next-base < 50*crashStep {
		t.Fatalf("only %d requests of client 0 were tried: the test did not exercise the server", (clients[0].next-base)/crashStep)
	}
}

// verifyCrashData opens a copy of the killed node's data in process (the
// copy, so the next round recovers from the same files as the binary
// left them) and checks each client's series; then again on a copy that
// has also lost its head snapshot, which recovery must do without.
func verifyCrashData(t *testing.T, dataDir string, clients []*crashClient, oooWindow time.Duration) {
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
		verifyCrashCopy(t, cp, clients, oooWindow, loseSnapshot)
	}
}

func verifyCrashCopy(t *testing.T, cp string, clients []*crashClient, oooWindow time.Duration, lostSnapshot bool) {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.Head.OutOfOrderWindow = oooWindow
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
