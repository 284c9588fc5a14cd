package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// ringNode is one node of an in-process ring: a head, an ingester that
// forwards through ring.Peers, and the API on a loopback server.
type ringNode struct {
	name string
	head *tsdb.Head
	srv  *httptest.Server
}

// newTestRing starts n nodes with replication factor rf (rf 0: one node
// alone, no ring).
func newTestRing(t testing.TB, n, rf int) []*ringNode {
	t.Helper()
	var view atomic.Pointer[ring.Snapshot]
	nodes := make([]*ringNode, n)
	members := make([]ring.Node, n)
	for i := range nodes {
		var h atomic.Pointer[http.Handler]
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
		t.Cleanup(srv.Close)
		head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("n%d", i)
		opts := ingest.Options{Limits: ingest.DefaultLimits(), Now: func() time.Time { return testNow }}
		if rf > 0 {
			po := ring.DefaultPeerOptions()
			po.Registerer = prometheus.NewRegistry()
			peers, err := ring.NewPeers(po)
			if err != nil {
				t.Fatal(err)
			}
			opts.Ring = &ingest.RingOptions{Self: name, ReplicationFactor: rf, View: view.Load, Forwarder: peers}
		}
		in, err := ingest.New(head, opts)
		if err != nil {
			t.Fatal(err)
		}
		a := New(Options{Ingester: in, Storage: head, Ring: staticRing{}})
		handler := a.Handler()
		h.Store(&handler)
		nodes[i] = &ringNode{name: name, head: head, srv: srv}
		members[i] = ring.Node{Name: name, URL: srv.URL, State: ring.StateActive, Tokens: ring.GenerateTokens(128, nil)}
	}
	view.Store(ring.NewSnapshot(members))
	return nodes
}

// fleetBody is one remote-write body of series etcd-like series of one
// member, one sample each at ts.
func fleetBody(member, series int, ts int64) []byte {
	wr := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, series)}
	for s := range series {
		wr.Timeseries[s] = prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "etcd_disk_wal_fsync_duration_seconds_bucket"},
				{Name: "cluster", Value: fmt.Sprintf("etcd-%d", member/3)},
				{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:2379", member/250, member%250)},
				{Name: "le", Value: fmt.Sprint(s)},
			},
			Samples: []prompb.Sample{{Value: float64(ts), Timestamp: ts}},
		}
	}
	raw, _ := wr.Marshal()
	return snappy.Encode(nil, raw)
}

func postBody(t testing.TB, url string, body []byte) int {
	t.Helper()
	resp, err := http.Post(url+"/api/v1/write", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRingWriteOverHTTP writes through one node of three (RF 3) over the
// real peer client and internal push: all three store every series; with
// one node down writes still succeed; with two down they fail with 500,
// and Retry-After is absent (not an overload).
func TestRingWriteOverHTTP(t *testing.T) {
	nodes := newTestRing(t, 3, 3)
	ts := ms(time.Minute)
	if code := postBody(t, nodes[0].srv.URL, fleetBody(0, 100, ts)); code != http.StatusNoContent {
		t.Fatalf("write: %d", code)
	}
	// The answer comes at quorum (2 of 3): the third copy may still be
	// on its way.
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for n.head.NumSeries() != 100 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := n.head.NumSeries(); got != 100 {
			t.Fatalf("node %s holds %d series, want all 100 (RF 3 of 3 nodes)", n.name, got)
		}
	}
	nodes[2].srv.Close()
	if code := postBody(t, nodes[0].srv.URL, fleetBody(0, 100, ts+15000)); code != http.StatusNoContent {
		t.Fatalf("write with one owner down: %d", code)
	}
	nodes[1].srv.Close()
	resp, err := http.Post(nodes[0].srv.URL+"/api/v1/write", "application/x-protobuf", bytes.NewReader(fleetBody(0, 100, ts+30000)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("write with two owners of three down: %d (Retry-After %q), want 500", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// BenchmarkRingWrite writes 1,000-series requests through node 0: one
// node alone, three nodes with RF 1, three with RF 3, every node in this
// process on the same cores. It reports samples/s through node 0 and the
// CPU of the whole process per sample written (all nodes together: the
// cost of a sample to the ring).
func BenchmarkRingWrite(b *testing.B) {
	for _, c := range []struct {
		name      string
		nodes, rf int
	}{{"alone", 1, 0}, {"3nodes-rf1", 3, 1}, {"3nodes-rf3", 3, 3}} {
		b.Run(c.name, func(b *testing.B) {
			nodes := newTestRing(b, c.nodes, c.rf)
			const series = 1000
			bodies := make([][]byte, 100)
			ts := ms(time.Hour)
			for i := range bodies {
				bodies[i] = fleetBody(i, series, ts)
			}
			for i := range bodies { // create the series first
				if code := postBody(b, nodes[0].srv.URL, bodies[i]); code != http.StatusNoContent {
					b.Fatalf("write: %d", code)
				}
			}
			// Every timed request carries new samples: a sample per series
			// every 15 s, members in turn.
			timed := make([][]byte, b.N)
			for i := range timed {
				timed[i] = fleetBody(i%len(bodies), series, ts+15000*int64(1+i/len(bodies)))
			}
			cpu0 := processCPU()
			b.ResetTimer()
			for i := range b.N {
				if code := postBody(b, nodes[0].srv.URL, timed[i]); code != http.StatusNoContent {
					b.Fatalf("write: %d", code)
				}
			}
			b.StopTimer()
			samples := float64(b.N * series)
			b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/samples, "cpu-µs/sample")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
