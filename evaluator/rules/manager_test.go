package rules

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/etcdgate/etcdgate/evaluator"
)

func newTestManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	m, err := NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

func onlyGroup(t *testing.T, m *Manager) *Group {
	t.Helper()
	gs := m.Groups()
	if len(gs) != 1 {
		t.Fatalf("%d groups", len(gs))
	}
	return gs[0]
}

func activeAt(t *testing.T, g *Group) time.Time {
	t.Helper()
	for _, r := range g.rules {
		if ar, ok := r.(*AlertingRule); ok {
			if as := ar.ActiveAlerts(); len(as) == 1 {
				return as[0].ActiveAt
			}
		}
	}
	t.Fatal("no single active alert")
	return time.Time{}
}

// TestRestartRestoresForState runs a pending alert, "restarts" (a new
// manager over the same store) and checks the 'for' clock continues from
// ALERTS_FOR_STATE instead of starting again.
func TestRestartRestoresForState(t *testing.T) {
	f := func(forD, down, wantShift time.Duration) {
		t.Helper()
		q, st, n := &scripted{}, newHeadStore(t), &sent{}
		q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
		spec := GroupSpec{Name: "g", File: "f.yml", Rules: []RuleSpec{noLeaderRule(forD, 0)}}
		ctx := context.Background()

		before := newTestManager(t, testOptions(q, st, n))
		if err := before.Update([]GroupSpec{spec}); err != nil {
			t.Fatal(err)
		}
		g := onlyGroup(t, before)
		g.Eval(ctx, t0) // first round: nothing to restore from yet
		g.RestoreForState(ctx, t0)
		g.Eval(ctx, t0.Add(time.Minute))
		g.Eval(ctx, t0.Add(2*time.Minute))
		before.Stop()

		restart := t0.Add(2*time.Minute + down)
		after := newTestManager(t, testOptions(q, st, n))
		if err := after.Update([]GroupSpec{spec}); err != nil {
			t.Fatal(err)
		}
		g = onlyGroup(t, after)
		g.Eval(ctx, restart)
		if got := activeAt(t, g); !got.Equal(restart) {
			t.Fatalf("before restore ActiveAt = %v", got)
		}
		g.RestoreForState(ctx, restart)
		if got, want := activeAt(t, g), t0.Add(wantShift); !got.Equal(want) {
			t.Fatalf("for %v, down %v: restored ActiveAt = %v, want %v", forD, down, got, want)
		}
	}
	// 'for' within the grace period (10m): the clock goes on from t0.
	f(5*time.Minute, time.Minute, 0)
	// Long 'for': the downtime does not count as pending time.
	f(30*time.Minute, 10*time.Minute, 10*time.Minute)
	// Long 'for' about to elapse: at least the grace period is left.
	f(11*time.Minute, 10*time.Minute, 12*time.Minute+10*time.Minute-11*time.Minute)
}

// TestRestartFiresOnTime: with the clock restored, an alert pending for
// 2 of its 5 minutes before a 1-minute outage fires 5 minutes after it
// first became active, not 5 minutes after the restart.
func TestRestartFiresOnTime(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
	spec := GroupSpec{Name: "g", File: "f.yml", Rules: []RuleSpec{noLeaderRule(5*time.Minute, 0)}}
	ctx := context.Background()
	m1 := newTestManager(t, testOptions(q, st, n))
	_ = m1.Update([]GroupSpec{spec})
	g := onlyGroup(t, m1)
	for i := range 3 {
		g.Eval(ctx, t0.Add(time.Duration(i)*time.Minute))
		if i == 0 {
			g.RestoreForState(ctx, t0)
		}
	}
	m1.Stop()
	m2 := newTestManager(t, testOptions(q, st, n))
	_ = m2.Update([]GroupSpec{spec})
	g = onlyGroup(t, m2)
	g.Eval(ctx, t0.Add(3*time.Minute))
	g.RestoreForState(ctx, t0.Add(3*time.Minute))
	g.Eval(ctx, t0.Add(5*time.Minute))
	firing := alertsSeries("firing", "cluster", "a", "severity", "page")
	if _, ok := st.last(t, firing, t0.Add(5*time.Minute).UnixMilli()); !ok {
		t.Fatal("restored alert not firing at ActiveAt + for")
	}
}

