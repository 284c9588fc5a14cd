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

// stepCounts counts, per step of an evaluator, as Prometheus 3 counts
// them:
//   - queryable samples (totalQueryableSamples): the samples handed to
//     the evaluation at each step. A point of an instant selector counts
//     one; a range selector's window counts its samples at every step; a
//     subquery counts the samples its own evaluation took, at every outer
//     step that reads it;
//   - read samples (samplesRead): a sample counts once, at the first step
//     that reads it: an instant selector's point, a window's samples at
//     the first step and then only those newer than the previous step's
//     window, a subquery's read samples at the first outer step.
//
// Series workers add to it concurrently.
type stepCounts struct {
	total, read         atomic.Int64
	perStep, readByStep []atomic.Int64 // nil unless per-step stats are asked for
}

func newStepCounts(steps int, perStep bool) *stepCounts {
	c := &stepCounts{}
	if perStep {
		c.perStep = make([]atomic.Int64, steps)
		c.readByStep = make([]atomic.Int64, steps)
	}
	return c
}

// countPoints counts one queryable sample at the step of each point of
// pts, which lie on ev's steps, and as many read samples; pinned (the
// selector has @) means every point is the same sample, read once, at
// the first step, as Prometheus reads a step-invariant selector once.
func (ev *evaluator) countPoints(pts []FPoint, pinned bool) {
	ev.counts.total.Add(int64(len(pts)))
	if pinned {
		ev.countReadAtStep(0, 1)
	} else {
		ev.counts.read.Add(int64(len(pts)))
	}
	if ev.counts.perStep == nil {
		return
	}
	for _, p := range pts {
		i := (p.T - ev.start) / ev.interval
		ev.counts.perStep[i].Add(1)
		if !pinned {
			ev.counts.readByStep[i].Add(1)
		}
	}
}

// countSubquery counts, at each of ev's steps, the samples of the
// subquery sub (which kept per-step counts) whose steps fall in that
// step's window (ref-rng, ref]: all of them as queryable, and those not
// in the previous step's window as read, as Prometheus 3 counts a
// subquery that a range function reads.
func (ev *evaluator) countSubquery(sub *evaluator, mods selectorMods, rng int64) {
	n := len(sub.counts.perStep)
	cumQ, cumR := make([]int64, n+1), make([]int64, n+1)
	for k := range n {
		cumQ[k+1] = cumQ[k] + sub.counts.perStep[k].Load()
		cumR[k+1] = cumR[k] + sub.counts.readByStep[k].Load()
	}
	lo, hi, prevHi := 0, 0, 0
	for i := range ev.numSteps() {
		ref := mods.refTime(ev.stepTime(i))
		for hi < n && sub.stepTime(hi) <= ref {
			hi++
		}
		for lo < hi && sub.stepTime(lo) <= ref-rng {
			lo++
		}
		ev.countAtStep(i, cumQ[hi]-cumQ[lo])
		from := lo
		if i > 0 {
			from = max(lo, prevHi)
		}
		ev.countReadAtStep(i, cumR[hi]-cumR[from])
		prevHi = hi
	}
}

// countAtStep counts n queryable samples at step i of ev.
func (ev *evaluator) countAtStep(i int, n int64) {
	ev.counts.total.Add(n)
	if ev.counts.perStep != nil {
		ev.counts.perStep[i].Add(n)
	}
}

// countReadAtStep counts n read samples at step i of ev.
func (ev *evaluator) countReadAtStep(i int, n int64) {
	ev.counts.read.Add(n)
	if ev.counts.readByStep != nil {
		ev.counts.readByStep[i].Add(n)
	}
}

// stepSamples returns the per-step counts of queryable and read samples
// (nil unless asked for).
func (ev *evaluator) stepSamples() (queryable, read []StepSamples) {
	if ev.counts.perStep == nil {
		return nil, nil
	}
	queryable = make([]StepSamples, len(ev.counts.perStep))
	read = make([]StepSamples, len(ev.counts.perStep))
	for i := range ev.counts.perStep {
		queryable[i] = StepSamples{T: ev.stepTime(i), N: ev.counts.perStep[i].Load()}
		read[i] = StepSamples{T: ev.stepTime(i), N: ev.counts.readByStep[i].Load()}
	}
	return queryable, read
}
