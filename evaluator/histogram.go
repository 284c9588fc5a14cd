package evaluator

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// smallDeltaTolerance is the relative difference between neighbouring
// bucket counts that is taken for floating-point noise, as in Prometheus.
const smallDeltaTolerance = 1e-12

type bucket struct {
	upperBound, count float64
}

// histogramQuantile is histogram_quantile(φ, buckets) over classic
// histograms: at every step, the buckets of each series (its labels
// without le) give one quantile.
func (ev *evaluator) histogramQuantile(args []metricsql.Expr) Matrix {
	qs := scalarOf(ev.eval(args[0]))
	for _, q := range qs {
		if math.IsNaN(q) || q < 0 || q > 1 {
			ev.annotate(false, quantileWarning(q))
		}
	}
	return ev.classicHistograms(args[1], func(i int, buckets []bucket) (float64, bool) {
		f, forced := bucketQuantile(qs[i], buckets)
		if forced {
			ev.annotate(true, "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)")
		}
		return f, true
	})
}

// classicHistograms evaluates arg, the bucket series of a histogram
// function, and collects fn's value for each histogram at every step:
// fused with arg when arg is of the shape fusedHistogram evaluates,
// otherwise from arg's result. fn may be called from several goroutines.
func (ev *evaluator) classicHistograms(arg metricsql.Expr, fn func(step int, buckets []bucket) (float64, bool)) Matrix {
	if sh, ok := ev.fusedHistogramShapeOf(arg); ok {
		if m, ok := ev.fusedHistogram(sh, fn); ok {
			return m
		}
	}
	m := vectorOf(ev.eval(arg))
	return ev.eachClassicHistogram(m, fn)
}

// histogramFraction is histogram_fraction(lower, upper, buckets): the
// estimated share of observations between lower and upper.
func (ev *evaluator) histogramFraction(args []metricsql.Expr) Matrix {
	lower, upper := scalarOf(ev.eval(args[0])), scalarOf(ev.eval(args[1]))
	return ev.classicHistograms(args[2], func(i int, buckets []bucket) (float64, bool) {
		return bucketFraction(lower[i], upper[i], buckets), true
	})
}

// eachClassicHistogram groups the bucket series of m by their labels
// without le and, at every step, collects fn's value for each group under
// those labels without the metric name.
func (ev *evaluator) eachClassicHistogram(m Matrix, fn func(step int, buckets []bucket) (float64, bool)) Matrix {
	out, members, bounds := ev.bucketGroups(m)
	pos := make([]int, len(m)) // next point of each series
	var buf []bucket
	for i, n := 0, ev.numSteps(); i < n; i++ {
		if i%256 == 0 {
			ev.checkContext()
		}
		ts := ev.stepTime(i)
		for g, ks := range members {
			buf = buf[:0]
			for _, k := range ks {
				pts := m[k].Floats
				if p := pos[k]; p < len(pts) && pts[p].T == ts {
					buf = append(buf, bucket{bounds[k], pts[p].F})
					pos[k]++
				}
			}
			if len(buf) == 0 {
				continue
			}
			if f, ok := fn(i, buf); ok {
				out[g].Floats = append(out[g].Floats, FPoint{T: ts, F: f})
				ev.hold(1)
			}
		}
	}
	// Histograms of different names but otherwise equal labels collide
	// once the name is gone, which fails the query as in Prometheus.
	return ev.mergeSameLabels(compact(out))
}

// bucketGroups finds, once per query, each bucket series' group (its
// labels without le) and upper bound: out has a series per group,
// members lists each group's series by increasing upper bound, so that
// the buckets of a step come out sorted. A series without a valid le
// joins no group.
func (ev *evaluator) bucketGroups(m Matrix) (out Matrix, members [][]int, bounds []float64) {
	bounds = make([]float64, len(m))
	groupOf := make([]int, len(m))
	var sizes []int
	index := map[string]int{}
	var keyBuf []byte
	for i, s := range m {
		groupOf[i] = -1
		le := s.Metric.Get(labels.BucketLabel)
		ub, err := strconv.ParseFloat(le, 64)
		if err != nil || math.IsNaN(ub) {
			ev.annotate(false, fmt.Sprintf("PromQL warning: bucket label %q is missing or has a malformed value of %q", labels.BucketLabel, le))
			continue
		}
		keyBuf = s.Metric.BytesWithoutLabels(keyBuf, labels.BucketLabel)
		g, ok := index[string(keyBuf)]
		if !ok {
			g = len(out)
			index[string(keyBuf)] = g
			out = append(out, Series{Metric: labels.NewBuilder(s.Metric).Del(model.MetricNameLabel, labels.BucketLabel).Labels()})
			sizes = append(sizes, 0)
		}
		groupOf[i], bounds[i] = g, ub
		sizes[g]++
	}
	// The groups' member lists share one array.
	all := make([]int, 0, len(m))
	members = make([][]int, len(out))
	for g, n := range sizes {
		members[g] = all[len(all) : len(all) : len(all)+n]
		all = all[:len(all)+n]
	}
	for i, g := range groupOf {
		if g >= 0 {
			members[g] = append(members[g], i)
		}
	}
	for _, ks := range members {
		slices.SortStableFunc(ks, func(a, b int) int { return cmp.Compare(bounds[a], bounds[b]) })
	}
	return out, members, bounds
}

