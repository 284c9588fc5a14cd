package bench

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// sender is one remote-write client, shaped like a shard of Prometheus's
// queue manager: it owns a shard of the fleet's members, scrapes each at
// its offset in the interval and sends their samples in requests of at
// most MaxSamplesPerSend, one request in flight at a time.
//
// Everything but mu and the fields it guards belongs to the goroutine
// running run.
type sender struct {
	opts   *Options
	layout *layout
	client *writeClient
	stats  *stats
	rng    *rng
	batch  batch
	obs    []float64 // scratch for member.advance
	timer  *time.Timer

	members    []*member // sorted by scrape offset
	batchSince time.Time // when the oldest sample of the batch was scraped
	lastTS     int64     // the last round's timestamp when Interval is 0

	mu      sync.Mutex
	added   []*member  // guarded by mu: to take over at the next round
	removed []*cluster // guarded by mu: to mark stale at the next round
}

func newSender(o *Options, l *layout, c *writeClient, st *stats, seed uint64) *sender {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &sender{opts: o, layout: l, client: c, stats: st, rng: newRNG(seed), obs: make([]float64, len(l.groups)), timer: t}
}

// add hands members over to the sender; safe from any goroutine.
func (s *sender) add(ms ...*member) {
	s.mu.Lock()
	s.added = append(s.added, ms...)
	s.mu.Unlock()
}

// remove asks the sender to write stale markers for the cluster's members
// it owns and then forget them; safe from any goroutine.
func (s *sender) remove(c *cluster) {
	s.mu.Lock()
	s.removed = append(s.removed, c)
	s.mu.Unlock()
}

func (s *sender) takeChanges() {
	s.mu.Lock()
	added, removed := s.added, s.removed
	s.added, s.removed = nil, nil
	s.mu.Unlock()
	if len(added) > 0 {
		s.members = append(s.members, added...)
		slices.SortStableFunc(s.members, func(a, b *member) int { return cmp.Compare(a.offset, b.offset) })
	}
	for _, c := range removed {
		for _, m := range s.members {
			if m.cluster == c {
				m.stale = true
			}
		}
	}
}

// run scrapes and sends until stop is closed, then sends what is left of
// the batch. ctx bounds the sends themselves: it ends the retries of a
// target that stopped answering.
func (s *sender) run(ctx context.Context, stop <-chan struct{}, start time.Time) {
	interval := s.opts.Send.Interval
	for round := 0; ; round++ {
		s.takeChanges()
		roundStart := start.Add(time.Duration(round) * interval)
		var roundTS int64
		if bf := s.opts.Send.Backfill; interval == 0 && bf > 0 {
			// Backfill: regularly spaced rounds from the past, as fast as
			// possible, until they catch up with the clock.
			roundTS = start.Add(-bf + time.Duration(round)*s.opts.Send.BackfillStep).UnixMilli()
			if roundTS > time.Now().UnixMilli() {
				break
			}
		} else if interval == 0 {
			// As fast as possible: one timestamp per round, always
			// increasing, never far ahead of the clock.
			roundTS = max(time.Now().UnixMilli(), s.lastTS+1)
			s.lastTS = roundTS
			if ahead := time.Until(time.UnixMilli(roundTS)); ahead > 0 && !s.sleep(ahead, stop) {
				break
			}
		}
		for _, m := range s.members {
			due := roundStart.Add(m.offset)
			ts := roundTS
			if interval > 0 {
				if !s.waitUntil(ctx, due, stop) {
					s.flush(ctx)
					return
				}
				ts = due.UnixMilli()
				s.stats.observeLag(time.Since(due))
			} else if stopped(stop) {
				s.flush(ctx)
				return
			}
			s.scrape(ctx, m, ts)
		}
		s.members = slices.DeleteFunc(s.members, func(m *member) bool { return m.stale })
		if len(s.members) == 0 {
			// Nothing to scrape yet: wait for the next round's start, so
			// rounds keep pace with the clock for members added later.
			wait := 10 * time.Millisecond
			if interval > 0 {
				wait = time.Until(roundStart.Add(interval))
			}
			if wait > 0 && !s.sleep(wait, stop) {
				break
			}
		}
	}
	s.flush(ctx)
}

// scrape advances a member by one scrape at ts and adds its samples to
// the batch, sending whenever the batch is full.
func (s *sender) scrape(ctx context.Context, m *member, ts int64) {
	if m.lastTS == 0 && !m.stale {
		// Counted at the first scrape, not when the member is added: a
		// run that ends in between wrote none of its series.
		s.stats.seriesWritten.Add(int64(len(s.layout.specs)))
	}
	if !m.stale {
		dt := 0.0
		if m.lastTS > 0 {
			dt = float64(ts-m.lastTS) / 1000
		}
		m.advance(s.layout, &s.opts.Fleet, dt, s.rng, s.obs)
	}
	m.lastTS = ts
	stale := math.Float64frombits(staleNaNBits)
	max := s.opts.Send.MaxSamplesPerSend
	for i := range s.layout.specs {
		if s.batch.samples == 0 {
			s.batchSince = time.Now()
		}
		v := m.values[i]
		if m.stale {
			v = stale
		}
		s.batch.appendSample(&s.layout.specs[i], m, v, ts)
		if s.batch.samples >= max {
			s.flush(ctx)
		}
	}
}

// waitUntil sleeps until due, sending the partial batch first if it
// would otherwise wait past BatchSendDeadline. false: stop was closed.
func (s *sender) waitUntil(ctx context.Context, due time.Time, stop <-chan struct{}) bool {
	for {
		now := time.Now()
		wait := due.Sub(now)
		if wait <= 0 {
			return !stopped(stop)
		}
		if s.batch.samples > 0 {
			deadline := s.batchSince.Add(s.opts.Send.BatchSendDeadline)
			if !deadline.After(now) {
				s.flush(ctx)
				continue
			}
			wait = min(wait, deadline.Sub(now))
		}
		if !s.sleep(wait, stop) {
			return false
		}
	}
}

// sleep waits d or until stop is closed (false).
func (s *sender) sleep(d time.Duration, stop <-chan struct{}) bool {
	s.timer.Reset(d)
	select {
	case <-stop:
		s.timer.Stop()
		return false
	case <-s.timer.C:
		return true
	}
}

func (s *sender) flush(ctx context.Context) {
	if s.batch.samples == 0 {
		return
	}
	s.client.write(ctx, s.batch.compress(), s.batch.samples)
	s.batch.reset()
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
