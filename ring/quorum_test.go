package ring

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQuorum(t *testing.T) {
	for rf, want := range map[int]int{-1: 1, 0: 1, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4} {
		if got := Quorum(rf); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", rf, got, want)
		}
	}
}

var (
	errDown       = errors.New("connection refused")
	errOverloaded = fmt.Errorf("%w: peer c has 64 requests in flight", ErrPeerOverloaded)
	refusal       = &PeerRefusal{Peer: "b", Status: 400, Message: "out of bounds"}
)

// waitBounded waits for r; the bound only turns a hang into a failure.
func waitBounded(t *testing.T, r *Replication) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait did not settle: %v", err)
	}
	return err
}

// TestReplication: each case expects its series, then gives the owners'
// answers in order; owners that never answer are left out, so a case
// that must settle early would hang (and fail) if Wait waited for them.
func TestReplication(t *testing.T) {
	type done struct {
		owner  string
		series []int32
		err    error
	}
	s0 := []int32{0}
	for _, tc := range []struct {
		name     string
		rf       int
		owners   []int // per series; default rf for each of 1 series
		answers  []done
		want     string // "" success, else "failed", "overloaded", "too few"
		refusal  bool
		mentions []string // owners the error names
	}{
		{name: "rf=1 success", rf: 1, answers: []done{{"a", s0, nil}}},
		{name: "rf=1 refusal is reached", rf: 1, answers: []done{{"a", s0, refusal}}, refusal: true},
		{name: "rf=1 failure", rf: 1, answers: []done{{"a", s0, errDown}}, want: "failed", mentions: []string{"a"}},
		{name: "rf=1 overloaded", rf: 1, answers: []done{{"a", s0, errOverloaded}}, want: "overloaded"},
		{name: "rf=1 no owner", rf: 1, owners: []int{0}, want: "too few"},
		{name: "rf=2 both", rf: 2, answers: []done{{"a", s0, nil}, {"b", s0, nil}}},
		{name: "rf=2 one fails", rf: 2, answers: []done{{"a", s0, nil}, {"b", s0, errDown}}, want: "failed", mentions: []string{"b"}},
		{name: "rf=2 first fails, early", rf: 2, answers: []done{{"a", s0, errDown}}, want: "failed"},
		{name: "rf=3 early success", rf: 3, answers: []done{{"a", s0, nil}, {"b", s0, nil}}},
		{name: "rf=3 success and refusal", rf: 3, answers: []done{{"a", s0, nil}, {"b", s0, refusal}}, refusal: true},
		{name: "rf=3 one failure tolerated", rf: 3, answers: []done{{"a", s0, errDown}, {"b", s0, nil}, {"c", s0, nil}}},
		{name: "rf=3 early failure", rf: 3, answers: []done{{"a", s0, errDown}, {"c", s0, errOverloaded}},
			want: "overloaded", mentions: []string{"a", "c"}},
		{name: "rf=3 failure after quorum ignored", rf: 3, answers: []done{{"a", s0, nil}, {"b", s0, nil}, {"c", s0, errDown}}},
		{name: "rf=3 two owners, one fails", rf: 3, owners: []int{2}, answers: []done{{"a", s0, nil}, {"b", s0, errDown}}, want: "failed"},
		{name: "rf=3 one owner", rf: 3, owners: []int{1}, want: "too few"},
		{name: "rf=5 two failures tolerated", rf: 5, answers: []done{
			{"a", s0, errDown}, {"b", s0, errDown}, {"c", s0, nil}, {"d", s0, nil}, {"e", s0, nil}}},
		{name: "rf=5 three failures", rf: 5, answers: []done{
			{"a", s0, nil}, {"b", s0, errDown}, {"c", s0, errDown}, {"d", s0, errDown}}, want: "failed"},
		{name: "rf=5 early success", rf: 5, answers: []done{{"a", s0, nil}, {"b", s0, refusal}, {"c", s0, nil}}, refusal: true},
		{
			// series 0 on a,b,c; series 1 on b,c,d; series 2 on c,d,a.
			name: "rf=3 three series", rf: 3, owners: []int{3, 3, 3},
			answers: []done{{"a", []int32{0, 2}, errDown}, {"b", []int32{0, 1}, nil}, {"c", []int32{0, 1, 2}, nil}, {"d", []int32{1, 2}, nil}},
		},
		{
			name: "rf=3 three series, one lost", rf: 3, owners: []int{3, 3, 3},
			answers: []done{{"a", []int32{0, 2}, errDown}, {"b", []int32{0, 1}, nil}, {"c", []int32{0, 1, 2}, nil}, {"d", []int32{1, 2}, errDown}},
			want:    "failed", mentions: []string{"a", "d"},
		},
		{name: "nothing expected", rf: 3, owners: []int{}},
		{name: "series not expected are skipped", rf: 1, owners: []int{1, -1}, answers: []done{{"a", []int32{1}, errDown}, {"a", s0, nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owners := tc.owners
			if owners == nil {
				owners = []int{tc.rf}
			}
			r := NewReplication(len(owners), Quorum(tc.rf))
			for i, n := range owners {
				if n >= 0 {
					r.Expect(i, n)
				}
			}
			for _, d := range tc.answers {
				r.Done(d.series, d.owner, d.err)
			}
			err := waitBounded(t, r)
			if (r.Refusal() != nil) != tc.refusal {
				t.Fatalf("refusal %v", r.Refusal())
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if !errors.Is(err, ErrQuorumFailed) {
				t.Fatalf("err %v, want a quorum failure", err)
			}
			if got := errors.Is(err, ErrPeerOverloaded); got != (tc.want == "overloaded") {
				t.Fatalf("overloaded %v: %v", got, err)
			}
			if got := errors.Is(err, ErrTooFewOwners); got != (tc.want == "too few") {
				t.Fatalf("too few %v: %v", got, err)
			}
			for _, o := range tc.mentions {
				if !strings.Contains(err.Error(), o+": ") {
					t.Fatalf("error does not name owner %s: %v", o, err)
				}
			}
		})
	}
}

// TestReplicationLateDone: answers after the outcome change nothing.
func TestReplicationLateDone(t *testing.T) {
	r := NewReplication(2, 2)
	r.Expect(0, 3)
	r.Expect(1, 3)
	all := []int32{0, 1}
	r.Done(all, "a", nil)
	r.Done(all, "b", nil)
	if err := waitBounded(t, r); err != nil {
		t.Fatal(err)
	}
	r.Done(all, "c", errDown)
	r.Done(all, "a", errDown)
	r.Done(all, "b", errDown)
	if err := waitBounded(t, r); err != nil {
		t.Fatalf("after late failures: %v", err)
	}

	r = NewReplication(1, 2)
	r.Expect(0, 3)
	r.Done([]int32{0}, "a", errDown)
	r.Done([]int32{0}, "b", errDown)
	if err := waitBounded(t, r); !errors.Is(err, ErrQuorumFailed) {
		t.Fatalf("err %v", err)
	}
	r.Done([]int32{0}, "c", nil)
	r.Done([]int32{0}, "a", nil)
	if err := waitBounded(t, r); !errors.Is(err, ErrQuorumFailed) {
		t.Fatalf("after late successes: %v", err)
	}
}

// TestReplicationContext: Wait returns when ctx ends, with the answers
// so far.
func TestReplicationContext(t *testing.T) {
	r := NewReplication(3, 2)
	for i := range 3 {
		r.Expect(i, 3)
	}
	r.Done([]int32{0, 1, 2}, "a", nil)
	r.Done([]int32{0, 1}, "b", nil)
	r.Done([]int32{2}, "c", errOverloaded)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.Wait(ctx)
	if !errors.Is(err, ErrQuorumFailed) || !errors.Is(err, context.Canceled) || !errors.Is(err, ErrPeerOverloaded) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), "1 of 3 series") || !strings.Contains(err.Error(), "c: ") {
		t.Fatalf("err %v", err)
	}
	// A wait that ends while another caller's Done settles it still sees
	// the outcome.
	r.Done([]int32{2}, "b", nil)
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("after the quorum: %v", err)
	}
}

