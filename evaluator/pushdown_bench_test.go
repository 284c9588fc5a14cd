package evaluator

import (
	"context"
	"testing"
	"time"

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
