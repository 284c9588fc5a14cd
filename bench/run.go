package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Run plays the mode against every target in turn, each on an identical
// fleet, and returns the report. When ctx ends, the current target's run
// stops early (its report holds what was measured) and the remaining
// targets are skipped.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	l, err := loadLayout(o.Fleet.Members)
	if err != nil {
		return nil, err
	}
	clusters := o.Fleet.Clusters
	if o.Fleet.Series > 0 {
		perCluster := l.seriesPerMember() * o.Fleet.Members
		clusters = (o.Fleet.Series + perCluster - 1) / perCluster
	}
	rep := newReport(&o, l, clusters)
	for _, t := range o.Targets {
		if ctx.Err() != nil {
			break
		}
		tr, err := runTarget(ctx, &o, l, t, clusters)
		if err != nil {
			return rep, fmt.Errorf("target %s: %w", t.Name, err)
		}
		rep.Targets = append(rep.Targets, *tr)
	}
	return rep, nil
}

// loadLayout parses the embedded etcd capture for clusters of the given
// size.
func loadLayout(members int) (*layout, error) {
	text, err := CapturedEtcdMetrics()
	if err != nil {
		return nil, err
	}
	ts, err := parseCapture(text)
	if err != nil {
		return nil, err
	}
	return newLayout(ts, members), nil
}

// targetRun is the run against one target. Fields above mu are set up
// before the goroutines start and then only read, except the clusters
// and nextCluster fields, which belong to the goroutine driving the mode.
type targetRun struct {
	o       *Options
	l       *layout
	target  Target
	stats   *stats
	probe   *targetProbe
	client  *http.Client
	senders []*sender
	start   time.Time

	clusters     []*cluster // live clusters, oldest first
	nextCluster  int        // id of the next cluster created
	nextSender   int        // round-robin assignment of members to senders
	liveClusters atomic.Int64
	step         atomic.Int64 // ramp step, for the progress line

	mu       sync.Mutex
	timeline []Point      // guarded by mu
	last     targetSample // guarded by mu: the latest reading
	maxRSS   float64      // guarded by mu
}

func runTarget(ctx context.Context, o *Options, l *layout, t Target, clusters int) (*TargetReport, error) {
	r := &targetRun{o: o, l: l, target: t, stats: newStats(), probe: newTargetProbe(t),
		client: newHTTPClient(o.Send.Senders, o.Send.Timeout), maxRSS: math.NaN()}
	defer r.client.CloseIdleConnections()
	if err := r.checkReachable(ctx); err != nil {
		return nil, err
	}
	before, _ := r.probe.read(ctx)
	r.last = before
	wc := newWriteClient(baseURL(t.URL)+"/api/v1/write", r.client, o.Send, r.stats)
	for i := range o.Send.Senders {
		r.senders = append(r.senders, newSender(o, l, wc, r.stats, o.Fleet.Seed+uint64(i)*7919))
	}
	r.addClusters(clusters)

	cpu0, snap0 := ownCPU(), r.stats.snapshot()
	r.start = time.Now()
	stop := make(chan struct{})
	// Sends outlive ctx by up to Drain, so requests in flight when the
	// run ends are answered and counted.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	var senders sync.WaitGroup
	for _, s := range r.senders {
		senders.Go(func() { s.run(sendCtx, stop, r.start) })
	}
	bgCtx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	background.Go(func() { r.sample(bgCtx) })
	if o.Progress != nil {
		background.Go(func() { r.progress(bgCtx) })
	}
	var queries *queryRunner
	if o.Mode == ModeQuery {
		queries = newQueryRunner(t, r.clusters[0].name, o.Query)
		background.Go(func() { queries.run(bgCtx) })
	}

	rep := &TargetReport{Name: t.Name, URL: t.URL}
	r.drive(ctx, rep)

	close(stop)
	r.waitDrained(&senders, cancelSends)
	stopBackground()
	background.Wait()
	after, _ := r.probe.read(context.WithoutCancel(ctx))
	r.record(after)
	r.fill(rep, before, after, r.stats.snapshot().since(snap0), ownCPU()-cpu0)
	if queries != nil {
		rep.Queries = queries.report()
	}
	return rep, nil
}

