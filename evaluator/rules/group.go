package rules

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/tsdb"
)

// Group evaluates its rules in order, every interval, so that a
// recording rule feeds the rules after it.
type Group struct {
	// Immutable after construction.
	spec        GroupSpec
	key         string // "file;name", the rule_group label of self-metrics
	interval    time.Duration
	queryOffset time.Duration
	rules       []Rule
	opts        *Options
	metrics     *metrics

	// evalMu serialises evaluations and guards the fields below it.
	evalMu sync.Mutex
	// prevSeries holds, per rule, the series its last evaluation wrote
	// (by label hash), to write stale markers for those that vanish.
	prevSeries    []map[uint64]labels.Labels
	shouldRestore bool
	started       bool // run was started
	// inheritedFrom holds the indexes of the predecessor's rules whose
	// state this group took over (set before start, then read only).
	inheritedFrom map[int]bool

	// owned is whether this node evaluates the group (Options.Owns) as of
	// its last scheduled round; always true without Owns. Written under
	// evalMu, read without it.
	owned atomic.Bool

	mu           sync.Mutex // guards lastEval and lastDuration
	lastEval     time.Time
	lastDuration time.Duration

	// Lifecycle: run returns after stop is closed and closes done.
	stop chan struct{}
	done chan struct{}
}

func newGroup(spec GroupSpec, opts *Options, m *metrics) *Group {
	interval := time.Duration(spec.Interval)
	if interval == 0 {
		interval = opts.EvaluationInterval
	}
	g := &Group{
		spec: spec, key: spec.File + ";" + spec.Name, interval: interval,
		queryOffset: time.Duration(spec.QueryOffset), opts: opts, metrics: m,
		prevSeries: make([]map[uint64]labels.Labels, len(spec.Rules)),
		stop:       make(chan struct{}), done: make(chan struct{}),
	}
	for _, rs := range spec.Rules {
		g.rules = append(g.rules, newRule(withGroupLabels(rs, spec.Labels), opts.ExternalLabels, opts.ExternalURL))
	}
	g.owned.Store(opts.Owns == nil)
	m.groupInterval.WithLabelValues(g.key).Set(interval.Seconds())
	m.groupRules.WithLabelValues(g.key).Set(float64(len(g.rules)))
	return g
}

func (g *Group) Name() string            { return g.spec.Name }
func (g *Group) File() string            { return g.spec.File }
func (g *Group) Interval() time.Duration { return g.interval }
func (g *Group) Rules() []Rule           { return g.rules }

// Eval evaluates every rule at ts, stores the results and sends the
// alerts due. A failing rule is recorded in its health and does not stop
// the rules after it.
func (g *Group) Eval(ctx context.Context, ts time.Time) {
	g.evalMu.Lock()
	defer g.evalMu.Unlock()
	start := time.Now()
	samples := 0
	for i, r := range g.rules {
		if ctx.Err() != nil {
			break
		}
		samples += g.evalRule(ctx, i, r, ts)
	}
	took := time.Since(start)
	g.metrics.groupDuration.Observe(took.Seconds())
	g.metrics.groupLastDuration.WithLabelValues(g.key).Set(took.Seconds())
	g.metrics.groupLastEvalTime.WithLabelValues(g.key).Set(float64(ts.UnixNano()) / 1e9)
	g.metrics.groupLastEvalSample.WithLabelValues(g.key).Set(float64(samples))
	g.mu.Lock()
	g.lastEval, g.lastDuration = ts, took
	g.mu.Unlock()
}

// evalRule evaluates rule i and returns the samples it produced.
func (g *Group) evalRule(ctx context.Context, i int, r Rule, ts time.Time) int {
	start := time.Now()
	g.metrics.evalTotal.WithLabelValues(g.key).Inc()
	vec, err := r.Eval(ctx, ts, g.queryOffset, g.opts.Query, g.spec.Limit)
	if err == nil {
		if ar, ok := r.(*AlertingRule); ok {
			ar.sendAlerts(ctx, ts, g.opts.ResendDelay, g.interval, g.opts.Notify)
		}
		out := g.withStaleMarkers(i, vec, ts.Add(-g.queryOffset).UnixMilli())
		if len(out) > 0 {
			if aerr := g.opts.Appendable.AppendSamples(ctx, out); aerr != nil {
				err = fmt.Errorf("store results: %w", aerr)
			}
		}
	}
	took := time.Since(start)
	g.metrics.evalDuration.Observe(took.Seconds())
	r.setHealth(err, ts, took)
	if err != nil {
		g.metrics.evalFailures.WithLabelValues(g.key).Inc()
		g.opts.Logger.Warn("rule evaluation failed", "group", g.spec.Name, "file", g.spec.File,
			"rule", r.Name(), "err", err)
	}
	return len(vec)
}

