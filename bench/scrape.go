package bench

import "math"

// advance moves the member's values by one scrape, dt seconds after the
// previous one: counters grow by their rates, gauges wander, histograms
// take new observations (shifted upward while the disk is slow) and the
// cluster's leader may move. obs is scratch space of len(l.groups).
//
// Leader changes and slow disks are drawn from the cluster's and member's
// seeds and the scrape count, not from shared state: every member of a
// cluster sees the same leader changes at the same scrape although their
// senders never talk.
func (m *member) advance(l *layout, o *FleetOptions, dt float64, r *rng, obs []float64) {
	m.rounds++
	c := m.cluster
	leaderChanged := l.members > 1 && chance(c.seed^m.rounds*0x9e3779b97f4a7c15, o.LeaderChangeProb)
	if leaderChanged {
		m.leader = (m.leader + 1 + int(splitmix(c.seed+m.rounds)%uint64(l.members-1))) % l.members
	}
	slow := chance(m.seed^m.rounds*0xbf58476d1ce4e5b9, o.SlowFsyncProb)
	for g := range l.groups {
		obs[g] = stochasticRound(l.groups[g].rate*m.scale*dt*(0.5+r.float()), r)
	}
	quantileScale := m.scale * (0.8 + 0.4*r.float())
	for i := range l.specs {
		s := &l.specs[i]
		t := s.t
		v := &m.values[i]
		switch t.kind {
		case kindGauge:
			base := t.value * m.scale
			next := *v + (r.float()-0.5)*0.1*base
			next = math.Min(math.Max(next, 0.5*base), 1.5*base)
			if t.integral {
				next = math.Round(next)
			}
			*v = next
		case kindCounter, kindRising:
			inc := t.rate * m.scale * dt * (0.5 + r.float())
			if t.integral {
				inc = stochasticRound(inc, r)
			}
			*v += inc
		case kindQuantile:
			*v = t.value * quantileScale
		case kindBucket:
			share := t.cdf
			if slow && t.slowable {
				share = t.cdfSlow
			}
			*v += math.Round(obs[s.group] * share)
		case kindHistCount:
			*v += obs[s.group]
		case kindHistSum:
			mean := l.groups[s.group].mean
			if slow && t.slowable {
				mean *= 1 << slowShift // each bucket doubles its bound
			}
			*v += obs[s.group] * mean
		case kindIsLeader:
			*v = 0
			if m.index == m.leader {
				*v = 1
			}
		case kindLeaderChanges:
			if leaderChanged {
				*v++
			}
		}
	}
}
