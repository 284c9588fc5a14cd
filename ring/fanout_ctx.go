package ring

import (
	"context"
	"slices"
	"sync"
)

// A fan-out read reports partial answers through its context: the
// query engine evaluates over any tsdb.Queryable and knows nothing of
// warnings from the store, so the API puts a Warnings collector in the
// request's context (WithWarnings) and adds what it gathered to the
// answer's warnings field. WithPartialResponse carries the request's
// partial_response parameter; WithListLimit the listing's limit.

type warningsKey struct{}
type partialKey struct{}
type listLimitKey struct{}

// Warnings collects the warnings of the reads made under one context.
// It is safe for concurrent use.
type Warnings struct {
	mu   sync.Mutex
	msgs []string // guarded by mu; without repeats
}

// WithWarnings returns a context whose fan-out reads add their warnings
// to the returned collector.
func WithWarnings(ctx context.Context) (context.Context, *Warnings) {
	w := &Warnings{}
	return context.WithValue(ctx, warningsKey{}, w), w
}

// Strings returns the warnings gathered so far, in the order they came.
func (w *Warnings) Strings() []string {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// addWarning records msg in ctx's collector, if it has one.
func addWarning(ctx context.Context, msg string) {
	w, _ := ctx.Value(warningsKey{}).(*Warnings)
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Contains(w.msgs, msg) {
		w.msgs = append(w.msgs, msg)
	}
}

// WithPartialResponse returns a context under which fan-out reads allow
// (or refuse) a partial answer, overriding the Queryable's default.
func WithPartialResponse(ctx context.Context, allow bool) context.Context {
	return context.WithValue(ctx, partialKey{}, allow)
}

func partialAllowed(ctx context.Context, def bool) bool {
	if v, ok := ctx.Value(partialKey{}).(bool); ok {
		return v
	}
	return def
}

// WithListLimit returns a context under which a fan-out ListSeries asks
// each node for at most n label sets (the listing's limit and one more).
func WithListLimit(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, listLimitKey{}, n)
}

func listLimit(ctx context.Context) int {
	n, _ := ctx.Value(listLimitKey{}).(int)
	return n
}
