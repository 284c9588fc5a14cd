package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/ring"
)

// refuseAll is an HA tracker that elects no replica and counts questions.
type refuseAll struct{ calls atomic.Int64 }

func (r *refuseAll) Accept(context.Context, string, string, int64) (bool, error) {
	r.calls.Add(1)
	return false, nil
}

// TestPushValidatesLikeWrite checks that in-process series take the
// remote-write rules: valid ones are stored, invalid ones are refused and
// named, and neither affects the other.
func TestPushValidatesLikeWrite(t *testing.T) {
	in, head, _ := newTestIngester(t, DefaultLimits())
	ts := testNow.Add(-time.Second).UnixMilli()
	series := []TimeSeries{
		{Labels: []Label{{Name: "__name__", Value: "etcdgate_inspection_success"}, {Name: "cluster", Value: "a"}}, Samples: []Sample{{1, ts}}},
		{Labels: []Label{{Name: "__name__", Value: "bad-name"}}, Samples: []Sample{{1, ts}}},
		{Labels: []Label{{Name: "__name__", Value: "etcdgate_inspection_success"}, {Name: "cluster", Value: "b"}}, Samples: []Sample{{0, ts}, {1, ts + 1}}},
	}
	res, err := in.Push(series)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 4 || res.Accepted != 3 || res.RefusedSeries != 1 {
		t.Fatalf("result %+v", res)
	}
	if !errors.Is(res.Err(), ErrInvalidSeries) {
		t.Fatalf("err %v, want ErrInvalidSeries", res.Err())
	}
	if head.NumSeries() != 2 {
		t.Fatalf("head has %d series, want 2", head.NumSeries())
	}
}

// TestRingPushPlacesSeriesOnOwners: in a ring, series made in the process
// (rule results, probe findings) go to their owners like a remote write,
// whichever node pushes them, HA dedup does not touch them (they carry
// the replica label and an HA tracker that accepts nothing is set), and
// invalid ones are refused without losing the others.
func TestRingPushPlacesSeriesOnOwners(t *testing.T) {
	// rf 2 has a quorum of 2: a push returns when every owner has its
	// series, so the holders below are final.
	const rf = 2
	ha := &refuseAll{}
	r := newTestRing(t, 4, rf, nil, ha)
	ts := testNow.Add(-time.Second).UnixMilli()
	var series []TimeSeries
	for i := range 100 {
		series = append(series, TimeSeries{Labels: []Label{{Name: "__name__", Value: "cluster:etcd_up:sum"}, {Name: "__replica__", Value: "r1"},
			{Name: "cluster", Value: fmt.Sprintf("c%d", i)}}, Samples: []Sample{{1, ts}}})
	}
	series = append(series, TimeSeries{Labels: []Label{{Name: "__name__", Value: "bad-name"}}, Samples: []Sample{{1, ts}}})
	for _, pusher := range []string{"n0", "n3"} {
		res, err := r.nodes[pusher].in.Push(series)
		if err != nil {
			t.Fatalf("push through %s: %v", pusher, err)
		}
		if res.Accepted != 100 || res.RefusedSeries != 1 || !errors.Is(res.Err(), ErrInvalidSeries) {
			t.Fatalf("push through %s: %+v, %v", pusher, res, res.Err())
		}
	}
	if ha.calls.Load() != 0 {
		t.Fatalf("HA dedup asked %d times about pushed series", ha.calls.Load())
	}
	stored := r.holders(t)
	if len(stored) != 100 {
		t.Fatalf("%d series stored, want 100", len(stored))
	}
	for k, h := range stored {
		if want := r.owners(h.lset, rf); fmt.Sprint(h.nodes) != fmt.Sprint(want) {
			t.Fatalf("series %s on %v, owners %v", k, h.nodes, want)
		}
		if h.lset.Get("__replica__") != "r1" {
			t.Fatalf("series %s lost its replica label to HA dedup", k)
		}
	}
	// An owner down: its series miss their quorum and the push fails as
	// a write would.
	r.nodes["n1"].fail(errors.New("connection refused"))
	if _, err := r.nodes["n0"].in.Push(series[:100]); !errors.Is(err, ring.ErrQuorumFailed) {
		t.Fatalf("push with an owner down: %v, want ErrQuorumFailed", err)
	}
}