// TestReplicationErrorBounded: the error names a few failed owners.
func TestReplicationErrorBounded(t *testing.T) {
	r := NewReplication(1, 6)
	r.Expect(0, 20)
	for i := range 15 {
		r.Done([]int32{0}, fmt.Sprintf("node-%02d", i), fmt.Errorf("ring: forward to peer node-%02d: %w", i, errDown))
	}
	err := waitBounded(t, r)
	if !errors.Is(err, ErrQuorumFailed) || !errors.Is(err, errDown) {
		t.Fatalf("err %v", err)
	}
	if n := strings.Count(err.Error(), "connection refused"); n != maxOwnerErrors {
		t.Fatalf("%d owner errors in %v", n, err)
	}
	if !strings.Contains(err.Error(), "and 11 more") {
		t.Fatalf("err %v", err)
	}
	if errors.Is(err, ErrPeerOverloaded) {
		t.Fatalf("no owner was overloaded: %v", err)
	}

	// An overload past the named owners still marks the failure as one.
	r = NewReplication(1, 6)
	r.Expect(0, 10)
	for i := range maxOwnerErrors {
		r.Done(nil, fmt.Sprintf("node-%02d", i), errDown)
	}
	r.Done([]int32{0}, "node-09", errOverloaded)
	r.Done([]int32{0}, "node-10", errDown)
	r.Done([]int32{0}, "node-11", errDown)
	r.Done([]int32{0}, "node-12", errDown)
	r.Done([]int32{0}, "node-13", errDown)
	if err := waitBounded(t, r); !errors.Is(err, ErrQuorumFailed) || !errors.Is(err, ErrPeerOverloaded) || strings.Contains(err.Error(), "node-09") {
		t.Fatalf("err %v, want overloaded without naming node-09", err)
	}
}

