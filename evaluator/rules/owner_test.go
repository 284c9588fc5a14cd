package rules

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// ringMember is one node's rule manager in a test ring: two members share
// one store, as the whole-ring Queryable and the write path make them see
// one store in a real ring.
type ringMember struct {
	name string
	m    *Manager
	sent *sent
	reg  *prometheus.Registry
}

func newRingMember(t *testing.T, name string, owner *atomic.Value, q *scripted, st headStore, specs []GroupSpec) *ringMember {
	t.Helper()
	rm := &ringMember{name: name, sent: &sent{}, reg: prometheus.NewRegistry()}
	opts := testOptions(q, st, rm.sent)
	opts.Manual, opts.Registerer = true, rm.reg
	opts.Owns = func(file, group string) bool { return owner.Load() == name }
	rm.m = newTestManager(t, opts)
	if err := rm.m.Update(specs); err != nil {
		t.Fatal(err)
	}
	return rm
}

// round runs the scheduled round at ts of every group of the member.
func (rm *ringMember) round(ts time.Time) {
	for _, g := range rm.m.Groups() {
		g.iteration(context.Background(), ts, 0)
	}
}

func (rm *ringMember) iterations(t *testing.T) float64 {
	t.Helper()
	return testutil.ToFloat64(rm.m.metrics.iterations.WithLabelValues("f.yml;g"))
}

func (rm *ringMember) owned(t *testing.T) float64 {
	t.Helper()
	mfs, err := rm.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "etcdgate_ring_owned_rule_groups" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no etcdgate_ring_owned_rule_groups")
	return 0
}

// TestOwnerEvaluatesAlone: of two nodes loading the same group, only the
// owner evaluates, writes and notifies; the iterations counter and the
// owned-groups gauge count only owned rounds.
func TestOwnerEvaluatesAlone(t *testing.T) {
	q, st := &scripted{}, newHeadStore(t)
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
	specs := []GroupSpec{{Name: "g", File: "f.yml", Rules: []RuleSpec{noLeaderRule(2*time.Minute, 0)}}}
	var owner atomic.Value
	owner.Store("a")
	a := newRingMember(t, "a", &owner, q, st, specs)
	b := newRingMember(t, "b", &owner, q, st, specs)
	for i := range 3 {
		ts := t0.Add(time.Duration(i) * time.Minute)
		a.round(ts)
		b.round(ts)
	}
	if ia, ib := a.iterations(t), b.iterations(t); ia != 3 || ib != 0 {
		t.Fatalf("iterations: owner %v, other %v; want 3 and 0", ia, ib)
	}
	if oa, ob := a.owned(t), b.owned(t); oa != 1 || ob != 0 {
		t.Fatalf("owned groups: owner %v, other %v; want 1 and 0", oa, ob)
	}
	if got := a.sent.take(); len(got) != 1 || got[0].State != StateFiring {
		t.Fatalf("owner sent %+v, want the firing alert once", got)
	}
	if got := b.sent.take(); len(got) != 0 {
		t.Fatalf("non-owner sent %+v", got)
	}
	if g := onlyGroup(t, b.m); len(g.rules[0].(*AlertingRule).ActiveAlerts()) != 0 {
		t.Fatal("non-owner holds alerts")
	}
}

