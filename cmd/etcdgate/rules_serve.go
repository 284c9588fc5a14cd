package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/evaluator/notifier"
	"github.com/etcdgate/etcdgate/evaluator/rules"
	"github.com/etcdgate/etcdgate/evaluator/slo"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// ruleRuntime runs the rule manager and the notifier of a gateway. It
// exists from the start (the API serves /api/v1/rules from it) and runs
// once the store is open.
type ruleRuntime struct {
	logger      *slog.Logger
	reg         prometheus.Registerer
	notifier    *notifier.Manager // immutable after construction
	notifierRun sync.WaitGroup

	manager atomic.Pointer[rules.Manager] // nil until start
	query   atomic.Pointer[rules.QueryFunc]
	slos    atomic.Pointer[[]slo.Spec]
	globs   atomic.Pointer[[]string]    // rule and SLO files to watch
	watcher atomic.Pointer[fileWatcher] // set by start
	// ring is this node's ring (nil alone), set before start: each group
	// is evaluated by its owner only.
	ring *ringNode
}

func newRuleRuntime(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*ruleRuntime, error) {
	no, err := cfg.NotifierOptions()
	if err != nil {
		return nil, err
	}
	no.Registerer, no.Logger = reg, logger
	n, err := notifier.New(no)
	if err != nil {
		return nil, err
	}
	rt := &ruleRuntime{logger: logger, reg: reg, notifier: n}
	slos, globs := cfg.allSLOs, cfg.fileGlobs
	rt.slos.Store(&slos)
	rt.globs.Store(&globs)
	rt.notifierRun.Go(n.Run)
	return rt, nil
}

// start runs the groups of cfg over the store: queries through an engine
// of their own (rule evaluation does not wait for API queries' slots),
// results through the ingester's write path.
// reload re-reads the whole configuration when a rule or SLO file
// changes.
//
// reads is what rules query and restore their state from: the store, or
// on a node of a ring the whole ring (ring_reads.go).
func (rt *ruleRuntime) start(db *tsdb.DB, reads tsdb.Queryable, in *ingest.Ingester, cfg Config, reload func() error) error {
	q := rules.EngineQueryFunc(evaluator.NewEngine(reads, cfg.Query.EngineOptions()))
	rt.query.Store(&q)
	opts := rules.DefaultOptions()
	// Through rt.query, so that a reload of the query settings reaches
	// rule evaluation as it reaches the API.
	opts.Query = func(ctx context.Context, qs string, t time.Time) (evaluator.Vector, error) {
		return (*rt.query.Load())(ctx, qs, t)
	}
	// Queryable restores alert clocks (at start, and in a ring when this
	// node gains a group): in a ring it must read the whole ring, since
	// ALERTS_FOR_STATE is stored on its owners, not on the evaluator.
	opts.Appendable, opts.Queryable = pushAppender{in}, reads
	opts.Notify = rt.notify
	opts.EvaluationInterval = time.Duration(cfg.EvaluationInterval)
	opts.ResendDelay = time.Duration(cfg.Alerting.ResendDelay)
	opts.ExternalLabels = cfg.Alerting.ExternalLabels
	opts.ExternalURL = "http://" + cfg.ListenAddress
	opts.Registerer, opts.Logger = rt.reg, rt.logger
	if rt.ring != nil {
		opts.Owns = rt.ring.ownsRuleGroup
	}
	m, err := rules.NewManager(opts)
	if err != nil {
		return err
	}
	if err := m.Update(cfg.groups); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	rt.manager.Store(m)
	w := newFileWatcher(rt.logger, func() []string { return *rt.globs.Load() }, reload)
	w.start(rulesPollInterval)
	rt.watcher.Store(w)
	rt.logger.Info("rule manager started", "groups", len(cfg.groups))
	return nil
}

// rulesUpdate is a reloaded configuration's groups, SLOs, Alertmanagers
// and rule query engine, validated by prepare, applied by commit.
type rulesUpdate struct {
	groups   *rules.PreparedUpdate // nil until the manager runs
	notifier notifier.Options
	slos     []slo.Spec
	globs    []string
	query    *rules.QueryFunc // nil: the query settings did not change
}

