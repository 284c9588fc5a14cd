package probe

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// collector is an Emitter that keeps what it is given.
type collector struct {
	mu     sync.Mutex
	series []Series
}

func (c *collector) Emit(series []Series) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.series = append(c.series, series...)
	return nil
}

// value returns the latest value of the series named name whose labels
// include every pair of match, and whether there is one.
func (c *collector) value(name string, match ...string) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.series) - 1; i >= 0; i-- {
		s := c.series[i]
		if s.Labels.Get(model.MetricNameLabel) != name {
			continue
		}
		ok := true
		for j := 0; j+1 < len(match); j += 2 {
			ok = ok && s.Labels.Get(match[j]) == match[j+1]
		}
		if ok {
			return s.Samples[len(s.Samples)-1].V, true
		}
	}
	return 0, false
}

// testTarget is a target of the cluster with every standard label.
func testTarget(name string, c *etcdtest.Cluster) Target {
	return Target{Cluster: name, Endpoints: c.Endpoints(),
		Labels: map[string]string{"product": "payments", "scenario": "business", "size": "large", "region": "eu-west"}}
}

// inspect runs one inspection once and returns its record and series.
func inspect(t *testing.T, tg Target, in Inspection, timeout time.Duration, prev any) (Record, any, *collector) {
	t.Helper()
	col := &collector{}
	r := NewRunner(RunnerOptions{Emitter: col})
	rec, state := r.Run(context.Background(), tg, in, timeout, prev)
	t.Logf("%s %s: %s: %s (%d requests, %d bytes, %s)", rec.Cluster, rec.Inspection, rec.Status, rec.Message,
		rec.Requests, rec.BytesRead, rec.End.Sub(rec.Start).Round(time.Millisecond))
	return rec, state, col
}

// wantRecord fails unless rec has status and its message contains every
// one of parts.
func wantRecord(t *testing.T, rec Record, status Status, parts ...string) {
	t.Helper()
	if rec.Status != status {
		t.Fatalf("status %s, want %s: %s", rec.Status, status, rec.Message)
	}
	for _, p := range parts {
		if !strings.Contains(rec.Message, p) {
			t.Fatalf("message %q lacks %q", rec.Message, p)
		}
	}
}

// wantValue fails unless the series named name with labels match has
// value want.
func wantValue(t *testing.T, col *collector, want float64, name string, match ...string) {
	t.Helper()
	v, ok := col.value(name, match...)
	if !ok || v != want {
		t.Fatalf("%s%v = %v (found %v), want %v", name, match, v, ok, want)
	}
}
