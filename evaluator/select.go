package evaluator

import (
	"fmt"
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
	}
	raise("@ modifier must be a number, start() or end(), not %s", e.AppendString(nil))
	return 0
}

// matcherSets turns a selector's label filters into matcher sets; more
// than one set is MetricsQL's `{a="x" or b="y"}`, the union of the sets.
// The query's parse compiled them already unless a regex is invalid.
func (qs *queryState) matcherSets(me *metricsql.MetricExpr) [][]*labels.Matcher {
	if sets, ok := qs.matchers[me]; ok {
		return sets
	}
	sets, err := compileMatcherSets(me)
	if err != nil {
		raiseErr(badQuery("%v", err))
	}
	return sets
}

func compileMatcherSets(me *metricsql.MetricExpr) ([][]*labels.Matcher, error) {
	sets := make([][]*labels.Matcher, 0, len(me.LabelFilterss))
	for _, lfs := range me.LabelFilterss {
		ms, err := Matchers(lfs)
		if err != nil {
			return nil, err
		}
		sets = append(sets, ms)
	}
	return sets, nil
}

// Matchers turns one group of a selector's label filters into Prometheus
// matchers (regexes anchored, as in PromQL).
func Matchers(filters []metricsql.LabelFilter) ([]*labels.Matcher, error) {
	ms := make([]*labels.Matcher, 0, len(filters))
	for _, lf := range filters {
		m, err := labels.NewMatcher(matchType(lf), lf.Label, lf.Value)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression in %s: %w", lf.AppendString(nil), err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// forSeriesWorkers selects the series matching me with samples in
// [mint, maxt] and hands each one's samples to fn, from several
// goroutines; each worker calls done, if not nil, when it has finished.
// i is the series' position in the selection, for callers that keep
// results in a stable order. start, if not nil, learns the number of
// series first. Staleness markers are dropped when dropStale is set.
func (ev *evaluator) forSeriesWorkers(me *metricsql.MetricExpr, mint, maxt int64, dropStale bool,
	start func(n int), fn func(w *seriesWorker, i int, lset labels.Labels, pts []FPoint), done func(w *seriesWorker)) {
	ev.forSeriesWorkersIn(ev.store, me, mint, maxt, dropStale, start, fn, done)
}

// forSeriesWorkersIn is forSeriesWorkers reading from store instead of
// the query's (the series a pushed-down aggregation left to fold here).
func (ev *evaluator) forSeriesWorkersIn(store tsdb.Queryable, me *metricsql.MetricExpr, mint, maxt int64, dropStale bool,
	start func(n int), fn func(w *seriesWorker, i int, lset labels.Labels, pts []FPoint), done func(w *seriesWorker)) {
	q, err := store.Querier(mint, maxt)
	if err != nil {
		raiseErr(err)
	}
	defer q.Close() // after the workers: iterators read through it
	series := ev.selectAll(q, me)
	ev.seriesLoaded.Add(int64(len(series)))
	if start != nil {
		start(len(series))
	}
	ev.parallelWorkers(len(series), func(w *seriesWorker, i int) {
		w.it = series[i].Iterator(w.it)
		w.buf = ev.load(w.it, w.buf[:0], dropStale)
		fn(w, i, series[i].Labels(), w.buf)
		ev.release(len(w.buf)) // fn keeps no reference to w.buf
	}, done)
}

// selectAll returns the series of every matcher set, without duplicates.
func (ev *evaluator) selectAll(q tsdb.Querier, me *metricsql.MetricExpr) []tsdb.Series {
	sets := ev.matcherSets(me)
	var seen map[uint64]struct{}
	if len(sets) > 1 {
		seen = map[uint64]struct{}{}
	}
	var series []tsdb.Series
	for _, ms := range sets {
		ss := q.SelectUnsorted(ev.ctx, ms...)
		for ss.Next() {
			s := ss.At()
			if seen != nil {
				h := s.Labels().Hash()
				if _, dup := seen[h]; dup {
					continue
				}
				seen[h] = struct{}{}
			}
			series = append(series, s)
			if len(series) > ev.maxSeries {
				raiseErr(fmt.Errorf("%w: the selector matches more than %d series", tsdb.ErrTooManySeries, ev.maxSeries))
			}
		}
		if err := ss.Err(); err != nil {
			ev.checkContext()
			raiseErr(err)
		}
	}
	return series
}

// loadBatch is how many raw samples load reads between two updates of
// the query's held points.
const loadBatch = 1024

// load appends the iterator's samples to buf, dropping staleness markers
// when dropStale is set. The samples count as held by the query as they
// are read, so a series larger than what the query may still hold fails
// it after at most loadBatch samples more; the caller releases them with
// ev.release(len(buf)) when it is done with buf.
func (ev *evaluator) load(it tsdb.Iterator, buf []FPoint, dropStale bool) []FPoint {
	held := 0
	defer func() { ev.samplesLoaded.Add(int64(len(buf))) }()
	for it.Next() {
		t, f := it.At()
		if dropStale && isStale(f) {
			continue
		}
		if len(buf)-held == loadBatch {
			ev.hold(loadBatch)
			held += loadBatch
		}
		buf = append(buf, FPoint{T: t, F: f})
	}
	if err := it.Err(); err != nil {
		ev.release(held)
		raiseErr(err)
	}
	ev.hold(len(buf) - held)
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
	return ev.selectShared(me, mods, times, func() Matrix { return ev.selectInstantFromStore(me, mods, times) })
}

func (ev *evaluator) selectInstantFromStore(me *metricsql.MetricExpr, mods selectorMods, times bool) Matrix {
	first, last := mods.refTime(ev.start), mods.refTime(ev.end)
	var out Matrix
	ev.forSeriesWorkers(me, first-ev.lookback+1, last, false,
		func(n int) { out = make(Matrix, n) },
		func(_ *seriesWorker, i int, lset labels.Labels, pts []FPoint) {
			if p := ev.instantPoints(pts, mods, times); len(p) > 0 {
				ev.countPoints(p, mods.hasAt)
				ev.hold(len(p))
				out[i] = Series{Metric: lset, Floats: p}
			}
		}, nil)
	return compact(out)
}

// compact drops the empty series of m, keeping the order.
func compact(m Matrix) Matrix {
	out := m[:0]
	for _, s := range m {
		if len(s.Floats) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func (ev *evaluator) instantPoints(buf []FPoint, mods selectorMods, times bool) []FPoint {
	var pts []FPoint
	j := -1 // index of the last sample at or before the reference time
	for i, n := 0, ev.numSteps(); i < n; i++ {
		if i%stepsPerContextCheck == stepsPerContextCheck-1 {
			ev.checkContext() // a subquery's million steps, series after series
		}
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
