package ingest

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// TargetLateness is how long after a sample's timestamp it may still
// arrive (the sender's batching, retries, a ring's forwarding): windows
// end this long before now, so that a scrape still on its way does not
// count as missing.
const TargetLateness = 30 * time.Second

// Windows of completeness, in the order of TargetTally.Received.
var TargetWindows = [3]struct {
	Name   string
	Length time.Duration
	bucket int64
}{{"5m", 5 * time.Minute, fineBucketMillis}, {"1h", time.Hour, mediumBucketMillis}, {"1d", 24 * time.Hour, coarseBucketMillis}}

// TargetTally is what one node counted of one target, for windows
// ending at one time: tallies of the same target and time from several
// nodes merge into the target's (MergeTallies).
type TargetTally struct {
	TargetKey
	FirstSeen int64         `json:"first_seen"` // ms, the oldest sample seen
	LastSeen  int64         `json:"last_seen"`  // ms, the newest
	Scrapes   []ScrapeCount `json:"scrapes"`    // recent scrape timestamps, in time order
	Received  [3]uint64     `json:"received"`   // samples in each window
}

// windowEnd is the end (exclusive, ms) of window w at now: now less the
// lateness, down to the window's bucket.
func windowEnd(now time.Time, w int) int64 {
	b := TargetWindows[w].bucket
	return floorDiv(now.Add(-TargetLateness).UnixMilli(), b) * b
}

// Tallies returns the tally of every target that keep accepts (nil:
// all), at most limit (0: all) in key order, for windows ending at now.
func (t *Targets) Tallies(now time.Time, keep func(TargetKey) bool, limit int) []TargetTally {
	t.mu.RLock()
	states := make([]*targetState, 0, len(t.byHash))
	for _, st := range t.byHash {
		if keep == nil || keep(st.key) {
			states = append(states, st)
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(states, func(a, b *targetState) int { return compareKeys(a.key, b.key) })
	if limit > 0 && len(states) > limit {
		states = states[:limit]
	}
	out := make([]TargetTally, len(states))
	for i, st := range states {
		out[i] = st.tally(now)
	}
	return out
}

func (st *targetState) tally(now time.Time) TargetTally {
	st.mu.Lock()
	defer st.mu.Unlock()
	tt := TargetTally{TargetKey: st.key, FirstSeen: st.firstSeen, LastSeen: st.lastSeen, Scrapes: sortScrapes(st.scrapes[:])}
	for w, ring := range []*bucketRing{&st.fine, &st.medium, &st.coarse} {
		end := windowEnd(now, w) / ring.width
		tt.Received[w] = ring.sum(end-int64(TargetWindows[w].Length.Milliseconds())/ring.width, end)
	}
	return tt
}

func compareKeys(a, b TargetKey) int {
	return cmp.Or(strings.Compare(a.Cluster, b.Cluster), strings.Compare(a.Job, b.Job), strings.Compare(a.Instance, b.Instance))
}

// MergeTallies merges the tallies of several nodes, taken for the same
// time, into one per target, in key order.
func MergeTallies(parts ...[]TargetTally) []TargetTally {
	byKey := map[TargetKey]*TargetTally{}
	for _, part := range parts {
		for _, t := range part {
			m := byKey[t.TargetKey]
			if m == nil {
				c := t
				c.Scrapes = slices.Clone(t.Scrapes)
				byKey[t.TargetKey] = &c
				continue
			}
			m.FirstSeen, m.LastSeen = min(m.FirstSeen, t.FirstSeen), max(m.LastSeen, t.LastSeen)
			for w := range m.Received {
				m.Received[w] += t.Received[w]
			}
			m.Scrapes = mergeScrapes(m.Scrapes, t.Scrapes)
		}
	}
	out := make([]TargetTally, 0, len(byKey))
	for _, t := range byKey {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b TargetTally) int { return compareKeys(a.TargetKey, b.TargetKey) })
	return out
}

// mergeScrapes merges two time-ordered lists, adding the counts of equal
// timestamps.
func mergeScrapes(a, b []ScrapeCount) []ScrapeCount {
	out := make([]ScrapeCount, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].T < b[j].T:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].T < a[i].T:
			out = append(out, b[j])
			j++
		default:
			out = append(out, ScrapeCount{T: a[i].T, Samples: a[i].Samples + b[j].Samples})
			i++
			j++
		}
	}
	return out
}

// TargetStatus is a target's completeness, from its (merged) tally.
type TargetStatus struct {
	TargetKey
	// Interval is the scrape interval read from the timestamps (0: not
	// known yet, fewer than two scrapes).
	Interval time.Duration
	// Series is the most samples one scrape delivered, of the scrapes
	// older than the lateness: the target's series.
	Series   int
	LastSeen time.Time
	// Ratio is received samples against Series × the scrapes the
	// interval expects, per window (NaN while not known), at most 1.
	Ratio [3]float64
}

// Status computes a tally's completeness at now.
func (t *TargetTally) Status(now time.Time) TargetStatus {
	s := TargetStatus{TargetKey: t.TargetKey, LastSeen: time.UnixMilli(t.LastSeen), Interval: scrapeInterval(t.Scrapes)}
	last := windowEnd(now, 0)
	for _, sc := range t.Scrapes {
		if sc.T < last {
			s.Series = max(s.Series, int(sc.Samples))
		}
	}
	for w := range s.Ratio {
		s.Ratio[w] = math.NaN()
		if s.Interval <= 0 || s.Series == 0 {
			continue
		}
		end := windowEnd(now, w)
		start := max(end-TargetWindows[w].Length.Milliseconds(), t.FirstSeen)
		if end <= start {
			continue
		}
		scrapes := (end - start + s.Interval.Milliseconds() - 1) / s.Interval.Milliseconds()
		expected := float64(s.Series) * float64(scrapes)
		s.Ratio[w] = min(1, float64(t.Received[w])/expected)
	}
	return s
}

// scrapeInterval is the median of the gaps between consecutive scrape
// timestamps: a missed scrape makes one gap double, which the median
// ignores.
func scrapeInterval(scrapes []ScrapeCount) time.Duration {
	if len(scrapes) < 2 {
		return 0
	}
	gaps := make([]int64, 0, len(scrapes)-1)
	for i := 1; i < len(scrapes); i++ {
		gaps = append(gaps, scrapes[i].T-scrapes[i-1].T)
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	return time.Duration(gaps[len(gaps)/2]) * time.Millisecond
}