// checkReachable fails fast when nothing listens at the target.
func (r *targetRun) checkReachable(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(r.target.URL)+"/api/v1/write", nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTargetUnreachable, err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTargetUnreachable, err)
	}
	drain(resp)
	return nil
}

// drive plays the mode until its end, the run's duration or ctx.
func (r *targetRun) drive(ctx context.Context, rep *TargetReport) {
	var end <-chan time.Time
	if r.o.Duration > 0 {
		t := time.NewTimer(r.o.Duration)
		defer t.Stop()
		end = t.C
	}
	switch r.o.Mode {
	case ModeRamp:
		r.ramp(ctx, end, rep)
	case ModeChurn:
		r.churn(ctx, end, rep)
	default:
		select {
		case <-ctx.Done():
			rep.StopReason = "interrupted"
		case <-end:
		}
	}
}

// waitDrained gives the senders Drain to send their last batches, then
// cancels what is still in flight.
func (r *targetRun) waitDrained(senders *sync.WaitGroup, cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		senders.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(r.o.Drain):
		cancel()
		<-done
	}
}

// addClusters creates n clusters and hands their members to the senders.
func (r *targetRun) addClusters(n int) {
	for range n {
		c := newCluster(r.l, &r.o.Fleet, r.nextCluster, r.o.Send.Interval)
		r.nextCluster++
		for _, m := range c.members {
			r.senders[r.nextSender%len(r.senders)].add(m)
			r.nextSender++
		}
		r.clusters = append(r.clusters, c)
	}
	r.liveClusters.Store(int64(len(r.clusters)))
}

// removeOldest has the senders write stale markers for the oldest cluster
// and forget it.
func (r *targetRun) removeOldest() {
	if len(r.clusters) == 0 {
		return
	}
	c := r.clusters[0]
	r.clusters = r.clusters[1:]
	for _, s := range r.senders {
		s.remove(c)
	}
	r.liveClusters.Store(int64(len(r.clusters)))
}

// sample reads the target every SampleEvery until ctx ends.
func (r *targetRun) sample(ctx context.Context) {
	t := time.NewTicker(r.o.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s, _ := r.probe.read(ctx)
			if ctx.Err() == nil {
				r.record(s)
			}
		}
	}
}

// record adds a reading to the timeline, with the accepted rate and the
// target's CPU use since the previous one.
func (r *targetRun) record(s targetSample) {
	accepted := float64(r.stats.samplesAccepted.Load())
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Point{Seconds: s.at.Sub(r.start).Seconds(), RSSBytes: known(s.rss), HeadSeries: known(s.headSeries),
		MaxLagSeconds: time.Duration(r.stats.readingLagNanos.Swap(0)).Seconds()}
	prevAt, prevAccepted := r.start, 0.0
	if n := len(r.timeline); n > 0 {
		prevAt = r.start.Add(time.Duration(r.timeline[n-1].Seconds * float64(time.Second)))
		prevAccepted = r.timeline[n-1].accepted
	}
	// A rate over much less than a sampling period is noise: the last
	// reading comes right after the drain sent every partial batch.
	if dt := s.at.Sub(prevAt); dt >= r.o.SampleEvery/2 {
		p.AcceptedPerSecond = known((accepted - prevAccepted) / dt.Seconds())
		p.CPUCores = known((s.cpuSeconds - r.last.cpuSeconds) / s.at.Sub(r.last.at).Seconds())
	}
	p.accepted = accepted
	r.timeline = append(r.timeline, p)
	r.last = s
	if !math.IsNaN(s.rss) && !(s.rss <= r.maxRSS) {
		r.maxRSS = s.rss
	}
}

func (r *targetRun) lastSample() targetSample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}
