package evaluator

import (
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// grouping is an aggregation's by/without clause.
type grouping struct {
	without bool
	names   []string // sorted; for without, includes __name__
}

func newGrouping(e *metricsql.AggrFuncExpr) grouping {
	g := grouping{without: strings.EqualFold(e.Modifier.Op, "without")}
	g.names = slices.Clone(e.Modifier.Args)
	if g.without {
		g.names = append(g.names, model.MetricNameLabel)
	}
	slices.Sort(g.names)
	return g
}

// key hashes the labels that identify lset's group. Like Prometheus,
// groups are told apart by a 64-bit hash of their labels.
func (g grouping) key(lset labels.Labels, buf []byte) (uint64, []byte) {
	if g.without {
		return lset.HashWithoutLabels(buf, g.names...)
	}
	return lset.HashForLabels(buf, g.names...)
}

// metric is the label set of lset's group.
func (g grouping) metric(lset labels.Labels, sb *labels.ScratchBuilder) labels.Labels {
	sb.Reset()
	lset.Range(func(l labels.Label) {
		if _, listed := slices.BinarySearch(g.names, l.Name); listed != g.without {
			sb.Add(l.Name, l.Value)
		}
	})
	return sb.Labels() // lset is sorted, so is what was kept
}

// groupIndex assigns every series of m its group: groupOf[i] indexes
// metrics, the groups' label sets in order of first appearance.
func groupIndex(m Matrix, g grouping) (groupOf []int, metrics []labels.Labels) {
	groupOf = make([]int, len(m))
	index := map[uint64]int{}
	sb := labels.NewScratchBuilder(8)
	var buf []byte
	for i, s := range m {
		var h uint64
		h, buf = g.key(s.Metric, buf)
		k, ok := index[h]
		if !ok {
			k = len(metrics)
			index[h] = k
			metrics = append(metrics, g.metric(s.Metric, &sb))
		}
		groupOf[i] = k
	}
	return groupOf, metrics
}

// aggregate evaluates an aggregation operator.
func (ev *evaluator) aggregate(e *metricsql.AggrFuncExpr) any {
	op := strings.ToLower(e.Name)
	var param any
	arg := e.Args[len(e.Args)-1]
	switch op {
	case "topk", "bottomk", "quantile", "limitk", "limit_ratio", "count_values":
		if len(e.Args) != 2 {
			raise("wrong number of arguments for aggregate expression provided, expected 2, got %d", len(e.Args))
		}
		param = ev.eval(e.Args[0])
	case "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar":
		if len(e.Args) != 1 {
			raise("wrong number of arguments for aggregate expression provided, expected 1, got %d", len(e.Args))
		}
	default:
		raise("aggregation %q is not supported", e.Name)
	}
	g := newGrouping(e)
	if m, ok := ev.fusedAggregate(op, e, g); ok {
		return m
	}
	m := vectorOf(ev.eval(arg))
	// Every aggregation builds a new matrix: its input is consumed.
	defer ev.release(m.points())
	switch op {
	case "topk", "bottomk", "limitk":
		ks := scalarOf(param)
		for _, k := range ks {
			if math.IsNaN(k) {
				raise("Parameter value is NaN")
			}
		}
		return ev.aggregateK(op, m, g, ks)
	case "count_values":
		s, ok := param.(String)
		if !ok {
			raise("expected string parameter in count_values")
		}
		return ev.countValues(m, g, s.V)
	}
	var q scalarSteps
	if op == "quantile" {
		q = scalarOf(param)
	}
	return ev.aggregateGroups(op, m, g, q)
}

// groupState accumulates one group at one step. It holds no pointer:
// fused aggregations keep one per group and step (hundreds of megabytes
// for a fleet-wide range query), which the GC then never scans.
// quantile's samples are kept beside it by aggregateGroups.
type groupState struct {
	value, c    float64 // value and Kahan compensation
	mean        float64
	count       float64
	seen        bool
	incremental bool
}

func (ev *evaluator) aggregateGroups(op string, m Matrix, g grouping, q scalarSteps) Matrix {
	groupOf, metrics := groupIndex(m, g)
	states := make([]groupState, len(metrics))
	groups := make([]*groupState, len(metrics))
	out := make(Matrix, len(metrics))
	for i := range groups {
		groups[i] = &states[i]
		out[i].Metric = metrics[i]
	}
	ev.pointRoom(out, m, groupOf)
	var values [][]float64 // quantile's: each group's samples at the step
	if op == "quantile" {
		values = make([][]float64, len(groups))
	}
	st := newStepper(m)
	for i, n := 0, ev.numSteps(); i < n; i++ {
		ts := ev.stepTime(i)
		idx := st.at(ts)
		if len(idx) == 0 {
			continue
		}
		for _, gs := range groups {
			gs.seen = false
		}
		for _, k := range idx {
			gi, f := groupOf[k], st.value(k)
			accumulate(op, groups[gi], f)
			if values != nil {
				if groups[gi].count == 1 { // the group's first sample at the step
					values[gi] = values[gi][:0]
				}
				values[gi] = append(values[gi], f)
			}
		}
		var qi float64
		if q != nil {
			qi = q[i]
		}
		// The step's points are held at once, before they are added.
		seen := 0
		for _, gs := range groups {
			if gs.seen {
				seen++
			}
		}
		ev.hold(seen)
		for k, gs := range groups {
			switch {
			case !gs.seen:
			case values != nil:
				out[k].Floats = append(out[k].Floats, FPoint{T: ts, F: quantileOf(qi, values[k])})
			default:
				out[k].Floats = append(out[k].Floats, FPoint{T: ts, F: finish(op, gs)})
			}
		}
		if op == "quantile" && (math.IsNaN(q[i]) || q[i] < 0 || q[i] > 1) {
			ev.annotate(false, quantileWarning(q[i]))
		}
	}
	return compact(out)
}

// pointRoom gives every group of out the room for all its points in one
// allocation, so that appending them never grows a slice (growing them
// one by one was 40% of the bytes a dashboard's range query allocated).
// A group has at most a point a step, and a point only at a step where
// one of its series (m, grouped by groupOf) has one: the room is never
// more than the input's points.
func (ev *evaluator) pointRoom(out, m Matrix, groupOf []int) {
	room := make([]int, len(out))
	for i, s := range m {
		room[groupOf[i]] += len(s.Floats)
	}
	steps, total := ev.numSteps(), 0
	for k := range room {
		room[k] = min(room[k], steps)
		total += room[k]
	}
	slab := make([]FPoint, total)
	off := 0
	for k := range out {
		out[k].Floats = slab[off : off : off+room[k]]
		off += room[k]
	}
}

func accumulate(op string, gs *groupState, f float64) {
	if !gs.seen {
		gs.seen, gs.count, gs.c, gs.incremental = true, 1, 0, false
		gs.value, gs.mean = f, f
		if op == "stddev" || op == "stdvar" {
			gs.value = 0
			if math.IsNaN(f) || math.IsInf(f, 0) {
				gs.value = math.NaN()
			}
		}
		return
	}
	gs.count++
	switch op {
	case "sum":
		gs.value, gs.c = kahanInc(f, gs.value, gs.c)
	case "avg":
		accumulateAvg(gs, f)
	case "max":
		if gs.value < f || math.IsNaN(gs.value) {
			gs.value = f
		}
	case "min":
		if gs.value > f || math.IsNaN(gs.value) {
			gs.value = f
		}
	case "stddev", "stdvar":
		delta := f - gs.mean
		gs.mean += delta / gs.count
		gs.value += delta * (f - gs.mean)
	}
}

// accumulateAvg sums while the sum is finite and switches to an
// incremental mean when it would overflow, as Prometheus does.
func accumulateAvg(gs *groupState, f float64) {
	if !gs.incremental {
		ns, nc := kahanInc(f, gs.value, gs.c)
		if !math.IsInf(ns, 0) {
			gs.value, gs.c = ns, nc
			return
		}
		gs.incremental = true
		gs.mean = gs.value / (gs.count - 1)
		gs.c /= gs.count - 1
	}
	q := (gs.count - 1) / gs.count
	gs.mean, gs.c = kahanInc(f/gs.count, q*gs.mean, q*gs.c)
}

// finish returns the value of gs; quantile's is not kept in it.
func finish(op string, gs *groupState) float64 {
	switch op {
	case "sum":
		if math.IsInf(gs.value, 0) {
			return gs.value
		}
		return gs.value + gs.c
	case "avg":
		if gs.incremental {
			return gs.mean + gs.c
		}
		return gs.value/gs.count + gs.c/gs.count
	case "count":
		return gs.count
	case "group":
		return 1
	case "stdvar":
		return gs.value / gs.count
	case "stddev":
		return math.Sqrt(gs.value / gs.count)
	}
	return gs.value // min, max
}

// aggregateK is topk, bottomk and limitk: they select samples and keep
// their labels. For an instant query, each group's selection is ordered
// (topk descending, bottomk ascending).
func (ev *evaluator) aggregateK(op string, m Matrix, g grouping, ks scalarSteps) Matrix {
	groupOf, metrics := groupIndex(m, g)
	c := newCollector(ev)
	st := newStepper(m)
	chosen := make([][]int, len(metrics))
	for i, n := 0, ev.numSteps(); i < n; i++ {
		ts := ev.stepTime(i)
		idx := st.at(ts)
		if len(idx) == 0 {
			continue
		}
		k := ks[i]
		if math.IsNaN(k) {
			raise("Parameter value is NaN")
		}
		if k < 1 {
			continue
		}
		for gi := range chosen {
			chosen[gi] = chosen[gi][:0]
		}
		for _, si := range idx {
			chosen[groupOf[si]] = append(chosen[groupOf[si]], si)
		}
		for _, members := range chosen {
			if op != "limitk" {
				sortByValue(members, st, op == "topk")
			}
			if float64(len(members)) > k {
				members = members[:int(k)]
			}
			for _, si := range members {
				c.add(m[si].Metric, ts, st.value(si))
			}
		}
	}
	return c.matrix()
}

// sortByValue orders series indices by their current value, NaN last.
func sortByValue(idx []int, st *stepper, desc bool) {
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := st.value(idx[a]), st.value(idx[b])
		if math.IsNaN(x) || math.IsNaN(y) {
			return !math.IsNaN(x)
		}
		if desc {
			return x > y
		}
		return x < y
	})
}

// countValues counts, per group, the samples with each distinct value;
// the value becomes a label. Groups whose label sets coincide once the
// value label is set are counted together.
func (ev *evaluator) countValues(m Matrix, g grouping, name string) Matrix {
	if !isValidLabelName(name) {
		raise("invalid label name %q", name)
	}
	c := newCollector(ev)
	st := newStepper(m)
	sb := labels.NewScratchBuilder(8)
	for i, n := 0, ev.numSteps(); i < n; i++ {
		ts := ev.stepTime(i)
		counts := map[uint64]float64{}
		var order []labels.Labels
		for _, si := range st.at(ts) {
			b := labels.NewBuilder(g.metric(m[si].Metric, &sb))
			b.Set(name, formatFloat(st.value(si)))
			lset := b.Labels()
			h := lset.Hash()
			if _, ok := counts[h]; !ok {
				order = append(order, lset)
			}
			counts[h]++
		}
		for _, lset := range order {
			c.add(lset, ts, counts[lset.Hash()])
		}
	}
	return c.matrix()
}
