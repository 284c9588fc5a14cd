package rules

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
)

// RecordingRule stores the result of an expression under a new name.
type RecordingRule struct {
	spec RuleSpec
	ruleHealth
}

// NewRecordingRule returns the rule for spec (which must be valid).
func NewRecordingRule(spec RuleSpec) *RecordingRule { return &RecordingRule{spec: spec} }

func (r *RecordingRule) Name() string   { return r.spec.Record }
func (r *RecordingRule) Spec() RuleSpec { return r.spec }

// Eval returns the expression's samples named after the rule, with the
// rule's labels set, stamped at ts-queryOffset.
func (r *RecordingRule) Eval(ctx context.Context, ts time.Time, queryOffset time.Duration, query QueryFunc, limit int) (evaluator.Vector, error) {
	evalT := ts.Add(-queryOffset)
	vec, err := query(ctx, r.spec.Expr, evalT)
	if err != nil {
		return nil, err
	}
	seen := make(map[uint64]struct{}, len(vec))
	out := make(evaluator.Vector, 0, len(vec))
	for _, s := range vec {
		lb := labels.NewBuilder(s.Metric)
		lb.Set(model.MetricNameLabel, r.spec.Record)
		for k, v := range r.spec.Labels {
			lb.Set(k, v)
		}
		ls := lb.Labels()
		h := ls.Hash()
		if _, dup := seen[h]; dup {
			return nil, fmt.Errorf("vector contains metrics with the same labelset after applying rule labels: %s", ls)
		}
		seen[h] = struct{}{}
		out = append(out, evaluator.Sample{Metric: ls, T: evalT.UnixMilli(), F: s.F})
	}
	if limit > 0 && len(out) > limit {
		return nil, fmt.Errorf("exceeded limit of %d with %d series", limit, len(out))
	}
	return out, nil
}