func TestReloadKeepsState(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
	q.set("up", evaluatorVector(sample(1, "job", "etcd")))
	ctx := context.Background()
	rec := RuleSpec{Record: "job:up:sum", Expr: "up"}
	spec := GroupSpec{Name: "g", File: "f.yml", Rules: []RuleSpec{rec, noLeaderRule(time.Minute, 0)}}
	m := newTestManager(t, testOptions(q, st, n))
	if err := m.Update([]GroupSpec{spec}); err != nil {
		t.Fatal(err)
	}
	g1 := onlyGroup(t, m)
	g1.RestoreForState(ctx, t0)
	g1.Eval(ctx, t0)

	// The same spec again: the very same group keeps running.
	if err := m.Update([]GroupSpec{spec}); err != nil || onlyGroup(t, m) != g1 {
		t.Fatalf("unchanged group replaced (err %v)", err)
	}
	// A changed group (new rule in front, recording rule dropped, alert
	// expression edited): the alert keeps its clock.
	changed := spec
	alert := noLeaderRule(time.Minute, 0)
	alert.Expr = "no_leader > 0"
	q.set("no_leader > 0", evaluatorVector(sample(1, "cluster", "a")))
	changed.Rules = []RuleSpec{{Record: "other:rule", Expr: "up"}, alert}
	if err := m.Update([]GroupSpec{changed}); err != nil {
		t.Fatal(err)
	}
	g2 := onlyGroup(t, m)
	if g2 == g1 {
		t.Fatal("changed group not replaced")
	}
	if got := activeAt(t, g2); !got.Equal(t0) {
		t.Fatalf("ActiveAt after reload = %v, want %v", got, t0)
	}
	g2.Eval(ctx, t0.Add(time.Minute))
	if _, ok := st.last(t, alertsSeries("firing", "cluster", "a", "severity", "page"), t0.Add(time.Minute).UnixMilli()); !ok {
		t.Fatal("alert did not fire on its original schedule after the reload")
	}
	// The dropped recording rule's series got a stale marker.
	if _, ok := st.last(t, labelsOf("__name__", "job:up:sum", "job", "etcd"), time.Now().UnixMilli()); ok {
		t.Fatal("series of a removed rule not marked stale")
	}
	// Removing the group stops it and marks its series stale.
	if err := m.Update(nil); err != nil || len(m.Groups()) != 0 {
		t.Fatalf("groups left: %v (err %v)", m.Groups(), err)
	}
	if _, ok := st.last(t, labelsOf("__name__", "other:rule", "job", "etcd"), time.Now().UnixMilli()); ok {
		t.Fatal("series of a removed group not marked stale")
	}
}

func TestUpdateRefusesBadSpecs(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	m := newTestManager(t, testOptions(q, st, n))
	g := GroupSpec{Name: "g", File: "f", Rules: []RuleSpec{{Record: "a:b", Expr: "up"}}}
	if err := m.Update([]GroupSpec{g, g}); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Fatalf("duplicate groups: %v", err)
	}
	bad := GroupSpec{Name: "g", File: "f", Rules: []RuleSpec{{Record: "a:b", Expr: "sum("}}}
	if err := m.Update([]GroupSpec{bad}); err == nil {
		t.Fatal("invalid rule accepted")
	}
	if _, err := NewManager(Options{}); err == nil {
		t.Fatal("options without wiring accepted")
	}
}

func TestRecordingRuleStaleMarkers(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	g := alertGroup(t, testOptions(q, st, n), RuleSpec{Record: "job:up:sum", Expr: "up", Labels: map[string]string{"src": "rule"}})
	q.set("up", evaluatorVector(sample(1, "__name__", "up", "job", "a"), sample(2, "__name__", "up", "job", "b")))
	g.Eval(context.Background(), t0)
	b := labelsOf("__name__", "job:up:sum", "job", "b", "src", "rule")
	if v, ok := st.last(t, b, t0.UnixMilli()); !ok || v != 2 {
		t.Fatalf("recorded %v %v", v, ok)
	}
	q.set("up", evaluatorVector(sample(1, "__name__", "up", "job", "a")))
	g.Eval(context.Background(), t0.Add(time.Minute))
	if _, ok := st.last(t, b, t0.Add(time.Minute).UnixMilli()); ok {
		t.Fatal("vanished series not marked stale")
	}
}

