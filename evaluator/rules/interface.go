package rules

import (
	"context"
	"fmt"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
)

// QueryFunc evaluates an instant query at t. A scalar result comes back
// as a one-sample vector without labels, as Prometheus's rule manager
// treats it.
type QueryFunc func(ctx context.Context, qs string, t time.Time) (evaluator.Vector, error)

// Appendable stores rule results (recorded series, ALERTS,
// ALERTS_FOR_STATE and stale markers). samples is read only during the
// call. The samples of one call belong to one rule evaluation.
type Appendable interface {
	AppendSamples(ctx context.Context, samples []evaluator.Sample) error
}

// NotifyFunc hands alerts that need sending to the notifier. expr is the
// rule's expression, for the generator URL. The alerts are copies the
// callee may keep.
type NotifyFunc func(ctx context.Context, expr string, alerts ...*Alert)

// EngineQueryFunc adapts the query engine to a QueryFunc.
func EngineQueryFunc(e *evaluator.Engine) QueryFunc {
	return func(ctx context.Context, qs string, t time.Time) (evaluator.Vector, error) {
		res, err := e.Instant(ctx, qs, t)
		if err != nil {
			return nil, err
		}
		switch v := res.Value.(type) {
		case evaluator.Vector:
			return v, nil
		case evaluator.Scalar:
			return evaluator.Vector{{T: v.T, F: v.V}}, nil
		}
		return nil, fmt.Errorf("rule result is a %s, not an instant vector or scalar", res.Value.Type())
	}
}
