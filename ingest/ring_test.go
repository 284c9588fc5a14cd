package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// testRing is an in-process ring of ingesters, each over its own head.
// A forward goes straight to the owner's WriteLocal: the HTTP hop has its
// own tests (ring.Peers, api, and the process tests of cmd/etcdgate).
type testRing struct {
	snap  *ring.Snapshot
	nodes map[string]*testRingNode
}

type testRingNode struct {
	in   *Ingester
	head *tsdb.Head
	down atomic.Pointer[error] // set: forwards to the node fail with it
}

func (n *testRingNode) fail(err error) { n.down.Store(&err) }

type testForwarder struct{ r *testRing }

func (f testForwarder) Forward(_ context.Context, to *ring.Node, body []byte, _ int) error {
	n := f.r.nodes[to.Name]
	if err := n.down.Load(); err != nil {
		return *err
	}
	adm, err := n.in.Admit(int64(len(body)))
	if err != nil {
		return err
	}
	defer adm.Release()
	res, err := adm.WriteLocal(body)
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return &ring.PeerRefusal{Peer: to.Name, Status: 400, Message: err.Error()}
	}
	return nil
}

// newTestRing builds nodes named n0.. with rf owners per series; each
// ingester relabels with p when p is set (nil: no relabeling).
func newTestRing(t *testing.T, nodes, rf int, p Relabeler, ha HADedup) *testRing {
	t.Helper()
	r := &testRing{nodes: map[string]*testRingNode{}}
	var members []ring.Node
	for i := range nodes {
		name := fmt.Sprintf("n%d", i)
		members = append(members, ring.Node{Name: name, URL: "http://" + name, State: ring.StateActive, Tokens: ring.GenerateTokens(128, nil)})
	}
	r.snap = ring.NewSnapshot(members)
	for _, m := range members {
		head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Limits: DefaultLimits(), Registerer: prometheus.NewRegistry(), Now: func() time.Time { return testNow },
			Ring: &RingOptions{Self: m.Name, ReplicationFactor: rf, View: func() *ring.Snapshot { return r.snap },
				Forwarder: testForwarder{r}, HA: ha, HAClusterLabel: "cluster", HAReplicaLabel: "__replica__"}}
		if p != nil {
			opts.Relabeler = p
		}
		in, err := New(head, opts)
		if err != nil {
			t.Fatal(err)
		}
		r.nodes[m.Name] = &testRingNode{in: in, head: head}
	}
	return r
}

// held is a stored series and the sorted names of the nodes holding it.
type held struct {
	lset  labels.Labels
	nodes []string
}

