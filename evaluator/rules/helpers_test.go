package rules

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/tsdb"
)

// headStore appends rule results to a real tsdb.Head.
type headStore struct{ h *tsdb.Head }

func newHeadStore(t testing.TB) headStore {
	t.Helper()
	h, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return headStore{h}
}

func (s headStore) AppendSamples(ctx context.Context, samples []evaluator.Sample) error {
	return TSDBAppendable{s.h}.AppendSamples(ctx, samples)
}

// last returns the last sample at or before t of the series ls, and
// whether there is one that is not a stale marker.
func (s headStore) last(t testing.TB, ls labels.Labels, at int64) (float64, bool) {
	t.Helper()
	q, err := s.h.Querier(math.MinInt64, at)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var ms []*labels.Matcher
	ls.Range(func(l labels.Label) { ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value)) })
	set := q.Select(context.Background(), ms...)
	for set.Next() {
		if labels.Equal(set.At().Labels(), ls) {
			it := set.At().Iterator(nil)
			var v float64
			ok := false
			for it.Next() {
				_, v = it.At()
				ok = true
			}
			return v, ok && !value.IsStaleNaN(v)
		}
	}
	return 0, false
}

// scripted answers queries with vectors the test sets: the expression
// results at the instant under test.
type scripted struct {
	mu  sync.Mutex
	res map[string]evaluator.Vector
}

func (s *scripted) set(expr string, v evaluator.Vector) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.res == nil {
		s.res = map[string]evaluator.Vector{}
	}
	s.res[expr] = v
}

func (s *scripted) query(_ context.Context, qs string, t time.Time) (evaluator.Vector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(evaluator.Vector, len(s.res[qs]))
	for i, x := range s.res[qs] {
		out[i] = evaluator.Sample{Metric: x.Metric, T: t.UnixMilli(), F: x.F}
	}
	return out, nil
}

// sent records notifications.
type sent struct {
	mu     sync.Mutex
	alerts []Alert
}

func (s *sent) notify(_ context.Context, _ string, alerts ...*Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range alerts {
		s.alerts = append(s.alerts, *a)
	}
}

func (s *sent) take() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.alerts
	s.alerts = nil
	return out
}

func sample(v float64, kv ...string) evaluator.Sample {
	return evaluator.Sample{Metric: labels.FromStrings(kv...), F: v}
}

// testOptions wires rules to the scripted queries, a head and a recorder.
func testOptions(q *scripted, st headStore, n *sent) Options {
	o := DefaultOptions()
	o.Query, o.Appendable, o.Queryable, o.Notify = q.query, st, st.h, n.notify
	o.EvaluationInterval = time.Hour // groups are driven by Eval in tests
	o.Logger = orDiscard(nil)
	return o
}

func alertGroup(t testing.TB, opts Options, specs ...RuleSpec) *Group {
	t.Helper()
	spec := GroupSpec{Name: "g", File: "f.yml", Rules: specs}
	if errs := (&RuleFile{Groups: []GroupSpec{spec}}).Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	g := newGroup(spec, &opts, newMetrics(nil))
	g.setRestored()
	return g
}

func evaluatorVector(s ...evaluator.Sample) evaluator.Vector { return s }

func labelsOf(kv ...string) labels.Labels { return labels.FromStrings(kv...) }