// withStaleMarkers appends a stale marker at t for every series rule i
// wrote last time and not this time, so that queries stop seeing it at
// once instead of after the lookback delta, and remembers vec's series.
func (g *Group) withStaleMarkers(i int, vec evaluator.Vector, t int64) evaluator.Vector {
	cur := make(map[uint64]labels.Labels, len(vec))
	for _, s := range vec {
		cur[s.Metric.Hash()] = s.Metric
	}
	for h, ls := range g.prevSeries[i] {
		if _, ok := cur[h]; !ok {
			vec = append(vec, evaluator.Sample{Metric: ls, T: t, F: math.Float64frombits(value.StaleNaN)})
		}
	}
	g.prevSeries[i] = cur
	return vec
}

// markStale writes stale markers at ts for every series of the rules
// whose index keep does not hold: the group is gone or replaced.
func (g *Group) markStale(ctx context.Context, ts time.Time, keep map[int]bool) {
	g.evalMu.Lock()
	defer g.evalMu.Unlock()
	var vec evaluator.Vector
	for i, series := range g.prevSeries {
		if keep[i] {
			continue
		}
		for _, ls := range series {
			vec = append(vec, evaluator.Sample{Metric: ls, T: ts.UnixMilli(), F: math.Float64frombits(value.StaleNaN)})
		}
	}
	if len(vec) == 0 {
		return
	}
	if err := g.opts.Appendable.AppendSamples(ctx, vec); err != nil {
		g.opts.Logger.Warn("writing stale markers failed", "group", g.spec.Name, "err", err)
	}
}

// evalTimestamp returns the latest aligned evaluation time at or before
// now. Each group has a fixed offset within the interval (a hash of its
// key), so groups spread over the interval instead of running at once,
// and a reloaded group keeps its schedule.
func (g *Group) evalTimestamp(now time.Time) time.Time {
	offset := int64(xxhash.Sum64String(g.key) % uint64(g.interval))
	adj := now.UnixNano() - offset
	base := adj - adj%int64(g.interval)
	return time.Unix(0, base+offset)
}

// run evaluates the group on its schedule until stop is closed. Rounds
// that could not start on time (the previous one took too long) are
// counted as missed and skipped, never run late one after another.
func (g *Group) run(ctx context.Context) {
	defer close(g.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-g.stop:
		case <-g.done:
		}
		cancel()
	}()
	evalTs := g.evalTimestamp(time.Now()).Add(g.interval)
	first := time.NewTimer(time.Until(evalTs))
	defer first.Stop()
	select {
	case <-g.stop:
		return
	case <-first.C:
	}
	g.iteration(ctx, evalTs, 0)
	tick := time.NewTicker(g.interval)
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
			missed := time.Since(evalTs)/g.interval - 1
			if missed < 0 {
				missed = 0
			}
			evalTs = evalTs.Add((missed + 1) * g.interval)
			g.iteration(ctx, evalTs, int(missed))
		}
	}
}

// iteration is one scheduled round at ts, after missed rounds that could
// not start on time: the group is evaluated if this node owns it, and only
// then counted as iterations (and missed ones).
func (g *Group) iteration(ctx context.Context, ts time.Time, missed int) {
	if !g.claim(ctx, ts) {
		return
	}
	if missed > 0 {
		g.metrics.iterationsMissed.WithLabelValues(g.key).Add(float64(missed))
		g.opts.Logger.Warn("rule group evaluation fell behind; rounds skipped", "group", g.spec.Name, "missed", missed)
	}
	g.metrics.iterations.WithLabelValues(g.key).Add(float64(1 + missed))
	g.Eval(ctx, ts)
	if g.takeShouldRestore() {
		g.RestoreForState(ctx, time.Now())
	}
}

// claim decides whether this node evaluates the round at ts (Options.Owns)
// and handles a change of owner: a node that gains the group restores its
// alerts' clocks before evaluating it; one that loses it forgets them.
func (g *Group) claim(ctx context.Context, ts time.Time) bool {
	if g.opts.Owns == nil {
		return true
	}
	owns := g.opts.Owns(g.spec.File, g.spec.Name)
	switch was := g.owned.Load(); {
	case owns && !was:
		g.acquire(ctx, ts)
	case !owns && was:
		g.release()
	}
	return owns
}