// TestReplicationDoneAllocs: Done over a batch does not allocate, on
// success or on a tolerated failure.
func TestReplicationDoneAllocs(t *testing.T) {
	const n = 10000
	batch := make([]int32, n)
	for i := range batch {
		batch[i] = int32(i)
	}
	allocs := testing.AllocsPerRun(10, func() {
		r := NewReplication(n, 2)
		for i := range n {
			r.Expect(i, 3)
		}
		r.Done(batch, "a", errDown)
		r.Done(batch, "a", errDown) // the owner is already recorded
		r.Done(batch, "b", nil)
		r.Done(batch, "c", refusal)
	}) - testing.AllocsPerRun(10, func() {
		r := NewReplication(n, 2)
		for i := range n {
			r.Expect(i, 3)
		}
		r.Done(batch, "a", errDown)
	})
	if allocs != 0 {
		t.Fatalf("Done allocated %.0f times", allocs)
	}
}

// TestReplicationConcurrent: owners answer from many goroutines, in
// batches, while Wait waits; run under -race.
func TestReplicationConcurrent(t *testing.T) {
	const series, rf = 10000, 3
	for _, failing := range []bool{false, true} {
		t.Run(fmt.Sprintf("failing=%v", failing), func(t *testing.T) {
			r := NewReplication(series, Quorum(rf))
			for i := range series {
				r.Expect(i, rf)
			}
			var wg sync.WaitGroup
			for o := range rf {
				owner := fmt.Sprintf("node-%d", o)
				for start := 0; start < series; start += 500 {
					batch := make([]int32, 0, 500)
					for i := start; i < start+500; i++ {
						batch = append(batch, int32(i))
					}
					var err error
					if o == 0 || (failing && o == 1 && start == 1000) {
						err = errDown
					}
					wg.Go(func() { r.Done(batch, owner, err) })
				}
			}
			werr := waitBounded(t, r)
			wg.Wait()
			if failing != (werr != nil) {
				t.Fatalf("err %v", werr)
			}
		})
	}
}