// holders maps each stored series (labels as a string) to its holders.
func (r *testRing) holders(t *testing.T) map[string]*held {
	t.Helper()
	out := map[string]*held{}
	for name, n := range r.nodes {
		q, err := n.head.Querier(math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		ss := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
		for ss.Next() {
			lset := ss.At().Labels()
			h := out[lset.String()]
			if h == nil {
				h = &held{lset: lset}
				out[lset.String()] = h
			}
			h.nodes = append(h.nodes, name)
		}
		if err := ss.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range out {
		sort.Strings(h.nodes)
	}
	return out
}

func (r *testRing) owners(lset labels.Labels, rf int) []string {
	var names []string
	for _, o := range r.snap.Owners(ring.HashSeries(lset), rf, nil) {
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return names
}

// TestRingWritePlacesSeriesOnOwners writes a fleet through one node and
// checks every series is stored on exactly its owners, with and without
// relabeling (where the final label set decides the owners, and a second
// write goes through the series cache).
func TestRingWritePlacesSeriesOnOwners(t *testing.T) {
	for _, relabeled := range []bool{false, true} {
		t.Run(fmt.Sprintf("relabel=%v", relabeled), func(t *testing.T) {
			var p Relabeler
			if relabeled {
				_, _, pipeline, _ := newRelabelIngester(t)
				p = pipeline
			}
			const rf = 2
			r := newTestRing(t, 4, rf, p, nil)
			reqs := etcdWriteRequests(2, 3, 500, testNow.Add(-time.Minute).UnixMilli())
			for round := range 2 { // the second round hits the series cache
				for _, req := range reqs {
					for _, ts := range req.Timeseries {
						ts.Samples[0].Timestamp += int64(round) * 15000
					}
					res, err := r.nodes["n1"].in.Write(marshalSnappy(req))
					if err != nil || res.Err() != nil {
						t.Fatalf("round %d: write: %v %v", round, err, res.Err())
					}
				}
			}
			stored := r.holders(t)
			if len(stored) == 0 {
				t.Fatal("nothing stored")
			}
			for k, h := range stored {
				if want := r.owners(h.lset, rf); fmt.Sprint(h.nodes) != fmt.Sprint(want) {
					t.Fatalf("series %s on %v, owners %v", k, h.nodes, want)
				}
				if relabeled && h.lset.Get("scenario") == "" {
					t.Fatalf("series %s stored without relabeling", k)
				}
			}
		})
	}
}

// TestRingWriteQuorum: one of three owners down costs nothing; two down
// fail the write with ErrQuorumFailed (with ErrPeerOverloaded when an
// owner was at capacity); what the live owner stored stays stored.
func TestRingWriteQuorum(t *testing.T) {
	r := newTestRing(t, 3, 3, nil, nil)
	body := func(ts int64) []byte {
		return marshalSnappy(etcdWriteRequests(1, 1, 200, ts)[0])
	}
	ts := testNow.Add(-time.Minute).UnixMilli()
	r.nodes["n2"].fail(errors.New("connection refused"))
	if res, err := r.nodes["n0"].in.Write(body(ts)); err != nil || res.Err() != nil {
		t.Fatalf("one owner of three down: %v %v", err, res.Err())
	}
	r.nodes["n1"].fail(fmt.Errorf("peer n1: %w", ring.ErrPeerOverloaded))
	_, err := r.nodes["n0"].in.Write(body(ts + 15000))
	if !errors.Is(err, ring.ErrQuorumFailed) || !errors.Is(err, ring.ErrPeerOverloaded) {
		t.Fatalf("two owners of three down: %v, want ErrQuorumFailed and ErrPeerOverloaded", err)
	}
	r.nodes["n1"].fail(errors.New("connection refused"))
	_, err = r.nodes["n0"].in.Write(body(ts + 30000))
	if !errors.Is(err, ring.ErrQuorumFailed) || errors.Is(err, ring.ErrPeerOverloaded) {
		t.Fatalf("two owners of three down: %v, want ErrQuorumFailed alone", err)
	}
	if got := r.nodes["n0"].head.NumSeries(); got == 0 {
		t.Fatal("the live owner did not keep what it stored")
	}
}

// TestRingWriteNoActiveOwners: with no ACTIVE node nothing can reach a
// quorum, and nothing is acknowledged.
func TestRingWriteNoActiveOwners(t *testing.T) {
	r := newTestRing(t, 2, 3, nil, nil)
	r.snap = ring.NewSnapshot(nil) // the ring is empty: nobody may own anything
	_, err := r.nodes["n0"].in.Write(marshalSnappy(etcdWriteRequests(1, 1, 10, testNow.UnixMilli())[0]))
	if !errors.Is(err, ring.ErrQuorumFailed) {
		t.Fatalf("write with no ACTIVE node: %v, want ErrQuorumFailed", err)
	}
}

// firstReplica elects the first replica seen per cluster, in memory: the
// write path's side of HA dedup (the etcd election is ring.HATracker's).
type firstReplica struct{ elected map[string]string }

func (f *firstReplica) Accept(_ context.Context, cluster, replica string, _ int64) (bool, error) {
	if e, ok := f.elected[cluster]; ok {
		return e == replica, nil
	}
	// The values alias the request's buffer: keep copies.
	f.elected[strings.Clone(cluster)] = strings.Clone(replica)
	return true, nil
}

// TestRingWriteHADedup: the elected replica's series are stored without
// the replica label, the other's are counted as deduplicated, and series
// without the labels pass untouched.
func TestRingWriteHADedup(t *testing.T) {
	r := newTestRing(t, 1, 1, nil, &firstReplica{elected: map[string]string{}})
	in := r.nodes["n0"].in
	write := func(replica string, ts int64, extra ...prompb.Label) Result {
		t.Helper()
		ls := append([]prompb.Label{{Name: "__name__", Value: "up"}, {Name: "cluster", Value: "c1"}, {Name: "__replica__", Value: replica}}, extra...)
		res, err := in.Write(marshalSnappy(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: ls, Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}}}}))
		if err != nil || res.Err() != nil {
			t.Fatalf("write %s: %v %v", replica, err, res.Err())
		}
		return res
	}
	ts := testNow.Add(-time.Minute).UnixMilli()
	if res := write("a", ts); res.Accepted != 1 || res.DedupedSamples != 0 {
		t.Fatalf("elected replica: %+v", res)
	}
	if res := write("b", ts+1); res.Accepted != 0 || res.DedupedSamples != 1 {
		t.Fatalf("other replica: %+v", res)
	}
	stored := r.holders(t)
	if len(stored) != 1 {
		t.Fatalf("stored %d series, want one", len(stored))
	}
	for k := range stored {
		if k != `{__name__="up", cluster="c1"}` {
			t.Fatalf("stored %s, want the series without __replica__", k)
		}
	}
}