// TestMissedIterations runs a group whose evaluation takes longer than
// its interval: rounds are skipped and counted, not run late.
func TestMissedIterations(t *testing.T) {
	st, reg := newHeadStore(t), prometheus.NewRegistry()
	var calls atomic.Int32
	opts := DefaultOptions()
	opts.Appendable, opts.Registerer, opts.EvaluationInterval = st, reg, 20*time.Millisecond
	opts.Query = func(ctx context.Context, _ string, _ time.Time) (evaluator.Vector, error) {
		if calls.Add(1) == 1 {
			time.Sleep(100 * time.Millisecond)
		}
		return nil, nil
	}
	m := newTestManager(t, opts)
	if err := m.Update([]GroupSpec{{Name: "slow", File: "f", Rules: []RuleSpec{{Record: "a:b", Expr: "up"}}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	m.Stop()
	missed := testutil.ToFloat64(m.metrics.iterationsMissed.WithLabelValues("f;slow"))
	iters := testutil.ToFloat64(m.metrics.iterations.WithLabelValues("f;slow"))
	if missed < 1 || iters < missed+float64(calls.Load()) {
		t.Fatalf("missed %v, iterations %v, evaluations %d", missed, iters, calls.Load())
	}
	if n, err := testutil.GatherAndCount(reg, "etcdgate_rule_group_last_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("last duration series: %d %v", n, err)
	}
}

// TestApplyDoesNotBlockReaders replaces a group while it is evaluating:
// Apply waits for that evaluation to finish, and Groups (what the API
// serves) answers meanwhile. A failed Prepare changes nothing.
func TestApplyDoesNotBlockReaders(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	entered, release := make(chan struct{}), make(chan struct{})
	opts := testOptions(q, st, n)
	opts.Query = func(ctx context.Context, qs string, at time.Time) (evaluator.Vector, error) {
		close(entered)
		<-release
		return q.query(ctx, qs, at)
	}
	m := newTestManager(t, opts)
	spec := GroupSpec{Name: "g", File: "f.yml", Rules: []RuleSpec{{Record: "a:b", Expr: "up"}}}
	if err := m.Update([]GroupSpec{spec}); err != nil {
		t.Fatal(err)
	}
	g1 := onlyGroup(t, m)
	evalDone := make(chan struct{})
	go func() { defer close(evalDone); g1.Eval(context.Background(), t0) }()
	<-entered

	if _, err := m.Prepare([]GroupSpec{spec, spec}); err == nil {
		t.Fatal("duplicate groups prepared")
	}
	changed := spec
	changed.Rules = []RuleSpec{{Record: "a:c", Expr: "up"}}
	u, err := m.Prepare([]GroupSpec{changed})
	if err != nil || onlyGroup(t, m) != g1 {
		t.Fatalf("Prepare changed the running groups (err %v)", err)
	}
	applied := make(chan error, 1)
	go func() { applied <- m.Apply(u) }()
	groups := make(chan []*Group, 1)
	go func() { groups <- m.Groups() }()
	select {
	case gs := <-groups:
		if len(gs) != 1 || gs[0] != g1 {
			t.Fatalf("during Apply, Groups = %v, want the old group until it halts", gs)
		}
	case <-time.After(30 * time.Second): // a cap, not a measurement: blocked means deadlocked
		t.Fatal("Groups blocked behind a halting group")
	}
	select {
	case err := <-applied:
		t.Fatalf("Apply returned (%v) before the evaluation in flight ended", err)
	default:
	}
	close(release)
	<-evalDone
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if g2 := onlyGroup(t, m); g2 == g1 || g2.spec.Rules[0].Record != "a:c" {
		t.Fatalf("group not replaced: %+v", g2.spec)
	}
}
