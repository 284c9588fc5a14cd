package main

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/probe"
	"github.com/etcdgate/etcdgate/relabel"
)

// newProbeRecords returns the record store /api/v1/inspections serves,
// or nil when nothing is inspected.
func newProbeRecords(cfg Config) *probe.RecordStore {
	if !cfg.Probe.Enabled() {
		return nil
	}
	return probe.NewRecordStore(time.Duration(cfg.Probe.RecordRetention), cfg.Probe.MaxRecords)
}

// inspectionRecords is the store as the API sees it: no store must be
// a nil interface, not an interface holding nil.
func (g *gateway) inspectionRecords() api.InspectionRecords {
	if g.records == nil {
		return nil
	}
	return probeRecords{g.records}
}

// startProbe starts the inspection scheduler once the store takes
// samples. Targets are read from the current config and registry on
// every tick, so a reload that adds a target, or a registration in
// etcd, is picked up; the other probe settings change on restart. The
// returned function stops the scheduler and waits for it.
func (g *gateway) startProbe(ctx context.Context) (stop func()) {
	g.mu.Lock()
	cfg := g.cfg.Probe
	in := g.ingest
	g.mu.Unlock()
	if g.records == nil {
		return func() {}
	}
	runner := probe.NewRunner(probe.RunnerOptions{Emitter: ingestEmitter{in}, Records: g.records, Registerer: g.reg, Logger: g.logger,
		MaxResponseBytes: cfg.MaxResponseBytes})
	sched, err := probe.NewScheduler(cfg.SchedulerOptions(g.probeTargets), runner)
	if err != nil { // Validate has checked the same options
		panic("BUG: probe scheduler options: " + err.Error())
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sched.Run(ctx) })
	g.logger.Info("probe started", "targets", len(g.probeTargets()))
	return func() { cancel(); wg.Wait() }
}

// probeTargets returns the targets of the current config and registry.
func (g *gateway) probeTargets() []probe.Target {
	g.mu.Lock()
	cfg := g.cfg.Probe
	g.mu.Unlock()
	var reg *relabel.Registry
	if g.relabel != nil {
		reg = g.relabel.Registry()
	}
	targets, refused := cfg.probeTargets(reg)
	g.refusedTargets.report(refused)
	if g.ring != nil {
		// One node of the ring inspects each cluster: its owner.
		targets = g.ring.ownedProbeTargets(targets)
	}
	return targets
}

// keepProbeSettings keeps the running probe settings but the targets on
// reload, and says so when others changed.
func (g *gateway) keepProbeSettings(cfg *Config, running Config) {
	if g.records == nil && cfg.Probe.Enabled() {
		g.logger.Warn("the probe was off at start; turning it on needs a restart")
	}
	next, cur := cfg.Probe, running.Probe
	next.Targets, cur.Targets = nil, nil
	if !reflect.DeepEqual(next, cur) {
		g.logger.Warn("probe settings other than targets change only on restart")
		targets := cfg.Probe.Targets
		cfg.Probe = running.Probe
		cfg.Probe.Targets = targets
	}
}

// ingestEmitter stores inspection series through the ingest path, with
// the validation, relabeling and limits of remote-write samples.
type ingestEmitter struct{ in *ingest.Ingester }

func (e ingestEmitter) Emit(series []probe.Series) error {
	ts := make([]ingest.TimeSeries, len(series))
	for i, s := range series {
		ls := make([]ingest.Label, 0, s.Labels.Len())
		s.Labels.Range(func(l labels.Label) { ls = append(ls, l) })
		samples := make([]ingest.Sample, len(s.Samples))
		for j, smp := range s.Samples {
			samples[j] = ingest.Sample{Value: smp.V, Timestamp: smp.T}
		}
		ts[i] = ingest.TimeSeries{Labels: ls, Samples: samples}
	}
	res, err := e.in.Push(ts)
	if err != nil {
		return err
	}
	return res.Err()
}