// TestOwnershipMoves hands a group from node a to b and back: the new
// owner restores the alerts' clocks before its first evaluation, so a
// firing alert fires at that evaluation (ALERTS stays firing, the
// notification starts at the original ActiveAt) and a pending one keeps
// its clock; the old owner stops without resolving anything.
func TestOwnershipMoves(t *testing.T) {
	q, st := &scripted{}, newHeadStore(t)
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
	q.set("slow", evaluatorVector(sample(1, "cluster", "a")))
	slow := RuleSpec{Alert: "Slow", Expr: "slow", For: noLeaderRule(5*time.Minute, 0).For}
	specs := []GroupSpec{{Name: "g", File: "f.yml", Rules: []RuleSpec{noLeaderRule(2*time.Minute, 0), slow}}}
	var owner atomic.Value
	owner.Store("a")
	a := newRingMember(t, "a", &owner, q, st, specs)
	b := newRingMember(t, "b", &owner, q, st, specs)
	ts := t0
	step := func(want string) {
		t.Helper()
		owner.Store(want)
		a.round(ts)
		b.round(ts)
		ts = ts.Add(time.Minute)
	}
	for range 3 { // t0..t0+2m: NoLeader fires at t0+2m, Slow pends
		step("a")
	}
	a.sent.take()
	step("b") // t0+3m: b gains the group
	if got := a.sent.take(); len(got) != 0 {
		t.Fatalf("old owner sent %+v after losing the group (a resolution?)", got)
	}
	got := b.sent.take()
	if len(got) != 1 || got[0].State != StateFiring || !got[0].ActiveAt.Equal(t0) || !got[0].ResolvedAt.IsZero() {
		t.Fatalf("new owner sent %+v, want NoLeader firing since t0", got)
	}
	at := t0.Add(3 * time.Minute).UnixMilli()
	if _, ok := st.last(t, alertsSeries("firing", "cluster", "a", "severity", "page"), at); !ok {
		t.Fatal("ALERTS not firing at the new owner's first evaluation")
	}
	g := onlyGroup(t, b.m)
	for _, al := range g.rules[1].(*AlertingRule).ActiveAlerts() {
		if al.State != StatePending || !al.ActiveAt.Equal(t0) {
			t.Fatalf("Slow on the new owner: %s since %v, want pending since t0", al.State, al.ActiveAt)
		}
	}
	step("b") // t0+4m
	b.sent.take()
	step("b") // t0+5m: Slow fires 5m after t0, not 5m after the handover
	slowFired := false
	for _, al := range b.sent.take() { // NoLeader is resent every minute
		slowFired = slowFired || al.Labels.Get("alertname") == "Slow" && al.State == StateFiring
	}
	if !slowFired {
		t.Fatal("Slow not firing at t0+5m on the new owner")
	}
	step("a") // t0+6m: back to a, which must not reuse what it held at t0+2m
	if got := b.sent.take(); len(got) != 0 {
		t.Fatalf("old owner b sent %+v after losing the group", got)
	}
	regained := a.sent.take()
	if len(regained) != 2 {
		t.Fatalf("a sent %d alerts after regaining the group, want NoLeader and Slow", len(regained))
	}
	for _, al := range regained {
		if al.State != StateFiring || !al.ActiveAt.Equal(t0) {
			t.Fatalf("a after regaining: %s %s since %v, want firing since t0", al.Labels.Get("alertname"), al.State, al.ActiveAt)
		}
	}
	if ia, ib := a.iterations(t), b.iterations(t); ia != 4 || ib != 3 {
		t.Fatalf("iterations: a %v, b %v; want 4 and 3", ia, ib)
	}
}

// TestGainedGroupWithoutHistory: a node gaining a group nobody evaluated
// writes ALERTS from its first evaluation, and the 'for' clock starts then.
func TestGainedGroupWithoutHistory(t *testing.T) {
	q, st := &scripted{}, newHeadStore(t)
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
	var owner atomic.Value
	owner.Store("a")
	a := newRingMember(t, "a", &owner, q, st, []GroupSpec{{Name: "g", File: "f.yml", Rules: []RuleSpec{noLeaderRule(time.Minute, 0)}}})
	a.round(t0)
	if _, ok := st.last(t, alertsSeries("pending", "cluster", "a", "severity", "page"), t0.UnixMilli()); !ok {
		t.Fatal("ALERTS pending not written at the first owned evaluation")
	}
	if got := activeAt(t, onlyGroup(t, a.m)); !got.Equal(t0) {
		t.Fatalf("ActiveAt %v, want t0", got)
	}
}
