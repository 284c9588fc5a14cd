package rules

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

var t0 = time.Unix(1_700_000_000, 0)

func alertsSeries(state string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{"__name__", "ALERTS", "alertname", "NoLeader", "alertstate", state}, kv...)...)
}

func forStateSeries(kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{"__name__", "ALERTS_FOR_STATE", "alertname", "NoLeader"}, kv...)...)
}

func noLeaderRule(forD, keep time.Duration) RuleSpec {
	return RuleSpec{
		Alert: "NoLeader", Expr: "no_leader", For: model.Duration(forD), KeepFiringFor: model.Duration(keep),
		Labels:      map[string]string{"severity": "page"},
		Annotations: map[string]string{"summary": "{{ $labels.cluster }} has no leader for {{ $value | humanize }} members"},
	}
}

func TestAlertFor(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	g := alertGroup(t, testOptions(q, st, n), noLeaderRule(time.Minute, 0))
	q.set("no_leader", evaluatorVector(sample(3, "cluster", "a")))
	ctx := context.Background()

	g.Eval(ctx, t0)
	pending := alertsSeries("pending", "cluster", "a", "severity", "page")
	firing := alertsSeries("firing", "cluster", "a", "severity", "page")
	if v, ok := st.last(t, pending, t0.UnixMilli()); !ok || v != 1 {
		t.Fatalf("ALERTS pending at t0 = %v, %v", v, ok)
	}
	if v, _ := st.last(t, forStateSeries("cluster", "a", "severity", "page"), t0.UnixMilli()); v != float64(t0.Unix()) {
		t.Fatalf("ALERTS_FOR_STATE = %v, want %d", v, t0.Unix())
	}
	if got := n.take(); len(got) != 0 {
		t.Fatalf("pending alert sent: %v", got)
	}
	g.Eval(ctx, t0.Add(30*time.Second))
	if _, ok := st.last(t, firing, t0.Add(30*time.Second).UnixMilli()); ok {
		t.Fatal("firing before 'for' elapsed")
	}
	t1 := t0.Add(time.Minute)
	g.Eval(ctx, t1)
	if _, ok := st.last(t, firing, t1.UnixMilli()); !ok {
		t.Fatal("not firing after 'for'")
	}
	if _, ok := st.last(t, pending, t1.UnixMilli()); ok {
		t.Fatal("pending series not marked stale once firing")
	}
	got := n.take()
	if len(got) != 1 || got[0].State != StateFiring || got[0].Annotations.Get("summary") != "a has no leader for 3 members" {
		t.Fatalf("sent %+v", got)
	}
	// Resent only after the resend delay (1m).
	g.Eval(ctx, t1.Add(30*time.Second))
	if got := n.take(); len(got) != 0 {
		t.Fatalf("resent before the resend delay: %v", got)
	}
	g.Eval(ctx, t1.Add(time.Minute))
	// Valid for 4 × max(resend delay, interval); the test interval is 1h.
	if got := n.take(); len(got) != 1 || !got[0].ValidUntil.Equal(t1.Add(time.Minute+4*time.Hour)) {
		t.Fatalf("resend: %+v", got)
	}
	// Resolution: inactive, sent once with ResolvedAt, series stale.
	q.set("no_leader", nil)
	t2 := t1.Add(90 * time.Second)
	g.Eval(ctx, t2)
	got = n.take()
	if len(got) != 1 || got[0].State != StateInactive || !got[0].ResolvedAt.Equal(t2) {
		t.Fatalf("resolution sent %+v", got)
	}
	if _, ok := st.last(t, firing, t2.UnixMilli()); ok {
		t.Fatal("ALERTS not stale after resolution")
	}
}

func TestAlertPendingVanishes(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	g := alertGroup(t, testOptions(q, st, n), noLeaderRule(5*time.Minute, 0))
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
	g.Eval(context.Background(), t0)
	q.set("no_leader", nil)
	g.Eval(context.Background(), t0.Add(time.Minute))
	if r := g.rules[0].(*AlertingRule); len(r.active) != 0 || len(n.take()) != 0 {
		t.Fatalf("pending alert kept or sent: %v", r.active)
	}
}

func TestAlertKeepFiringFor(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	g := alertGroup(t, testOptions(q, st, n), noLeaderRule(0, 2*time.Minute))
	ctx := context.Background()
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
	g.Eval(ctx, t0)
	firing := alertsSeries("firing", "cluster", "a", "severity", "page")
	if _, ok := st.last(t, firing, t0.UnixMilli()); !ok {
		t.Fatal("for: 0 does not fire at once")
	}
	q.set("no_leader", nil)
	for _, d := range []time.Duration{time.Minute, 2*time.Minute - time.Second} {
		g.Eval(ctx, t0.Add(time.Minute).Add(d-time.Minute))
		if _, ok := st.last(t, firing, t0.Add(d).UnixMilli()); !ok {
			t.Fatalf("stopped firing %v after the expression did, within keep_firing_for", d)
		}
	}
	// Back before keep_firing_for ends: the clock resets.
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a")))
	g.Eval(ctx, t0.Add(2*time.Minute))
	q.set("no_leader", nil)
	g.Eval(ctx, t0.Add(3*time.Minute))
	g.Eval(ctx, t0.Add(4*time.Minute+59*time.Second))
	if _, ok := st.last(t, firing, t0.Add(5*time.Minute).UnixMilli()); !ok {
		t.Fatal("keep_firing_for clock did not restart when the expression returned")
	}
	n.take()
	g.Eval(ctx, t0.Add(5*time.Minute))
	if _, ok := st.last(t, firing, t0.Add(5*time.Minute).UnixMilli()); ok {
		t.Fatal("still firing after keep_firing_for")
	}
	if got := n.take(); len(got) != 1 || got[0].State != StateInactive {
		t.Fatalf("resolution: %+v", got)
	}
}

func TestAlertLimitAndDuplicates(t *testing.T) {
	q, st, n := &scripted{}, newHeadStore(t), &sent{}
	opts := testOptions(q, st, n)
	spec := GroupSpec{Name: "g", File: "f", Limit: 1, Rules: []RuleSpec{noLeaderRule(0, 0)}}
	g := newGroup(spec, &opts, newMetrics(nil))
	q.set("no_leader", evaluatorVector(sample(1, "cluster", "a"), sample(1, "cluster", "b")))
	g.Eval(context.Background(), t0)
	if h := g.rules[0].Health(); h.Health != HealthBad || h.LastError != "exceeded limit of 1 with 2 alerts" {
		t.Fatalf("health %+v", h)
	}
	// Two samples that differ only in __name__ collide once it is dropped.
	q.set("no_leader", evaluatorVector(sample(1, "__name__", "x", "cluster", "a"), sample(1, "__name__", "y", "cluster", "a")))
	g.Eval(context.Background(), t0)
	if h := g.rules[0].Health(); h.Health != HealthBad {
		t.Fatalf("duplicate label sets accepted: %+v", h)
	}
}
