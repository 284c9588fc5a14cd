package main

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/etcdgate/etcdgate/ingest"
)

// Series of collection completeness, written every evaluation interval
// for every target (ingest/targets.go) through the write path, so that
// relabeling stamps the standard labels of the target's cluster:
//
//	etcdgate_target_completeness_ratio{cluster, job, instance, window}
//	etcdgate_target_last_seen_timestamp_seconds{cluster, job, instance}
//	etcdgate_target_series{cluster, job, instance}
//	etcdgate_target_scrape_interval_seconds{cluster, job, instance}
//
// In a ring one node writes them (the owner of completenessKey), from
// every node's counts merged.
const (
	completenessRatioMetric    = "etcdgate_target_completeness_ratio"
	completenessLastSeenMetric = "etcdgate_target_last_seen_timestamp_seconds"
	completenessSeriesMetric   = "etcdgate_target_series"
	completenessIntervalMetric = "etcdgate_target_scrape_interval_seconds"
	completenessKey            = "targets\x00completeness"
)

// completenessSeries returns the series of statuses at now: a target's
// ratios not known yet are left out.
func completenessSeries(statuses []ingest.TargetStatus, clusterLabel string, now time.Time) []ingest.TimeSeries {
	ts := now.UnixMilli()
	out := make([]ingest.TimeSeries, 0, 6*len(statuses))
	for _, st := range statuses {
		target := func(name string, extra ...ingest.Label) []ingest.Label {
			ls := []ingest.Label{{Name: "__name__", Value: name}, {Name: clusterLabel, Value: st.Cluster},
				{Name: "instance", Value: st.Instance}, {Name: "job", Value: st.Job}}
			ls = append(ls, extra...)
			slices.SortFunc(ls, func(a, b ingest.Label) int { return strings.Compare(a.Name, b.Name) })
			return ls
		}
		sample := func(v float64) []ingest.Sample { return []ingest.Sample{{Value: v, Timestamp: ts}} }
		for w, r := range st.Ratio {
			if !math.IsNaN(r) {
				out = append(out, ingest.TimeSeries{Labels: target(completenessRatioMetric,
					ingest.Label{Name: "window", Value: ingest.TargetWindows[w].Name}), Samples: sample(r)})
			}
		}
		out = append(out,
			ingest.TimeSeries{Labels: target(completenessLastSeenMetric), Samples: sample(float64(st.LastSeen.UnixMilli()) / 1000)},
			ingest.TimeSeries{Labels: target(completenessSeriesMetric), Samples: sample(float64(st.Series))})
		if st.Interval > 0 {
			out = append(out, ingest.TimeSeries{Labels: target(completenessIntervalMetric), Samples: sample(st.Interval.Seconds())})
		}
	}
	return out
}

// startCompleteness writes the completeness series every evaluation
// interval until ctx ends.
func (g *gateway) startCompleteness(ctx context.Context) (stop func()) {
	g.mu.Lock()
	clusterLabel, in, interval := g.cfg.Registry.ClusterLabel, g.ingest, time.Duration(g.cfg.EvaluationInterval)
	g.mu.Unlock()
	return runEvery(ctx, interval, func(now time.Time) {
		g.targets.Expire(now)
		if g.ring != nil && !g.ring.owns(completenessKey) {
			return
		}
		statuses, warnings := g.api.TargetStatuses(ctx, now, nil)
		if len(warnings) > 0 {
			// A node's counts are missing: a ratio written now would be
			// too low.
			g.logger.Warn("completeness not written: some nodes' counts are missing", "warnings", warnings)
			return
		}
		for batch := range slices.Chunk(completenessSeries(statuses, clusterLabel, now), clusterInfoBatch) {
			if _, err := in.Push(batch); err != nil {
				g.logger.Warn("writing the completeness series failed", "err", err)
				return
			}
		}
	})
}
