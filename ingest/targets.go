package ingest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Collection completeness: every remote-write request's samples are
// counted per scrape target, the (cluster, job, instance) labels the
// sender sent, by sample timestamp. A target's scrape interval and its
// series count come from the samples themselves (Targets.Snapshot and
// TargetTally's methods), so completeness is received samples against
// series × scrapes expected, with no scrape configuration to read.
//
// The tallies add up: in a ring, each node counts what it received, and
// the tallies of all nodes merged (MergeTallies) are the target's, the
// same as if one node had received everything.

// Bucket widths of the three windows' counts.
const (
	fineBucketMillis   = 10_000    // 5m window
	mediumBucketMillis = 300_000   // 1h window
	coarseBucketMillis = 3_600_000 // 1d window
)

// Buckets kept per width: the window and the lateness allowance.
const (
	fineBuckets   = 36
	mediumBuckets = 14
	coarseBuckets = 26
)

// scrapeSlots is how many recent scrape timestamps a target keeps with
// their sample counts: the interval and the series count are read from
// them.
const scrapeSlots = 16

// TargetKey names a scrape target by the labels its series were sent
// with.
type TargetKey struct {
	Cluster  string `json:"cluster"`
	Job      string `json:"job"`
	Instance string `json:"instance"`
}

// Targets counts the samples each target's series deliver. It is safe
// for concurrent use. Memory: about 800 bytes a target, at most maxTargets
// of them; samples of further targets are not counted (DroppedTargets).
type Targets struct {
	clusterLabel string
	maxTargets   int

	mu      sync.RWMutex
	byHash  map[uint64]*targetState // guarded by mu
	dropped atomic.Int64
}

// DefaultMaxTargets bounds the targets a node tracks.
const DefaultMaxTargets = 100_000

// NewTargets returns a tracker that reads a target's cluster from
// clusterLabel and tracks at most maxTargets (0: DefaultMaxTargets).
func NewTargets(clusterLabel string, maxTargets int) *Targets {
	if maxTargets <= 0 {
		maxTargets = DefaultMaxTargets
	}
	return &Targets{clusterLabel: clusterLabel, maxTargets: maxTargets, byHash: map[uint64]*targetState{}}
}

// DroppedTargets is how many targets were seen past MaxTargets.
func (t *Targets) DroppedTargets() int64 { return t.dropped.Load() }

// TargetExpiry is how long a target that sends nothing is kept: past the
// longest window, its counts are all zero.
const TargetExpiry = 25 * time.Hour

// Expire forgets the targets whose newest sample is older than
// TargetExpiry before now, making room for new ones.
func (t *Targets) Expire(now time.Time) {
	cutoff := now.Add(-TargetExpiry).UnixMilli()
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, st := range t.byHash {
		st.mu.Lock()
		old := st.lastSeen < cutoff
		st.mu.Unlock()
		if old {
			delete(t.byHash, h)
		}
	}
}

// targetState is one target's counts.
type targetState struct {
	key TargetKey // immutable

	mu        sync.Mutex
	firstSeen int64 // guarded by mu: the oldest sample timestamp
	lastSeen  int64 // guarded by mu: the newest
	scrapes   [scrapeSlots]ScrapeCount
	fine      bucketRing
	medium    bucketRing
	coarse    bucketRing
}

// ScrapeCount is the samples received with one scrape timestamp. In
// JSON it is [t, samples]: a ring node sends sixteen a target.
type ScrapeCount struct {
	T       int64
	Samples uint32
}

func (s ScrapeCount) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "[%d,%d]", s.T, s.Samples), nil
}

func (s *ScrapeCount) UnmarshalJSON(b []byte) error {
	var a []json.Number
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("scrape count: %w", err)
	}
	if len(a) != 2 {
		return fmt.Errorf("scrape count: %d numbers, want [t, samples]", len(a))
	}
	t, err := a[0].Int64()
	if err != nil {
		return fmt.Errorf("scrape count: %w", err)
	}
	n, err := strconv.ParseUint(string(a[1]), 10, 32)
	if err != nil {
		return fmt.Errorf("scrape count: %w", err)
	}
	s.T, s.Samples = t, uint32(n)
	return nil
}

// observeSearch is how many of a request's latest timestamps of a
// target observation.add compares a sample's with.
const observeSearch = 4

// observation is the samples of one request for one target.
type observation struct {
	state   *targetState
	scrapes []ScrapeCount // by timestamp as they came; few per request
}

// requestTally gathers a request's samples by target before they are
// added, one lock per target a request.
type requestTally struct {
	byHash map[uint64]int // index in obs
	obs    []observation
}

func (r *requestTally) reset() {
	clear(r.byHash)
	for i := range r.obs {
		r.obs[i] = observation{scrapes: r.obs[i].scrapes[:0]}
	}
	r.obs = r.obs[:0]
}

// observe counts the samples of the decoded series of one request.
func (t *Targets) observe(series []TimeSeries, r *requestTally) {
	if r.byHash == nil {
		r.byHash = map[uint64]int{}
	}
	// A sender's batch holds a scrape's series one after the other: the
	// target of the previous series is tried before any hashing.
	var last TargetKey
	lastIdx := -1
	for i := range series {
		ts := &series[i]
		if len(ts.Samples) == 0 {
			continue
		}
		var key TargetKey
		for _, l := range ts.Labels {
			switch l.Name {
			case t.clusterLabel:
				key.Cluster = l.Value
			case "job":
				key.Job = l.Value
			case "instance":
				key.Instance = l.Value
			}
		}
		if key.Job == "" && key.Instance == "" {
			continue // not from a scrape
		}
		if lastIdx >= 0 && key == last {
			r.obs[lastIdx].addSamples(ts.Samples)
			continue
		}
		h := key.hash()
		idx, ok := r.byHash[h]
		if !ok {
			st := t.state(h, key)
			if st == nil {
				continue
			}
			idx = len(r.obs)
			r.byHash[h] = idx
			if idx < cap(r.obs) {
				r.obs = r.obs[:idx+1]
				r.obs[idx].state = st
			} else {
				r.obs = append(r.obs, observation{state: st})
			}
		}
		r.obs[idx].addSamples(ts.Samples)
		last, lastIdx = key, idx
	}
	for i := range r.obs {
		r.obs[i].state.add(r.obs[i].scrapes)
	}
	r.reset()
}

