package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/value"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/relabel"
)

// clusterInfoMetric is the info series that joins the etcd clusters of
// the registry with the Kubernetes clusters that use them, both ways:
// etcdgate_cluster_info{cluster, kubernetes_cluster, product, scenario,
// size, region} 1, one per pair (a cluster that lists none has one
// without kubernetes_cluster).
const clusterInfoMetric = "etcdgate_cluster_info"

// clusterInfoKey is the ring key whose owner writes the info series: one
// writer in the ring.
const clusterInfoKey = "registry\x00cluster_info"

// clusterInfoBatch is the most series one push carries.
const clusterInfoBatch = 10_000

// clusterInfoWriter writes the info series of the registry every
// interval through the write path (so relabeling and the ring place them
// like any series), and stale markers for pairs that left the registry.
type clusterInfoWriter struct {
	registry     *relabel.Registry
	clusterLabel string
	push         func([]ingest.TimeSeries) (ingest.Result, error)
	owns         func() bool // nil: this node writes
	logError     func(msg string, err error)
	written      map[string][]ingest.Label // by key: the pairs of the last write
}

// clusterInfoSeries returns the info series of the registry's records, in
// the order of their clusters, keyed for stale markers.
func clusterInfoSeries(recs map[string]*relabel.Record, clusterLabel string) (keys []string, lsets [][]ingest.Label) {
	clusters := make([]string, 0, len(recs))
	for c := range recs {
		clusters = append(clusters, c)
	}
	slices.Sort(clusters)
	for _, c := range clusters {
		r := recs[c]
		k8s := r.KubernetesClusters
		if len(k8s) == 0 {
			k8s = []string{""}
		}
		for _, k := range k8s {
			ls := []ingest.Label{{Name: "__name__", Value: clusterInfoMetric}, {Name: clusterLabel, Value: c}}
			for _, l := range []ingest.Label{{Name: "kubernetes_cluster", Value: k}, {Name: "product", Value: r.Product},
				{Name: "scenario", Value: r.Scenario}, {Name: "size", Value: r.Size}, {Name: "region", Value: r.Region}} {
				if l.Value != "" && l.Name != clusterLabel {
					ls = append(ls, l)
				}
			}
			keys = append(keys, c+"\x00"+k)
			lsets = append(lsets, ls)
		}
	}
	return keys, lsets
}

// tick writes the info series at now, and stale markers for the series
// of the last write that are gone. A node that does not own the key
// writes nothing and forgets its last write: the owner carries on.
func (w *clusterInfoWriter) tick(now time.Time) {
	if w.owns != nil && !w.owns() {
		w.written = nil
		return
	}
	keys, lsets := clusterInfoSeries(w.registry.Records(), w.clusterLabel)
	ts := now.UnixMilli()
	series := make([]ingest.TimeSeries, 0, len(lsets))
	next := make(map[string][]ingest.Label, len(keys))
	for i, k := range keys {
		next[k] = lsets[i]
		series = append(series, ingest.TimeSeries{Labels: lsets[i], Samples: []ingest.Sample{{Value: 1, Timestamp: ts}}})
	}
	for k, ls := range w.written {
		if _, ok := next[k]; !ok {
			series = append(series, ingest.TimeSeries{Labels: ls, Samples: []ingest.Sample{{Value: math.Float64frombits(value.StaleNaN), Timestamp: ts}}})
		}
	}
	for batch := range slices.Chunk(series, clusterInfoBatch) {
		if _, err := w.push(batch); err != nil {
			w.logError("writing the cluster info series failed", err)
			return // the next tick writes them all again
		}
	}
	w.written = next
}

// startClusterInfo writes the registry's info series every evaluation
// interval until ctx ends. Without a registry it does nothing.
func (g *gateway) startClusterInfo(ctx context.Context) (stop func()) {
	g.mu.Lock()
	cfg := g.cfg
	in := g.ingest
	g.mu.Unlock()
	if g.relabel == nil {
		return func() {}
	}
	w := &clusterInfoWriter{registry: g.relabel.Registry(), clusterLabel: cfg.Registry.ClusterLabel, push: in.Push,
		logError: func(msg string, err error) { g.logger.Warn(msg, "err", err) }}
	if g.ring != nil {
		w.owns = func() bool { return g.ring.owns(clusterInfoKey) }
	}
	return runEvery(ctx, time.Duration(cfg.EvaluationInterval), w.tick)
}

// runEvery calls fn at once and then every interval until ctx ends; stop
// ends it and waits for a call under way.
func runEvery(ctx context.Context, interval time.Duration, fn func(now time.Time)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			fn(time.Now())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}
