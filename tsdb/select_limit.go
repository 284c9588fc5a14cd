package tsdb

import (
	"context"
	"fmt"
)

// seriesLimitKey carries a select's series limit in its context.
type seriesLimitKey struct{}

// WithSeriesLimit returns a context under which Select, SelectUnsorted,
// LabelNames and LabelValues with matchers fail with ErrTooManySeries
// once more than n series match, checked while the series are collected:
// a selector that matches ten million series costs the querier at most n
// series' bookkeeping, not ten million. n <= 0 means no limit.
func WithSeriesLimit(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, seriesLimitKey{}, n)
}

// seriesLimit is the limit WithSeriesLimit put in ctx, 0 for none.
func seriesLimit(ctx context.Context) int {
	n, _ := ctx.Value(seriesLimitKey{}).(int)
	return max(n, 0)
}

// checkSeriesLimit fails when found series exceed the limit of ctx.
func checkSeriesLimit(ctx context.Context, found int) error {
	if lim := seriesLimit(ctx); lim > 0 && found > lim {
		return fmt.Errorf("%w: the selector matches more than %d series", ErrTooManySeries, lim)
	}
	return nil
}

// SeriesLimit returns the limit WithSeriesLimit put in ctx, 0 for none:
// a querier that reads other stores (the ring's fan-out) passes it on.
func SeriesLimit(ctx context.Context) int { return seriesLimit(ctx) }
