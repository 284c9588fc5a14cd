package bench

import (
	"math"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// seriesKind says how a series' value moves from scrape to scrape.
type seriesKind uint8

const (
	kindConst         seriesKind = iota // build info, IDs, limits, flags
	kindGauge                           // wanders around its start value
	kindRising                          // a gauge that only grows (revisions)
	kindCounter                         // grows by its rate, never falls
	kindQuantile                        // a summary quantile: scaled with its siblings
	kindBucket                          // cumulative histogram bucket
	kindHistCount                       // histogram _count: the +Inf bucket
	kindHistSum                         // histogram _sum
	kindIsLeader                        // etcd_server_is_leader: 1 on the cluster's leader
	kindLeaderChanges                   // etcd_server_leader_changes_seen_total
)

// staleNaNBits is Prometheus's stale marker, the NaN written for every
// series of a target that disappeared.
const staleNaNBits = 0x7ff0000000000002

// kindOf gives a series its kind from the family type; classify refines.
func kindOf(typ dto.MetricType, suffix string) seriesKind {
	switch {
	case typ == dto.MetricType_COUNTER || suffix == "_sum" || suffix == "_count":
		return kindCounter
	case typ == dto.MetricType_SUMMARY:
		return kindQuantile
	}
	return kindGauge
}

// classify settles the kind, rate and integrality of a template from its
// name and captured value.
func (t *template) classify(uptime float64) {
	switch {
	case t.name == "etcd_server_is_leader":
		t.kind = kindIsLeader
	case t.name == "etcd_server_leader_changes_seen_total":
		t.kind = kindLeaderChanges
	case t.kind == kindGauge && constantGauge(t.name, t.value):
		t.kind = kindConst
	case t.kind == kindGauge && (strings.Contains(t.name, "revision") || strings.HasSuffix(t.name, "_total")):
		t.kind = kindRising
	}
	switch t.kind {
	case kindCounter, kindRising:
		t.rate = t.value / uptime
	}
	if t.kind != kindBucket && t.kind != kindHistCount && t.kind != kindHistSum {
		t.integral = t.value == math.Trunc(t.value) && !strings.Contains(t.name, "seconds")
	}
	t.hasPeer = namesPeer(t.labels)
	t.slowable = strings.Contains(t.name, "fsync") || strings.Contains(t.name, "backend_commit") ||
		strings.Contains(t.name, "wal_write")
}

// constantGauge tells gauges that do not move on a healthy member: flags
// (0 or 1), info metrics, limits and start times.
func constantGauge(name string, v float64) bool {
	if v == 0 || v == 1 {
		return true
	}
	for _, s := range []string{"_info", "_version", "_max_fds", "_limit", "_max_bytes", "_time_seconds",
		"quota_backend_bytes", "gomaxprocs", "gogc_percent", "gomemlimit", "_known_peers", "_active_peers"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// bucketShares returns, per bucket, the share of observations at or
// below its le: as captured when the histogram has observations, else a
// default shape; and the same shifted slowShift buckets up, for a slow
// disk.
func bucketShares(les []float64, buckets []*dto.Bucket, count float64) (cdf, slow []float64) {
	n := len(les)
	cdf = make([]float64, n)
	for i := range cdf {
		switch {
		case i == n-1:
			cdf[i] = 1
		case count > 0 && i < len(buckets):
			cdf[i] = float64(buckets[i].GetCumulativeCount()) / count
		default:
			// Half the observations within the first third of the buckets.
			cdf[i] = 1 - math.Pow(0.5, float64(i+1)/math.Max(1, float64(n)/3))
		}
	}
	slow = make([]float64, n)
	for i := range slow {
		if i >= slowShift {
			slow[i] = cdf[i-slowShift]
		}
	}
	slow[n-1] = 1
	return cdf, slow
}

// slowShift is how many buckets a slow disk moves fsync and commit
// latencies up: 2^5, so a 1 ms fsync takes 32 ms, past etcd's warnings.
const slowShift = 5

// meanObservation is the captured mean, or the middle of the bucket where
// the default shape puts half the observations.
func meanObservation(les, cdf []float64, count, sum float64) float64 {
	if count > 0 {
		return sum / count
	}
	for i, c := range cdf {
		if c >= 0.5 && !math.IsInf(les[i], 1) {
			return les[i] / 2
		}
	}
	return 0
}

// rng is a xorshift64* generator: the harness draws a few numbers per
// sample, and math/rand's would cost more than the sample's encoding.
// Each sender owns one.
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: splitmix(seed) | 1} }

func (r *rng) next() uint64 {
	r.s ^= r.s >> 12
	r.s ^= r.s << 25
	r.s ^= r.s >> 27
	return r.s * 2685821657736338717
}

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// splitmix is a strong 64-bit mix: the deterministic per-cluster and
// per-member choices (leader, slow disk) hash through it.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// chance reports whether the event of probability p happens for key:
// every member of a cluster computes the same answer without sharing
// state, so their leader changes agree.
func chance(key uint64, p float64) bool {
	return float64(splitmix(key)>>11)/(1<<53) < p
}

// stochasticRound rounds x down or up with the odds of its fraction, so
// small rates still add up over many scrapes.
func stochasticRound(x float64, r *rng) float64 {
	f := math.Floor(x)
	if r.float() < x-f {
		f++
	}
	return f
}
