package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Plan is one inspection and when it runs.
type Plan struct {
	Inspection Inspection
	// Interval is the time between the end of one run on a target and
	// the start of the next (a target may override it).
	Interval time.Duration
	// Timeout bounds a run: connecting, every request, the whole work.
	Timeout time.Duration
}

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	Plans []Plan
	// Targets returns the clusters to inspect. It is called on every
	// tick, so targets added to the config or the registry are picked up
	// without a restart.
	Targets func() []Target
	// Concurrency bounds the runs in progress across all targets. A
	// target has at most one run in progress, so a slow cluster holds at
	// most one slot, for at most its timeout.
	Concurrency int
	// Jitter spreads runs: each interval is stretched or shrunk by up to
	// this fraction, and first runs start at a random point of it, so
	// that ten thousand targets are not inspected in the same second.
	Jitter float64
	// MaxBackoff bounds how far a failing run's next attempt moves out:
	// after n failures in a row the interval doubles n times, up to this
	// (or the interval, if longer).
	MaxBackoff time.Duration
	// Tick is how often due runs are looked for.
	Tick time.Duration
}

// DefaultSchedulerOptions runs 4 inspections at a time with 10% jitter
// and backs off to 10 minutes.
func DefaultSchedulerOptions() SchedulerOptions {
	return SchedulerOptions{Concurrency: 4, Jitter: 0.1, MaxBackoff: 10 * time.Minute, Tick: time.Second}
}

// Validate checks the options.
func (o SchedulerOptions) Validate() error {
	if o.Targets == nil {
		return errors.New("no target source")
	}
	if o.Concurrency < 1 {
		return fmt.Errorf("concurrency %d: want at least 1", o.Concurrency)
	}
	if o.Jitter < 0 || o.Jitter >= 1 {
		return fmt.Errorf("jitter %g: want a fraction in [0, 1)", o.Jitter)
	}
	if o.MaxBackoff <= 0 || o.Tick <= 0 {
		return errors.New("max_backoff and tick must be positive")
	}
	for _, p := range o.Plans {
		if p.Interval <= 0 || p.Timeout <= 0 {
			return fmt.Errorf("%s: interval and timeout must be positive", p.Inspection.Name())
		}
	}
	return nil
}

// jobKey names one inspection of one target.
type jobKey struct{ cluster, inspection string }

// job is the schedule of one inspection of one target. Guarded by
// Scheduler.mu.
type job struct {
	plan     *Plan
	target   Target
	due      time.Time
	running  bool
	failures int
	state    any // the last successful run's Result.State
}

// Scheduler runs every planned inspection of every target on its
// interval, until its context ends.
type Scheduler struct {
	opts   SchedulerOptions // immutable
	runner *Runner          // immutable
	sem    chan struct{}    // one token per run in progress
	wake   chan struct{}    // a run ended: look for due runs now

	mu   sync.Mutex
	jobs map[jobKey]*job // guarded by mu
	busy map[string]bool // guarded by mu: clusters with a run in progress
}

// NewScheduler validates opts and returns a scheduler publishing through
// runner.
func NewScheduler(opts SchedulerOptions, runner *Runner) (*Scheduler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Scheduler{opts: opts, runner: runner, sem: make(chan struct{}, opts.Concurrency),
		wake: make(chan struct{}, 1), jobs: map[jobKey]*job{}, busy: map[string]bool{}}, nil
}

// Run schedules until ctx ends, then waits for the runs in progress
// (they end at once: they share ctx).
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(s.opts.Tick)
	defer tick.Stop()
	for {
		s.dispatch(ctx, &wg, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// dispatch refreshes the jobs from the targets and starts the due ones
// that fit, most overdue first.
func (s *Scheduler) dispatch(ctx context.Context, wg *sync.WaitGroup, now time.Time) {
	targets := s.opts.Targets()
	s.runner.metrics.targets.Set(float64(len(targets)))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(targets, now)
	var due []*job
	for _, j := range s.jobs {
		if !j.running && !j.due.After(now) && !s.busy[j.target.Cluster] {
			due = append(due, j)
		}
	}
	slices.SortFunc(due, func(a, b *job) int { return a.due.Compare(b.due) })
	for _, j := range due {
		if s.busy[j.target.Cluster] {
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.runner.metrics.delayed.Inc()
			return
		}
		j.running, s.busy[j.target.Cluster] = true, true
		t, prev := j.target, j.state
		wg.Go(func() {
			defer func() { <-s.sem }()
			rec, state := s.runner.Run(ctx, t, j.plan.Inspection, j.plan.Timeout, prev)
			s.finish(j, rec.Status != StatusFailed, state)
		})
	}
}

// refreshLocked adds jobs for new targets and inspections, updates the
// targets of existing ones and drops those of targets that are gone.
func (s *Scheduler) refreshLocked(targets []Target, now time.Time) {
	seen := make(map[jobKey]bool, len(s.jobs))
	for _, t := range targets {
		for i := range s.opts.Plans {
			p := &s.opts.Plans[i]
			if !t.Runs(p.Inspection.Name()) {
				continue
			}
			k := jobKey{t.Cluster, p.Inspection.Name()}
			seen[k] = true
			if j := s.jobs[k]; j != nil {
				j.target = t
				continue
			}
			first := time.Duration(rand.Float64() * s.opts.Jitter * float64(s.interval(p, &t)))
			s.jobs[k] = &job{plan: p, target: t, due: now.Add(first)}
		}
	}
	for k := range s.jobs {
		if !seen[k] {
			delete(s.jobs, k)
		}
	}
}

// finish schedules a job's next run: an interval after this one ended,
// or, after failures in a row, a doubled interval per failure.
func (s *Scheduler) finish(j *job, ok bool, state any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.running = false
	delete(s.busy, j.target.Cluster)
	next := s.interval(j.plan, &j.target)
	if ok {
		j.failures, j.state = 0, state
	} else {
		j.failures++
		limit := max(next, s.opts.MaxBackoff)
		for range min(j.failures-1, 30) {
			next = min(2*next, limit)
		}
	}
	spread := 1 + s.opts.Jitter*(2*rand.Float64()-1)
	j.due = time.Now().Add(time.Duration(float64(next) * spread))
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// interval is the plan's interval, or the target's override of it.
func (s *Scheduler) interval(p *Plan, t *Target) time.Duration {
	return cmp.Or(t.Intervals[p.Inspection.Name()], p.Interval)
}
