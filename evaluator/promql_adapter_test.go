package evaluator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/stats"

	"github.com/etcdgate/etcdgate/tsdb"
)

// headStorage is a storage.Storage over our own tsdb.Head, so that
// Prometheus's test suite loads its data into our store. Only what the
// suite calls is implemented; the embedded interface is nil.
type headStorage struct {
	storage.Storage
	head *tsdb.Head
}

func newHeadStorage(t testing.TB) storage.Storage {
	opts := tsdb.DefaultHeadOptions()
	head, err := tsdb.NewHead(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &headStorage{head: head}
}

func (s *headStorage) AppenderV2(context.Context) storage.AppenderV2 {
	return &headAppender{app: s.head.Appender()}
}

func (s *headStorage) Close() error { return nil }

type headAppender struct {
	app tsdb.Appender
}

func (a *headAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return 0, nil // not stored; the evals that read them are skipped
	}
	ref, err := a.app.AppendSeries(ls, t, v)
	return storage.SeriesRef(ref), err
}

func (a *headAppender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, nil
}

func (a *headAppender) Commit() error   { return a.app.Commit() }
func (a *headAppender) Rollback() error { a.app.Rollback(); return nil }

// queryEngine adapts our Engine to promql.QueryEngine.
type queryEngine struct {
	opts Options
}

func (qe queryEngine) engineFor(q storage.Queryable) *Engine {
	hs, ok := q.(*headStorage)
	if !ok {
		panic(fmt.Sprintf("queryable %T is not a headStorage", q))
	}
	return NewEngine(hs.head, qe.opts)
}

func (qe queryEngine) NewInstantQuery(_ context.Context, q storage.Queryable, _ promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	e := qe.engineFor(q)
	return &query{qs: qs, run: func(ctx context.Context) (*Result, error) { return e.Instant(ctx, qs, ts) }}, nil
}

func (qe queryEngine) NewRangeQuery(_ context.Context, q storage.Queryable, _ promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	e := qe.engineFor(q)
	return &query{qs: qs, run: func(ctx context.Context) (*Result, error) { return e.Range(ctx, qs, start, end, step) }}, nil
}

type query struct {
	qs  string
	run func(ctx context.Context) (*Result, error)
}

func (q *query) Exec(ctx context.Context) *promql.Result {
	res, err := q.run(ctx)
	if err != nil {
		return &promql.Result{Err: err}
	}
	return &promql.Result{Value: toPromValue(res.Value), Warnings: toPromAnnotations(res.Warnings)}
}

func (q *query) Close()                      {}
func (q *query) Statement() parser.Statement { return nil }
func (q *query) Stats() *stats.Statistics    { return nil }
func (q *query) Cancel()                     {}
func (q *query) String() string              { return q.qs }

func toPromValue(v Value) parser.Value {
	switch v := v.(type) {
	case Vector:
		out := make(promql.Vector, len(v))
		for i, s := range v {
			out[i] = promql.Sample{Metric: s.Metric, T: s.T, F: s.F}
		}
		return out
	case Matrix:
		out := make(promql.Matrix, len(v))
		for i, s := range v {
			pts := make([]promql.FPoint, len(s.Floats))
			for k, p := range s.Floats {
				pts[k] = promql.FPoint{T: p.T, F: p.F}
			}
			out[i] = promql.Series{Metric: s.Metric, Floats: pts}
		}
		return out
	case Scalar:
		return promql.Scalar{T: v.T, V: v.V}
	case String:
		return promql.String{T: v.T, V: v.V}
	}
	panic(fmt.Sprintf("unexpected value %T", v))
}

// annotation is one of our annotations as a Prometheus annotation error.
type annotation struct{ Annotation }

func (a annotation) Error() string { return a.Msg }

func (a annotation) Unwrap() error {
	if a.Info {
		return annotations.PromQLInfo
	}
	return annotations.PromQLWarning
}

func toPromAnnotations(as Annotations) annotations.Annotations {
	var out annotations.Annotations
	for _, a := range as {
		out.Add(annotation{a})
	}
	return out
}