// sortedBuckets orders buckets by upper bound and merges equal bounds. ok
// is false without a +Inf bucket, where no estimate is defined.
func sortedBuckets(buckets []bucket) ([]bucket, bool) {
	if !bucketsSorted(buckets) {
		sort.Slice(buckets, func(i, j int) bool { return buckets[i].upperBound < buckets[j].upperBound })
	}
	if !math.IsInf(buckets[len(buckets)-1].upperBound, +1) {
		return nil, false
	}
	return coalesceBuckets(buckets), true
}

// bucketsSorted reports whether buckets are in increasing order of upper
// bound (as eachClassicHistogram hands them over), without the cost of a
// sort.
func bucketsSorted(buckets []bucket) bool {
	for i := 1; i < len(buckets); i++ {
		if buckets[i].upperBound < buckets[i-1].upperBound {
			return false
		}
	}
	return true
}

// bucketFraction estimates the share of observations in (lower, upper]
// by linear interpolation inside buckets, as Prometheus does.
func bucketFraction(lower, upper float64, buckets []bucket) float64 {
	buckets, ok := sortedBuckets(buckets)
	if !ok {
		return math.NaN()
	}
	count := buckets[len(buckets)-1].count
	if count == 0 || math.IsNaN(lower) || math.IsNaN(upper) {
		return math.NaN()
	}
	if lower >= upper {
		return 0
	}
	var rank, lowerRank, upperRank float64
	var lowerSet, upperSet bool
	lowerBound := 0.0
	if buckets[0].upperBound <= 0 {
		lowerBound = math.Inf(-1)
	}
	for i, b := range buckets {
		if i > 0 {
			lowerBound = buckets[i-1].upperBound
		}
		upperBound := b.upperBound
		interpolate := func(v float64) float64 {
			if lowerBound == math.Inf(-1) {
				return b.count
			}
			return rank + (b.count-rank)*(v-lowerBound)/(upperBound-lowerBound)
		}
		if !lowerSet && lowerBound >= lower {
			lowerRank, lowerSet = rank, true
		}
		if !upperSet && lowerBound >= upper {
			upperRank, upperSet = rank, true
		}
		if lowerSet && upperSet {
			break
		}
		if !lowerSet && lowerBound < lower && upperBound > lower {
			lowerRank, lowerSet = interpolate(lower), true
		}
		if !upperSet && lowerBound < upper && upperBound > upper {
			upperRank, upperSet = interpolate(upper), true
		}
		if lowerSet && upperSet {
			break
		}
		rank = b.count
	}
	if !lowerSet || lowerRank > count {
		lowerRank = count
	}
	if !upperSet || upperRank > count {
		upperRank = count
	}
	return (upperRank - lowerRank) / count
}

// bucketQuantile estimates the q-quantile from cumulative buckets by
// linear interpolation within the bucket holding the rank. It reports
// whether the counts had to be made monotonic.
func bucketQuantile(q float64, buckets []bucket) (float64, bool) {
	switch {
	case math.IsNaN(q):
		return math.NaN(), false
	case q < 0:
		return math.Inf(-1), false
	case q > 1:
		return math.Inf(+1), false
	}
	buckets, ok := sortedBuckets(buckets)
	if !ok {
		return math.NaN(), false
	}
	forced := ensureMonotonic(buckets)
	if len(buckets) < 2 {
		return math.NaN(), forced
	}
	observations := buckets[len(buckets)-1].count
	if observations == 0 {
		return math.NaN(), forced
	}
	rank := q * observations
	b := sort.Search(len(buckets)-1, func(i int) bool { return buckets[i].count >= rank })
	switch {
	case b == len(buckets)-1:
		return buckets[len(buckets)-2].upperBound, forced
	case b == 0 && buckets[0].upperBound <= 0:
		return buckets[0].upperBound, forced
	}
	var start float64
	end, count := buckets[b].upperBound, buckets[b].count
	if b > 0 {
		start = buckets[b-1].upperBound
		count -= buckets[b-1].count
		rank -= buckets[b-1].count
	}
	return start + (end-start)*(rank/count), forced
}

// coalesceBuckets merges sorted buckets with equal upper bounds.
func coalesceBuckets(buckets []bucket) []bucket {
	last, i := buckets[0], 0
	for _, b := range buckets[1:] {
		if b.upperBound == last.upperBound {
			last.count += b.count
			continue
		}
		buckets[i] = last
		last = b
		i++
	}
	buckets[i] = last
	return buckets[:i+1]
}

// ensureMonotonic ignores differences between neighbouring counts that are
// floating-point noise and removes decreases (possible with remote write
// or partial scrapes), so the rank search is well defined.
func ensureMonotonic(buckets []bucket) (forced bool) {
	prev := buckets[0].count
	for i := 1; i < len(buckets); i++ {
		curr := buckets[i].count
		switch {
		case curr == prev:
		case almostEqual(prev, curr, smallDeltaTolerance):
			buckets[i].count = prev
		case curr < prev:
			buckets[i].count = prev
			forced = true
		default:
			prev = curr
		}
	}
	return forced
}

func almostEqual(a, b, epsilon float64) bool {
	const minNormal = 2.2250738585072014e-308
	if a == b {
		return true
	}
	absSum := math.Abs(a) + math.Abs(b)
	diff := math.Abs(a - b)
	if a == 0 || b == 0 || absSum < minNormal {
		return diff < epsilon*minNormal
	}
	if absSum > math.MaxFloat64 { // math.Min, without its call
		absSum = math.MaxFloat64
	}
	return diff/absSum < epsilon
}