// acquire makes this node the group's evaluator from the round at ts on.
// The last ALERTS_FOR_STATE of each alerting rule is read first and
// applied at the next evaluation to the alerts it finds, so that an alert
// the previous owner had firing fires at once (without a new 'for' wait)
// and a pending one keeps its clock; from that evaluation on ALERTS and
// ALERTS_FOR_STATE are written.
func (g *Group) acquire(ctx context.Context, ts time.Time) {
	g.evalMu.Lock()
	defer g.evalMu.Unlock()
	g.shouldRestore = false
	var q tsdb.Querier
	if g.opts.Queryable != nil {
		var err error
		if q, err = g.opts.Queryable.Querier(ts.Add(-g.opts.OutageTolerance).UnixMilli(), ts.UnixMilli()); err != nil {
			g.opts.Logger.Error("restoring alert state of a gained rule group: open querier", "group", g.spec.Name, "err", err)
			q = nil
		} else {
			defer q.Close()
		}
	}
	for _, r := range g.rules {
		ar, ok := r.(*AlertingRule)
		if !ok {
			continue
		}
		var saved map[uint64]savedState
		if q != nil && ar.holdDuration > 0 {
			var err error
			if saved, err = lastForStates(ctx, q, ar.Name()); err != nil {
				g.opts.Logger.Error("restoring alert state of a gained rule group", "group", g.spec.Name, "alert", ar.Name(), "err", err)
			}
		}
		ar.restoreAtNextEval(saved, g.opts.ForGracePeriod)
	}
	g.owned.Store(true)
	g.opts.Logger.Info("rule group: this node is its owner now", "group", g.spec.Name, "file", g.spec.File)
}

// release stops this node evaluating the group: its alerts are dropped
// without resolving them and its series without stale markers, since the
// new owner goes on with both.
func (g *Group) release() {
	g.evalMu.Lock()
	defer g.evalMu.Unlock()
	for i := range g.prevSeries {
		g.prevSeries[i] = nil
	}
	for _, r := range g.rules {
		if ar, ok := r.(*AlertingRule); ok {
			ar.forget()
		}
	}
	g.owned.Store(false)
	g.opts.Logger.Info("rule group: this node no longer owns it", "group", g.spec.Name, "file", g.spec.File)
}

// Owned reports whether this node evaluates the group (always true
// without Options.Owns).
func (g *Group) Owned() bool { return g.owned.Load() }

func (g *Group) takeShouldRestore() bool {
	g.evalMu.Lock()
	defer g.evalMu.Unlock()
	r := g.shouldRestore
	g.shouldRestore = false
	return r
}

// Status returns when the group last ran and how long it took.
func (g *Group) Status() (lastEval time.Time, took time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastEval, g.lastDuration
}

// logger returns a logger that discards when none was given.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// halt stops the run loop (if it was started) and waits for it.
func (g *Group) halt() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.evalMu.Lock() // an evaluation in flight (run or Eval) finishes first
	started := g.started
	g.evalMu.Unlock()
	if started {
		<-g.done
	}
}

// start runs the group's schedule in a goroutine, until halt.
func (g *Group) start() {
	g.evalMu.Lock()
	g.started = true
	g.evalMu.Unlock()
	go g.run(context.Background())
}

func (g *Group) setRestored() {
	for _, r := range g.rules {
		if ar, ok := r.(*AlertingRule); ok {
			ar.setRestored()
		}
	}
}

// copyState takes over the state of old's rules that match g's by kind,
// name and labels (the i-th such rule of old for the i-th of g): alerts
// with their clocks, the series written last (for stale markers) and
// health. It records in g.inheritedFrom which of old's rules it took.
func (g *Group) copyState(old *Group) {
	old.evalMu.Lock()
	defer old.evalMu.Unlock()
	byKey := map[string][]int{}
	for j, r := range old.rules {
		k := ruleKey(r)
		byKey[k] = append(byKey[k], j)
	}
	g.inheritedFrom = map[int]bool{}
	g.owned.Store(old.owned.Load())
	for i, r := range g.rules {
		k := ruleKey(r)
		if len(byKey[k]) == 0 {
			continue
		}
		j := byKey[k][0]
		byKey[k] = byKey[k][1:]
		g.inheritedFrom[j] = true
		g.prevSeries[i] = old.prevSeries[j]
		h := old.rules[j].Health()
		r.setHealthFrom(h)
		if ar, ok := r.(*AlertingRule); ok {
			ar.copyAlerts(old.rules[j].(*AlertingRule))
		}
	}
	g.mu.Lock()
	g.lastEval, g.lastDuration = old.Status()
	g.mu.Unlock()
}

func ruleKey(r Rule) string {
	s := r.Spec()
	kind := "record"
	if s.Alert != "" {
		kind = "alert"
	}
	ls := make([]string, 0, len(s.Labels))
	for k, v := range s.Labels {
		ls = append(ls, k+"="+v)
	}
	sort.Strings(ls)
	return fmt.Sprint(kind, "\x00", r.Name(), "\x00", ls)
}

// Limit is the group's limit on series or alerts per rule (0: none).
func (g *Group) Limit() int { return g.spec.Limit }

// withGroupLabels adds the group's labels to a rule's, as Prometheus 3
// does; the rule's own labels win.
func withGroupLabels(rs RuleSpec, groupLabels map[string]string) RuleSpec {
	if len(groupLabels) == 0 {
		return rs
	}
	merged := make(map[string]string, len(groupLabels)+len(rs.Labels))
	for k, v := range groupLabels {
		merged[k] = v
	}
	for k, v := range rs.Labels {
		merged[k] = v
	}
	rs.Labels = merged
	return rs
}
