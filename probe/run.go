package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/internal/logthrottle"
)

// RunnerOptions wire a Runner.
type RunnerOptions struct {
	// Emitter receives every run's series; nil drops them.
	Emitter Emitter
	// Records keeps every run's record; nil keeps none.
	Records    *RecordStore
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// MaxResponseBytes bounds one etcd answer (0: DefaultMaxResponseBytes).
	MaxResponseBytes int
}

// Runner runs one inspection against one target and publishes what it
// found: series to the Emitter, a record to the RecordStore.
type Runner struct {
	opts    RunnerOptions         // immutable
	metrics *metrics              // immutable
	panics  *logthrottle.Throttle // one log line per target and inspection a minute
}

// NewRunner returns a Runner; its metrics are registered with
// opts.Registerer.
func NewRunner(opts RunnerOptions) *Runner {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{opts: opts, metrics: newMetrics(opts.Registerer), panics: logthrottle.New(time.Minute, maxListed)}
}

// Run runs insp once against t within timeout. prev is the state the
// previous successful run returned. It returns the record and the state
// to hand to the next run (nil when the run failed). A run cut short
// because ctx ended is returned failed but not published.
func (r *Runner) Run(ctx context.Context, t Target, insp Inspection, timeout time.Duration, prev any) (Record, any) {
	r.metrics.running.Inc()
	defer r.metrics.running.Dec()
	rec := Record{Cluster: t.Cluster, Inspection: insp.Name(), Labels: maps.Clone(t.Labels), Start: time.Now()}
	res, requests, bytes, err := r.inspect(ctx, t, insp, timeout, prev)
	rec.End = time.Now()
	rec.Requests, rec.BytesRead = requests, bytes
	if ctx.Err() != nil {
		// Interrupted (etcdgate is stopping): what the run found is
		// partial at best (members "failing" with context canceled), so
		// it is neither recorded nor counted.
		rec.Status, rec.Message = StatusFailed, "interrupted: "+context.Cause(ctx).Error()
		return rec, nil
	}
	if pe := (*panicError)(nil); errors.As(err, &pe) {
		r.logPanic(&rec, pe)
	}
	if err != nil {
		rec.Status, rec.Message = StatusFailed, err.Error()
		res = Result{}
	} else {
		rec.Status, rec.Message = res.Status, res.Message
		if rec.Status == "" {
			rec.Status = StatusSuccess
		}
	}
	rec.Message = truncate(rec.Message, maxMessage)
	if len(res.Findings) > maxFindings {
		rec.Message = truncate(fmt.Sprintf("%s; %d findings, only the first %d kept", rec.Message, len(res.Findings), maxFindings), maxMessage)
		res.Findings = res.Findings[:maxFindings]
	}
	m := r.metrics
	m.runs.WithLabelValues(rec.Inspection, string(rec.Status)).Inc()
	m.duration.WithLabelValues(rec.Inspection).Observe(rec.End.Sub(rec.Start).Seconds())
	m.requests.WithLabelValues(rec.Inspection).Add(float64(requests))
	m.bytes.WithLabelValues(rec.Inspection).Add(float64(bytes))
	if r.opts.Emitter != nil {
		if err := r.opts.Emitter.Emit(runSeries(&t, &rec, res.Findings)); err != nil {
			m.emitErrors.Inc()
			r.opts.Logger.Warn("inspection series not stored", "cluster", t.Cluster, "inspection", rec.Inspection, "err", err)
		}
	}
	if r.opts.Records != nil {
		r.opts.Records.Add(rec)
	}
	return rec, res.State
}

// logPanic logs a run's panic with its stack, at most once a minute per
// target and inspection, and counts it.
func (r *Runner) logPanic(rec *Record, pe *panicError) {
	r.metrics.panics.WithLabelValues(rec.Inspection).Inc()
	ok, suppressed := r.panics.Allow(rec.Cluster+"\x00"+rec.Inspection, time.Now())
	if !ok {
		return
	}
	r.opts.Logger.Error("inspection panicked; its run is failed", "cluster", rec.Cluster, "inspection", rec.Inspection,
		"panic", truncate(fmt.Sprint(pe.value), maxMessage), "suppressed", suppressed, "stack", string(pe.stack))
}

// inspect connects and runs the inspection, bounding both by timeout. A
// panic of the inspection is returned as an error wrapping ErrPanic.
func (r *Runner) inspect(ctx context.Context, t Target, insp Inspection, timeout time.Duration, prev any) (
	res Result, requests, bytes int64, err error) {
	defer recoverInto(&err)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := Dial(t, r.opts.MaxResponseBytes)
	if err != nil {
		return Result{}, 0, 0, err
	}
	defer s.Close()
	defer func() { requests, bytes = s.Load() }()
	res, err = insp.Inspect(ctx, s, prev)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The error itself often says only "context deadline exceeded":
		// say what that means for an inspection.
		err = fmt.Errorf("no answer within the %s timeout: %w", timeout, err)
	}
	return res, requests, bytes, err
}

// runSeries builds the run's series: its findings, and whether it
// succeeded and how long it took, each labeled with the target's labels
// and the inspection.
func runSeries(t *Target, rec *Record, findings []Finding) []Series {
	base := labels.NewBuilder(t.labelSet())
	base.Set("inspection", rec.Inspection)
	ts := rec.End.UnixMilli()
	out := make([]Series, 0, len(findings)+2)
	add := func(name string, extra []labels.Label, v float64) {
		b := labels.NewBuilder(base.Labels())
		b.Set(model.MetricNameLabel, name)
		for _, l := range extra {
			b.Set(l.Name, l.Value)
		}
		out = append(out, Series{Labels: b.Labels(), Samples: []Sample{{T: ts, V: v}}})
	}
	for _, f := range findings {
		add(f.Name, f.Labels, f.Value)
	}
	add("etcdgate_inspection_success", nil, boolValue(rec.Status != StatusFailed))
	add("etcdgate_inspection_duration_seconds", nil, rec.End.Sub(rec.Start).Seconds())
	return out
}
