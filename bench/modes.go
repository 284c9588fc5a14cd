package bench

import (
	"context"
	"fmt"
	"math"
	"time"
)

// ramp grows the fleet by StepClusters every StepDuration and judges each
// step: healthy while the target rejects nothing, no scrape runs more
// than an interval behind, and its RSS stays under MaxRSS. The first
// unhealthy step, MaxClusters, the duration or ctx ends the ramp.
func (r *targetRun) ramp(ctx context.Context, end <-chan time.Time, rep *TargetReport) {
	t := time.NewTicker(r.o.Ramp.StepDuration)
	defer t.Stop()
	prev := r.stats.snapshot()
	for step := 1; ; step++ {
		r.step.Store(int64(step))
		select {
		case <-ctx.Done():
			rep.StopReason = "interrupted"
			return
		case <-end:
			rep.StopReason = "duration reached"
			return
		case <-t.C:
		}
		snap := r.stats.snapshot()
		sr := r.judgeStep(step, snap.since(prev), time.Duration(r.stats.maxLagNanos.Swap(0)))
		prev = snap
		rep.Steps = append(rep.Steps, sr)
		if !sr.Healthy {
			rep.StopReason = fmt.Sprintf("step %d unhealthy: %s", step, sr.Reason)
			return
		}
		last := step
		rep.LastHealthyStep = &last
		n := r.o.Ramp.StepClusters
		if max := r.o.Ramp.MaxClusters; max > 0 {
			n = min(n, max-len(r.clusters))
		}
		if n <= 0 {
			rep.StopReason = "max clusters reached"
			return
		}
		r.addClusters(n)
	}
}

func (r *targetRun) judgeStep(step int, d snapshot, lag time.Duration) StepReport {
	rss := r.lastSample().rss
	sr := StepReport{
		Step: step, Clusters: len(r.clusters), Series: len(r.clusters) * r.o.Fleet.Members * r.l.seriesPerMember(),
		AcceptedPerSecond: float64(d.accepted) / r.o.Ramp.StepDuration.Seconds(), Rejected: d.rejected(),
		MaxLagSeconds: lag.Seconds(), LatencyP99Ms: millis(quantile(&d.latency, 0.99)), RSSBytes: known(rss), Healthy: true,
	}
	switch {
	case sr.Rejected > 0:
		sr.Healthy, sr.Reason = false, fmt.Sprintf("%d requests rejected or failed", sr.Rejected)
	case r.o.Send.Interval > 0 && lag > r.o.Send.Interval:
		sr.Healthy, sr.Reason = false, fmt.Sprintf("scrapes %.1fs behind, more than the %s interval", lag.Seconds(), r.o.Send.Interval)
	case r.o.Ramp.MaxRSS > 0 && rss > float64(r.o.Ramp.MaxRSS):
		sr.Healthy, sr.Reason = false, fmt.Sprintf("RSS %.0f MiB over the %.0f MiB limit", rss/(1<<20), float64(r.o.Ramp.MaxRSS)/(1<<20))
	}
	return sr
}

// churn replaces the oldest cluster with a new one (a new name, so new
// series) at ClustersPerMinute, until the duration or ctx ends.
func (r *targetRun) churn(ctx context.Context, end <-chan time.Time, rep *TargetReport) {
	every := time.Duration(float64(time.Minute) / r.o.Churn.ClustersPerMinute)
	t := time.NewTicker(max(every, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rep.StopReason = "interrupted"
			return
		case <-end:
			return
		case <-t.C:
			r.removeOldest()
			r.addClusters(1)
		}
	}
}

// fill completes the target's report from the counters' difference over
// the run, the target's readings before and after, and the harness's CPU.
func (r *targetRun) fill(rep *TargetReport, before, after targetSample, d snapshot, cpu time.Duration) {
	elapsed := d.at.Sub(r.start).Seconds()
	rep.ElapsedSeconds = elapsed
	rep.SamplesSent, rep.SamplesAccepted, rep.SamplesDropped, rep.SamplesFailed = d.sent, d.accepted, d.dropped, d.failed
	rep.AcceptedPerSecond = float64(d.accepted) / elapsed
	rep.SeriesWritten = r.stats.seriesWritten.Load()
	rep.SeriesCreated = known(after.headSeries - before.headSeries)
	rep.HeadSeries = known(after.headSeries)
	rep.TargetIngested = known(after.ingested - before.ingested)
	rep.Requests, rep.Retries, rep.DroppedByCode = codeMap(d.requests), codeMap(d.retries), codeMap(d.droppedByCode)
	rep.NetworkErrors = d.netErrors
	r.stats.mu.Lock()
	if len(r.stats.lastError) > 0 {
		rep.LastErrors = codeMap(r.stats.lastError)
	}
	r.stats.mu.Unlock()
	rep.LatencyP50Ms, rep.LatencyP99Ms = millis(quantile(&d.latency, 0.5)), millis(quantile(&d.latency, 0.99))
	rep.MaxLagSeconds = time.Duration(r.stats.maxLagNanos.Load()).Seconds()
	for _, s := range rep.Steps {
		rep.MaxLagSeconds = math.Max(rep.MaxLagSeconds, s.MaxLagSeconds)
	}
	r.mu.Lock()
	rep.MaxRSSBytes = known(r.maxRSS)
	rep.Timeline = r.timeline
	r.mu.Unlock()
	rep.MaxLagSecondHalf = maxLagFrom(rep.Timeline, rep.ElapsedSeconds/2)
	rep.RSSBytes = known(after.rss)
	cpuSeconds := after.cpuSeconds - before.cpuSeconds
	rep.CPUCores = known(cpuSeconds / after.at.Sub(before.at).Seconds())
	if d.accepted > 0 {
		rep.CPUMicrosPerSample = known(cpuSeconds * 1e6 / float64(d.accepted))
	}
	if after.headSeries > 0 {
		rep.BytesPerSeries = known(after.rss / after.headSeries)
	}
	rep.HarnessCPUSeconds = cpu.Seconds()
	if d.sent > 0 {
		rep.HarnessMicrosPerSample = cpu.Seconds() * 1e6 / float64(d.sent)
	}
}

// maxLagFrom returns the furthest lag of the timeline's points from
// second from of the run on.
func maxLagFrom(timeline []Point, from float64) float64 {
	lag := 0.0
	for _, p := range timeline {
		if p.Seconds >= from {
			lag = math.Max(lag, p.MaxLagSeconds)
		}
	}
	return lag
}
