package evaluator

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/internal/etcdfleet"
	"github.com/etcdgate/etcdgate/tsdb"
)

// BenchmarkEvalPartial is a node's share of a pushed-down SLO
// aggregation: EvalPartial over 100 clusters of 3 members (about 100k
// series, 20 minutes of 15 s samples; the selector matches 52,800) and
// the encoding of its partial (100 groups),
// as an instant query and as a 16-step range query. bytes/group is what
// a group costs on the wire.
func BenchmarkEvalPartial(b *testing.B) {
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	fleet := etcdfleet.New(etcdfleet.Options{Clusters: 100, Members: 3})
	end := time.Unix(1_800_000_000, 0).UTC().UnixMilli()
	var buf []etcdfleet.Sample
	for ts := end - 20*60_000; ts <= end; ts += 15000 {
		app := head.Appender()
		buf = buf[:0]
		for m := range fleet.NumMembers() {
			buf = fleet.AppendMember(buf, m, ts)
		}
		for _, s := range buf {
			if err := app.Append(s.Labels, ts, s.V); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	e := NewEngine(nil, Options{})
	b.Run("kind=plain_instant_query", func(b *testing.B) {
		// The same aggregation evaluated as a query, for comparison.
		plain := NewEngine(head, Options{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := plain.Instant(context.Background(), `sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))`,
				time.UnixMilli(end)); err != nil {
				b.Fatal(err)
			}
		}
	})
	expr := `sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))`
	for _, tc := range []struct {
		name  string
		start int64
	}{{"instant", end}, {"range_16_steps", end - 15*60_000}} {
		b.Run("kind="+tc.name, func(b *testing.B) {
			spec := AggregateSpec{Expr: expr, Start: tc.start, End: end, Interval: 60_000}
			b.ReportAllocs()
			var wire []byte
			var p *PartialAggregate
			for b.Loop() {
				var err error
				if p, err = e.EvalPartial(context.Background(), head, spec); err != nil {
					b.Fatal(err)
				}
				wire = p.AppendBinary(wire[:0])
			}
			b.ReportMetric(float64(len(wire))/float64(p.Groups()), "bytes/group")
			b.ReportMetric(float64(p.Groups()), "groups")
			b.ReportMetric(float64(p.Stats.SeriesLoaded), "series")
		})
	}
}

// wireStore is a Pushdown that answers every aggregation with the same
// encoded partials, decoded anew each time, and no series left.
type wireStore struct {
	wire  [][]byte
	steps int
}

func (s *wireStore) Querier(int64, int64) (tsdb.Querier, error) {
	return nil, errors.New("wireStore: everything is pushed down")
}

func (s *wireStore) PushAggregate(_ context.Context, spec AggregateSpec) ([]*PartialAggregate, tsdb.Queryable, error) {
	var out []*PartialAggregate
	for _, b := range s.wire {
		p, err := DecodePartialAggregate(b, spec.Steps(), 1<<20)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, p)
	}
	return out, nil, nil
}

// BenchmarkPushdownAsk is the asking node's share of a pushed-down
// aggregation: decoding three nodes' partials of groups groups and
// merging and finishing them, as an instant query and a 16-step range
// query.
func BenchmarkPushdownAsk(b *testing.B) {
	end := time.Unix(1_800_000_000, 0).UTC()
	for _, groups := range []int{100, 10_000} {
		for _, tc := range []struct {
			name  string
			steps int
		}{{"instant", 1}, {"range_16_steps", 16}} {
			b.Run(fmt.Sprintf("groups=%d/kind=%s", groups, tc.name), func(b *testing.B) {
				s := &wireStore{steps: tc.steps}
				for node := range 3 {
					p := &PartialAggregate{}
					for g := range groups {
						grp := &fusedGroup{metric: labels.FromStrings("cluster", fmt.Sprint("etcd-eu-west-1-", g)), steps: make([]groupState, tc.steps)}
						for i := range grp.steps {
							grp.steps[i] = groupState{seen: true, value: float64(node*g + i), c: 1e-17, count: 3}
						}
						p.groups = append(p.groups, grp)
					}
					s.wire = append(s.wire, p.AppendBinary(nil))
				}
				e := NewEngine(s, Options{})
				q := `sum by (cluster) (rate(grpc_server_handled_total{grpc_code!="OK"}[5m]))`
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if tc.steps == 1 {
						_, err = e.Instant(context.Background(), q, end)
					} else {
						_, err = e.Range(context.Background(), q, end.Add(-15*time.Minute), end, time.Minute)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(s.wire[0])*3)/float64(groups), "wire_bytes/group")
			})
		}
	}
}