func (o *observation) addSamples(samples []Sample) {
	for _, s := range samples {
		o.add(s.Timestamp)
	}
}

// add counts a sample at ts. Only the last few timestamps are searched:
// a request's samples of one target come from one or two scrapes, and a
// request of many timestamps must cost linear time; a timestamp found
// again further back becomes an entry of its own, which state.add
// merges.
func (o *observation) add(ts int64) {
	for i := len(o.scrapes) - 1; i >= max(0, len(o.scrapes)-observeSearch); i-- {
		if o.scrapes[i].T == ts {
			o.scrapes[i].Samples++
			return
		}
	}
	o.scrapes = append(o.scrapes, ScrapeCount{T: ts, Samples: 1})
}

func (k TargetKey) hash() uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(k.Cluster)
	_, _ = d.WriteString("\xff")
	_, _ = d.WriteString(k.Job)
	_, _ = d.WriteString("\xff")
	_, _ = d.WriteString(k.Instance)
	return d.Sum64()
}

// state returns the target's state, created if there is room; nil past
// maxTargets. Targets whose keys collide share one (a 64-bit hash).
func (t *Targets) state(h uint64, key TargetKey) *targetState {
	t.mu.RLock()
	st := t.byHash[h]
	t.mu.RUnlock()
	if st != nil {
		return st
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if st = t.byHash[h]; st != nil {
		return st
	}
	if len(t.byHash) >= t.maxTargets {
		t.dropped.Add(1)
		return nil
	}
	st = &targetState{key: TargetKey{Cluster: clone(key.Cluster), Job: clone(key.Job), Instance: clone(key.Instance)}}
	st.firstSeen, st.lastSeen = 1<<63-1, -1<<63
	st.fine = newBucketRing(fineBucketMillis, fineBuckets)
	st.medium = newBucketRing(mediumBucketMillis, mediumBuckets)
	st.coarse = newBucketRing(coarseBucketMillis, coarseBuckets)
	t.byHash[h] = st
	return st
}

// clone copies s: decoded labels alias the request's buffer.
func clone(s string) string { return string([]byte(s)) }

// add records one request's scrapes of the target.
func (st *targetState) add(scrapes []ScrapeCount) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, sc := range scrapes {
		st.firstSeen = min(st.firstSeen, sc.T)
		st.lastSeen = max(st.lastSeen, sc.T)
		st.addScrape(sc)
		st.fine.add(sc.T, sc.Samples)
		st.medium.add(sc.T, sc.Samples)
		st.coarse.add(sc.T, sc.Samples)
	}
}

// addScrape adds to the slot of sc's timestamp, replacing the oldest
// slot for a new timestamp; a timestamp older than every slot is only
// counted in the buckets.
func (st *targetState) addScrape(sc ScrapeCount) {
	oldest := 0
	for i := range st.scrapes {
		if st.scrapes[i].T == sc.T && st.scrapes[i].Samples > 0 {
			st.scrapes[i].Samples += sc.Samples
			return
		}
		if st.scrapes[i].Samples == 0 || st.scrapes[i].T < st.scrapes[oldest].T && st.scrapes[oldest].Samples > 0 {
			oldest = i
		}
	}
	if o := st.scrapes[oldest]; o.Samples == 0 || o.T < sc.T {
		st.scrapes[oldest] = sc
	}
}

// bucketRing counts samples in buckets of width ms by sample time: the
// bucket of index i (time i*width) is at i % len(counts), held while
// i > newest - len(counts).
type bucketRing struct {
	width  int64
	newest int64 // index of the newest bucket written
	counts []uint32
}

func newBucketRing(width int64, n int) bucketRing {
	return bucketRing{width: width, newest: -1 << 62, counts: make([]uint32, n)}
}

func (b *bucketRing) add(t int64, n uint32) {
	size := int64(len(b.counts))
	i := floorDiv(t, b.width)
	if i > b.newest {
		// Buckets between the old newest and i start empty.
		for j := max(b.newest+1, i-size+1); j <= i; j++ {
			b.counts[mod(j, size)] = 0
		}
		b.newest = i
	}
	if i <= b.newest-size {
		return // older than the ring holds
	}
	b.counts[mod(i, size)] += n
}

// sum is the samples of buckets [from, to) (indexes) the ring holds.
func (b *bucketRing) sum(from, to int64) uint64 {
	size := int64(len(b.counts))
	var s uint64
	for i := max(from, b.newest-size+1); i < to && i <= b.newest; i++ {
		s += uint64(b.counts[mod(i, size)])
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(i, n int64) int { return int((i%n + n) % n) }

// sortScrapes returns the filled slots in time order.
func sortScrapes(slots []ScrapeCount) []ScrapeCount {
	var out []ScrapeCount
	for _, s := range slots {
		if s.Samples > 0 {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b ScrapeCount) int { return cmp.Compare(a.T, b.T) })
	return out
}
