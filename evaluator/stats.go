package evaluator

import (
	"sync/atomic"
	"time"
)

// QueryOpts are the options of one query, the query API's parameters;
// zero values take the engine's.
type QueryOpts struct {
	// LookbackDelta replaces the engine's lookback delta for this query
	// (the lookback_delta parameter). Zero: the engine's.
	LookbackDelta time.Duration
	// PerStepStats makes the result count the samples of every step
	// (stats=all), besides their total.
	PerStepStats bool
}

// StepSamples is the number of samples a query's selectors handed to
// its evaluation at one step (T, milliseconds).
type StepSamples struct {
	T int64
	N int64
}

// stepCounts counts the samples an evaluator's selectors hand to the
// evaluation at each of its steps: a point of an instant selector counts
// one, a range selector's window counts its samples, a subquery counts
// the samples its own evaluation took, at every outer step that reads
// it (Prometheus's totalQueryableSamples). Series workers add to it
// concurrently.
type stepCounts struct {
	total   atomic.Int64
	perStep []atomic.Int64 // nil unless per-step stats are asked for
}

func newStepCounts(steps int, perStep bool) *stepCounts {
	c := &stepCounts{}
	if perStep {
		c.perStep = make([]atomic.Int64, steps)
	}
	return c
}

// countPoints counts one sample at the step of each point of pts, which
// lie on ev's steps.
func (ev *evaluator) countPoints(pts []FPoint) {
	ev.counts.total.Add(int64(len(pts)))
	if ev.counts.perStep == nil {
		return
	}
	for _, p := range pts {
		ev.counts.perStep[(p.T-ev.start)/ev.interval].Add(1)
	}
}

// countAtStep counts n samples at step i of ev.
func (ev *evaluator) countAtStep(i int, n int64) {
	ev.counts.total.Add(n)
	if ev.counts.perStep != nil {
		ev.counts.perStep[i].Add(n)
	}
}

// stepSamples returns the per-step counts (nil unless asked for).
func (ev *evaluator) stepSamples() []StepSamples {
	if ev.counts.perStep == nil {
		return nil
	}
	out := make([]StepSamples, len(ev.counts.perStep))
	for i := range ev.counts.perStep {
		out[i] = StepSamples{T: ev.stepTime(i), N: ev.counts.perStep[i].Load()}
	}
	return out
}