// prepare validates what cfg changes, changing nothing. engine is the
// rules' new query engine, nil when the query settings did not change or
// the store is not open. Evaluation interval and resend delay changes
// take effect on restart.
func (rt *ruleRuntime) prepare(cfg Config, engine *evaluator.Engine) (*rulesUpdate, error) {
	no, err := cfg.NotifierOptions()
	if err != nil {
		return nil, err
	}
	u := &rulesUpdate{notifier: no, slos: cfg.allSLOs, globs: cfg.fileGlobs}
	if m := rt.manager.Load(); m != nil {
		if u.groups, err = m.Prepare(cfg.groups); err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
	}
	if engine != nil && rt.query.Load() != nil {
		q := rules.EngineQueryFunc(engine)
		u.query = &q
	}
	return u, nil
}

// commit applies a prepared update. The group swap waits for the
// evaluations in flight of replaced groups, holding no lock that reads or
// writes take.
func (rt *ruleRuntime) commit(u *rulesUpdate) {
	if err := rt.notifier.ApplyConfig(u.notifier); err != nil {
		rt.logger.Error("BUG: alerting options validated by prepare refused", "err", err)
	}
	if u.query != nil {
		rt.query.Store(u.query)
	}
	rt.slos.Store(&u.slos)
	rt.globs.Store(&u.globs)
	if m := rt.manager.Load(); m != nil && u.groups != nil {
		if err := m.Apply(u.groups); err != nil { // only when stopping
			rt.logger.Warn("rule groups not reloaded", "err", err)
		}
	}
}

func (rt *ruleRuntime) stop() {
	if w := rt.watcher.Load(); w != nil {
		w.close()
	}
	if m := rt.manager.Load(); m != nil {
		m.Stop()
	}
	rt.notifier.Stop()
	rt.notifierRun.Wait()
}

// Groups serves the API: none until the store is open.
func (rt *ruleRuntime) Groups() []*rules.Group {
	if m := rt.manager.Load(); m != nil {
		return m.Groups()
	}
	return nil
}

func (rt *ruleRuntime) sloStatus(ctx context.Context, t time.Time) (any, error) {
	q := rt.query.Load()
	if q == nil {
		return nil, fmt.Errorf("etcdgate is not ready: recovery in progress")
	}
	specs := *rt.slos.Load()
	if rt.ring != nil {
		// In a ring this node computes the SLOs it owns; the API asks
		// the other nodes for theirs.
		var owned []slo.Spec
		for _, s := range specs {
			if rt.ring.owns(ring.SLOKey(s.Name)) {
				owned = append(owned, s)
			}
		}
		specs = owned
	}
	st, err := slo.Statuses(ctx, *q, specs, t)
	if err != nil {
		return nil, err
	}
	return map[string]any{"slos": st}, nil
}

// notify hands rule alerts to the notifier as Prometheus's rule manager
// does: a resolved alert ends at its resolution, a firing one is valid
// until ValidUntil.
func (rt *ruleRuntime) notify(_ context.Context, expr string, alerts ...*rules.Alert) {
	out := make([]*notifier.Alert, 0, len(alerts))
	for _, a := range alerts {
		na := &notifier.Alert{
			Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.ActiveAt, EndsAt: a.ValidUntil,
			GeneratorURL: "/graph?g0.expr=" + url.QueryEscape(expr) + "&g0.tab=1",
		}
		if !a.ResolvedAt.IsZero() {
			na.EndsAt = a.ResolvedAt
		}
		out = append(out, na)
	}
	rt.notifier.Send(out...)
}

// pushAppender stores rule results through the ingester, with the same
// validation, relabeling and limits as remote write.
type pushAppender struct{ in *ingest.Ingester }

func (p pushAppender) AppendSamples(_ context.Context, samples []evaluator.Sample) error {
	series := make([]ingest.TimeSeries, len(samples))
	pairs := make([]ingest.Sample, len(samples))
	for i, s := range samples {
		ls := make([]ingest.Label, 0, s.Metric.Len())
		s.Metric.Range(func(l labels.Label) { ls = append(ls, l) })
		pairs[i] = ingest.Sample{Value: s.F, Timestamp: s.T}
		series[i] = ingest.TimeSeries{Labels: ls, Samples: pairs[i : i+1]}
	}
	res, err := p.in.Push(series)
	if err != nil {
		return err
	}
	return res.Err()
}
