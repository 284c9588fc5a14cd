package evaluator

import (
	"math"
	"sort"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// staleNaNBits is the bit pattern of Prometheus's staleness marker: a
// sample that says the series ended.
const staleNaNBits = 0x7ff0000000000002

func isStale(f float64) bool { return math.Float64bits(f) == staleNaNBits }

// selectorMods are a selector's offset and @ modifiers, in milliseconds.
type selectorMods struct {
	offset int64
	at     int64
	hasAt  bool
}

// refTime is the time a selector reads at for the step at ts.
func (m selectorMods) refTime(ts int64) int64 {
	if m.hasAt {
		return m.at - m.offset
	}
	return ts - m.offset
}

func (ev *evaluator) refTime(ts int64, m selectorMods) int64 { return m.refTime(ts) }

func (ev *evaluator) modsOf(e *metricsql.RollupExpr) selectorMods {
	m := selectorMods{offset: e.Offset.Duration(ev.interval)}
	if e.At != nil {
		m.at, m.hasAt = ev.atTime(e.At), true
	}
	return m
}

// atTime resolves an @ modifier: a number of seconds, start() or end().
func (ev *evaluator) atTime(e metricsql.Expr) int64 {
	switch a := e.(type) {
	case *metricsql.NumberExpr:
		return int64(math.Round(a.N * 1000))
	case *metricsql.DurationExpr:
		return a.Duration(0)
	case *metricsql.FuncExpr:
		switch a.Name {
		case "start":
			return ev.queryStart
		case "end":
			return ev.queryEnd
		}
	case *metricsql.BinaryOpExpr:
		if a.Op == "-" {
			if n, ok := a.Right.(*metricsql.NumberExpr); ok {
				if l, ok := a.Left.(*metricsql.NumberExpr); ok && l.N == 0 {
					return int64(math.Round(-n.N * 1000))
				}
			}
		}
	}
	raise("@ modifier must be a number, start() or end(), not %s", e.AppendString(nil))
	return 0
}

// matcherSets turns a selector's label filters into matcher sets; more
// than one set is MetricsQL's `{a="x" or b="y"}`, the union of the sets.
func matcherSets(me *metricsql.MetricExpr) [][]*labels.Matcher {
	sets := make([][]*labels.Matcher, 0, len(me.LabelFilterss))
	for _, lfs := range me.LabelFilterss {
		ms := make([]*labels.Matcher, 0, len(lfs))
		for _, lf := range lfs {
			t := labels.MatchEqual
			switch {
			case lf.IsRegexp && lf.IsNegative:
				t = labels.MatchNotRegexp
			case lf.IsRegexp:
				t = labels.MatchRegexp
			case lf.IsNegative:
				t = labels.MatchNotEqual
			}
			m, err := labels.NewMatcher(t, lf.Label, lf.Value)
			if err != nil {
				raiseErr(badQuery("invalid regular expression in %s: %v", lf.AppendString(nil), err))
			}
			ms = append(ms, m)
		}
		sets = append(sets, ms)
	}
	return sets
}

// selectSeries calls fn for every series matching me that has samples in
// [mint, maxt], in label order within each matcher set.
func (ev *evaluator) selectSeries(me *metricsql.MetricExpr, mint, maxt int64, fn func(lset labels.Labels, it tsdb.Iterator)) {
	q, err := ev.store.Querier(mint, maxt)
	if err != nil {
		raiseErr(err)
	}
	defer q.Close()
	sets := matcherSets(me)
	var seen map[uint64]struct{}
	if len(sets) > 1 {
		seen = map[uint64]struct{}{}
	}
	var it tsdb.Iterator
	for _, ms := range sets {
		ss := q.Select(ev.ctx, ms...)
		for ss.Next() {
			s := ss.At()
			lset := s.Labels()
			if seen != nil {
				h := lset.Hash()
				if _, dup := seen[h]; dup {
					continue
				}
				seen[h] = struct{}{}
			}
			ev.seriesLoaded++
			if ev.seriesLoaded%1024 == 0 {
				ev.checkContext()
			}
			it = s.Iterator(it)
			fn(lset, it)
		}
		if err := ss.Err(); err != nil {
			ev.checkContext()
			raiseErr(err)
		}
	}
}

// load appends the iterator's samples to buf, dropping staleness markers
// when dropStale is set.
func (ev *evaluator) load(it tsdb.Iterator, buf []FPoint, dropStale bool) []FPoint {
	for it.Next() {
		t, f := it.At()
		if dropStale && isStale(f) {
			continue
		}
		buf = append(buf, FPoint{T: t, F: f})
	}
	if err := it.Err(); err != nil {
		raiseErr(err)
	}
	ev.samplesLoaded += int64(len(buf))
	if int64(len(buf)) > ev.maxSamples-ev.held {
		raiseErr(ErrTooManySamples)
	}
	return buf
}

// vectorSelector evaluates an instant selector: at each step the latest
// sample within the lookback window (ref-lookback, ref], unless it is a
// staleness marker.
func (ev *evaluator) vectorSelector(me *metricsql.MetricExpr, mods selectorMods) Matrix {
	return ev.selectInstant(me, mods, false)
}

// vectorSelectorTimes is vectorSelector with each point's value the time
// of the sample it took, in seconds: what timestamp() reports.
func (ev *evaluator) vectorSelectorTimes(me *metricsql.MetricExpr, mods selectorMods) Matrix {
	return ev.selectInstant(me, mods, true)
}

func (ev *evaluator) selectInstant(me *metricsql.MetricExpr, mods selectorMods, times bool) Matrix {
	first, last := mods.refTime(ev.start), mods.refTime(ev.end)
	var out Matrix
	var buf []FPoint
	ev.selectSeries(me, first-ev.lookback+1, last, func(lset labels.Labels, it tsdb.Iterator) {
		buf = ev.load(it, buf[:0], false)
		pts := ev.instantPoints(buf, mods, times)
		if len(pts) > 0 {
			ev.hold(len(pts))
			out = append(out, Series{Metric: lset, Floats: pts})
		}
	})
	return out
}

func (ev *evaluator) instantPoints(buf []FPoint, mods selectorMods, times bool) []FPoint {
	var pts []FPoint
	j := -1 // index of the last sample at or before the reference time
	for i, n := 0, ev.numSteps(); i < n; i++ {
		ts := ev.stepTime(i)
		ref := mods.refTime(ts)
		for j+1 < len(buf) && buf[j+1].T <= ref {
			j++
		}
		if j < 0 || buf[j].T <= ref-ev.lookback || isStale(buf[j].F) {
			continue
		}
		if pts == nil {
			pts = make([]FPoint, 0, n-i)
		}
		f := buf[j].F
		if times {
			f = float64(buf[j].T) / 1000
		}
		pts = append(pts, FPoint{T: ts, F: f})
	}
	return pts
}

// windowPoints returns the points of pts with lo < T <= hi; pts is
// sorted by T.
func windowPoints(pts []FPoint, lo, hi int64) []FPoint {
	i := sort.Search(len(pts), func(k int) bool { return pts[k].T > lo })
	j := sort.Search(len(pts), func(k int) bool { return pts[k].T > hi })
	if i >= j {
		return nil
	}
	return append([]FPoint(nil), pts[i:j]...)
}
