package rules

import (
	"context"
	"fmt"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/tsdb"
)

// TSDBAppendable stores rule results straight into a store, without the
// ingest path's validation and relabeling: for backfilling rules over
// past data and for tests over a tsdb.Head.
type TSDBAppendable struct{ Store tsdb.Appendable }

// AppendSamples appends samples in one commit; the first refused sample
// rolls the whole evaluation back.
func (a TSDBAppendable) AppendSamples(_ context.Context, samples []evaluator.Sample) error {
	app := a.Store.Appender()
	for _, s := range samples {
		if err := app.Append(s.Metric, s.T, s.F); err != nil {
			app.Rollback()
			return fmt.Errorf("append %s: %w", s.Metric, err)
		}
	}
	return app.Commit()
}
