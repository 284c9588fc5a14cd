package evaluator

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// Pushdown: a fused aggregation (aggregate_rollup.go) evaluated where the
// series are. A store that spreads series over nodes (the ring's fan-out)
// implements Pushdown; the asking evaluator hands it the aggregation as
// an AggregateSpec, each node folds the series it was designated into a
// PartialAggregate (Engine.EvalPartial), and the asking evaluator merges
// the nodes' partials with its own fold of the series left over, then
// finishes every step as the local fused path does. Partials merge
// exactly (up to floating-point order), so the answer is the local one.

// AggregateSpec is one fused aggregation to evaluate where the series are.
type AggregateSpec struct {
	// Expr is the aggregation alone (e.g. `sum by (cluster) (rate(x{a="b"}[5m]))`), as
	// metricsql's AppendString writes it; the node parses it with ParseLimited.
	Expr string
	// Start, End and Interval (ms, Interval >= 1) are the steps of the evaluator the aggregation
	// is part of (inside a subquery these are the subquery's, not the query's).
	Start, End, Interval int64
	// LookbackDelta (ms) is the query's.
	LookbackDelta int64
	// Matchers are the selector's (one matcher set; pushdown declines `or` selectors);
	// Mint and Maxt the time range the selector reads (first-range+1 .. last, after offset/@).
	Matchers   []*labels.Matcher
	Mint, Maxt int64
}

// Steps returns the number of steps of s: 0 when they are not valid,
// and at most math.MaxInt32.
func (s AggregateSpec) Steps() int {
	if s.Interval < 1 || s.End < s.Start {
		return 0
	}
	d := s.End - s.Start
	if d < 0 { // overflowed
		return math.MaxInt32
	}
	return int(min(d/s.Interval, math.MaxInt32-1)) + 1
}

// Pushdown is implemented by a store (tsdb.Queryable) that can evaluate fused aggregations on the
// nodes that hold the series. PushAggregate returns the nodes' partial aggregates and a store holding
// the series that must still be read and folded here (nil: none). It returns ErrNotPushed (wrapped or
// not) when it declines (a single node, a node failing between the phases ...): the engine then evaluates
// the aggregation as it does today, through the same store. Any other error fails the query.
//
// The evaluator owns the returned partials (it merges into them).
type Pushdown interface {
	PushAggregate(ctx context.Context, spec AggregateSpec) (partials []*PartialAggregate, rest tsdb.Queryable, err error)
}

// PartialAggregate is the not-yet-finished result of a fused aggregation
// over some of its series: per output group its labels and per step its
// state, and the counts the evaluation gathered. It crosses the wire as
// AppendBinary writes it.
type PartialAggregate struct {
	groups []*fusedGroup
	// Stats are what the evaluation that made the partial counted; the
	// asking evaluator adds them to its own.
	Stats PartialStats
}

// PartialStats are the counters of Stats that a partial carries.
type PartialStats struct {
	SamplesLoaded, SeriesLoaded, QueryableSamples, SamplesRead int64
}

// Groups returns the number of output groups of p.
func (p *PartialAggregate) Groups() int { return len(p.groups) }

// pushable reports whether a fused aggregation may be evaluated on other
// nodes: one matcher set, and every parameter of the range function a
// number (a scalar sub-expression would be evaluated against the node's
// store, not the whole ring).
func pushable(sh fusedShape) bool {
	if len(sh.me.LabelFilterss) != 1 {
		return false
	}
	for _, a := range sh.call.Args[1:] {
		if _, ok := a.(*metricsql.NumberExpr); !ok {
			return false
		}
	}
	return true
}

// pushAggregate pushes e (of shape sh) down when the store implements
// Pushdown and e qualifies, and returns the partials to merge: the
// nodes' and those of folding here the series they left. ok false: not
// pushed (the store declined, or e does not qualify), evaluate as usual.
//
// Not pushed either: an evaluator that counts samples per step (the query
// asked for per-step stats, or this is a subquery, whose outer steps
// count its samples per step): a partial carries totals only.
func (ev *evaluator) pushAggregate(e *metricsql.AggrFuncExpr, sh fusedShape) (partials []*partialAggregate, ok bool) {
	pd, isPD := ev.store.(Pushdown)
	if !isPD || ev.counts.perStep != nil || !pushable(sh) {
		return nil, false
	}
	src := ev.rangeSource(sh.re) // checks the window; reads nothing
	first, last := src.mods.refTime(ev.start), src.mods.refTime(ev.end)
	spec := AggregateSpec{
		Expr:  string(e.AppendString(nil)),
		Start: ev.start, End: ev.end, Interval: ev.interval, LookbackDelta: ev.lookback,
		Matchers: ev.matcherSets(sh.me)[0],
		Mint:     first - src.rangeMs + 1, Maxt: last,
	}
	remote, rest, err := pd.PushAggregate(ev.ctx, spec)
	if errors.Is(err, ErrNotPushed) {
		return nil, false
	}
	if err != nil {
		ev.checkContext()
		raiseErr(err)
	}
	steps := ev.numSteps()
	for _, p := range remote {
		if p == nil {
			continue
		}
		ev.samplesLoaded.Add(p.Stats.SamplesLoaded)
		ev.seriesLoaded.Add(p.Stats.SeriesLoaded)
		ev.counts.total.Add(p.Stats.QueryableSamples)
		ev.counts.read.Add(p.Stats.SamplesRead)
		partials = append(partials, p.keyed(sh.g, steps))
	}
	if rest != nil {
		restSrc := *src
		restSrc.each = func(start func(int), fn func(*seriesWorker, int, labels.Labels, []FPoint), done func(*seriesWorker)) {
			ev.forSeriesWorkersIn(rest, sh.me, spec.Mint, spec.Maxt, true, start, fn, done)
		}
		partials = append(partials, ev.foldAll(sh, &restSrc)...)
	}
	return partials, true
}

// keyed returns p's groups keyed as the evaluator's workers key theirs:
// the key of a group's labels is that of every series in it.
func (p *PartialAggregate) keyed(g grouping, steps int) *partialAggregate {
	out := &partialAggregate{groups: make(map[uint64]*fusedGroup, len(p.groups))}
	var buf []byte
	for _, grp := range p.groups {
		if len(grp.steps) != steps {
			raise("pushed-down aggregation returned a group of %d steps, want %d", len(grp.steps), steps)
		}
		if name, ok := g.admits(grp.metric); !ok {
			raise("pushed-down aggregation returned the group %s, whose label %q its grouping drops", grp.metric, name)
		}
		var h uint64
		h, buf = g.key(grp.metric, buf)
		if dst := out.groups[h]; dst != nil {
			raise("pushed-down aggregation returned the group %s twice", grp.metric)
		}
		out.groups[h] = grp
	}
	return out
}

// admits reports whether lset can be the labels of a group of g: for
// `by`, only labels it names; for `without`, none of them. It returns a
// label that cannot be there otherwise.
func (g grouping) admits(lset labels.Labels) (string, bool) {
	bad := ""
	lset.Range(func(l labels.Label) {
		if _, listed := slices.BinarySearch(g.names, l.Name); listed == g.without && bad == "" {
			bad = l.Name
		}
	})
	return bad, bad == ""
}

// EvalPartial evaluates spec over every series of store (the caller passes a store already restricted
// to the series this node was designated) and returns the partial, unfinished. It takes one of the
// engine's slots, its timeout, series and sample limits, as a query does. A spec that is not a fused
// aggregation the engine pushes down is a bad request (ErrBadQuery). It never pushes down itself.
func (e *Engine) EvalPartial(ctx context.Context, store tsdb.Queryable, spec AggregateSpec) (p *PartialAggregate, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if store == nil {
		return nil, errors.New("pushed-down aggregation: no store")
	}
	if spec.Interval < 1 || spec.End < spec.Start || spec.LookbackDelta < 0 {
		return nil, badQuery("pushed-down aggregation: invalid steps start=%d end=%d interval=%d lookback=%d",
			spec.Start, spec.End, spec.Interval, spec.LookbackDelta)
	}
	steps := spec.Steps()
	expr, err := ParseLimited(spec.Expr, e.opts.ParseLimits)
	if err != nil {
		return nil, err
	}
	ae, ok := expr.(*metricsql.AggrFuncExpr)
	if !ok {
		return nil, badQuery("pushed-down aggregation: %q is not an aggregation", spec.Expr)
	}
	op := strings.ToLower(ae.Name)
	g := newGrouping(ae)
	sh, ok := fusedShapeOf(op, ae, g, steps)
	if !ok || !pushable(sh) {
		return nil, badQuery("pushed-down aggregation: %q at %d steps is not an aggregation evaluated where the series are", spec.Expr, steps)
	}
	lookback := spec.LookbackDelta
	if lookback == 0 {
		lookback = e.opts.LookbackDelta.Milliseconds()
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	ctx = tsdb.WithSeriesLimit(ctx, e.opts.MaxSeries)
	if err := e.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-e.slots }()
	var queryStep int64
	if spec.End > spec.Start {
		queryStep = spec.Interval
	}
	ev := &evaluator{
		queryState: &queryState{
			ctx: ctx, store: store, lookback: lookback,
			queryStart: spec.Start, queryEnd: spec.End, queryStep: queryStep,
			defaultSubqueryStep: e.opts.DefaultSubqueryStep.Milliseconds(),
			maxSamples:          e.opts.MaxSamples, maxSeries: e.opts.MaxSeries, maxSubquerySteps: e.opts.MaxSubquerySteps,
		},
		start: spec.Start, end: spec.End, interval: spec.Interval,
	}
	ev.counts = newStepCounts(steps, false)
	var merged map[uint64]*fusedGroup
	if err := ev.protect(func() { merged = mergeGroups(op, ev.foldAll(sh, ev.rangeSource(sh.re))) }); err != nil {
		return nil, err
	}
	p = &PartialAggregate{groups: make([]*fusedGroup, 0, len(merged)), Stats: PartialStats{
		SamplesLoaded: ev.samplesLoaded.Load(), SeriesLoaded: ev.seriesLoaded.Load(),
		QueryableSamples: ev.counts.total.Load(), SamplesRead: ev.counts.read.Load(),
	}}
	for _, grp := range merged {
		p.groups = append(p.groups, grp)
	}
	return p, nil
}

// Wire form of a PartialAggregate (every integer a uvarint, every float
// its 8 IEEE-754 bytes, little endian):
//
//	version (1 byte, partialVersion)
//	samples_loaded series_loaded queryable_samples samples_read
//	steps groups
//	groups × (labels × (name_len name value_len value), sorted by name)
//	        then steps × (flags [count] [value] [c] [mean])
//
// labels is preceded by its count. flags: stepSeen, stepIncremental,
// and a bit per float that follows (a float whose bits are 0 is left
// out); count follows when seen. A step not seen is the one byte 0.
const (
	partialVersion = 1

	stepSeen        = 1 << 0
	stepIncremental = 1 << 1
	stepValue       = 1 << 2
	stepC           = 1 << 3
	stepMean        = 1 << 4
	stepFlags       = stepSeen | stepIncremental | stepValue | stepC | stepMean

	// maxPartialLabels bounds the labels of one group of a decoded
	// partial.
	maxPartialLabels = 1024
)

// AppendBinary appends the partial's wire form (compact binary: varints, float64 bits, labels as
// name/value strings) to dst.
func (p *PartialAggregate) AppendBinary(dst []byte) []byte {
	steps := 0
	if len(p.groups) > 0 {
		steps = len(p.groups[0].steps)
	}
	dst = append(dst, partialVersion)
	for _, v := range []int64{p.Stats.SamplesLoaded, p.Stats.SeriesLoaded, p.Stats.QueryableSamples, p.Stats.SamplesRead} {
		dst = binary.AppendUvarint(dst, uint64(max(v, 0)))
	}
	dst = binary.AppendUvarint(dst, uint64(steps))
	dst = binary.AppendUvarint(dst, uint64(len(p.groups)))
	for _, grp := range p.groups {
		dst = binary.AppendUvarint(dst, uint64(grp.metric.Len()))
		grp.metric.Range(func(l labels.Label) {
			dst = appendString(dst, l.Name)
			dst = appendString(dst, l.Value)
		})
		for i := range grp.steps {
			dst = appendGroupState(dst, &grp.steps[i])
		}
	}
	return dst
}

func appendGroupState(dst []byte, gs *groupState) []byte {
	if !gs.seen {
		return append(dst, 0)
	}
	flags := byte(stepSeen)
	if gs.incremental {
		flags |= stepIncremental
	}
	fs := [3]struct {
		bit byte
		f   float64
	}{{stepValue, gs.value}, {stepC, gs.c}, {stepMean, gs.mean}}
	for _, f := range fs {
		if math.Float64bits(f.f) != 0 {
			flags |= f.bit
		}
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(gs.count))
	for _, f := range fs {
		if flags&f.bit != 0 {
			dst = appendFloat(dst, f.f)
		}
	}
	return dst
}

// DecodePartialAggregate decodes one, refusing (clear error, no panic, no allocation beyond the bounds)
// malformed or oversized input: at most maxGroups groups, every group exactly `steps` step states
// (steps = the spec's step count), label count/sizes bounded, trailing bytes refused.
func DecodePartialAggregate(b []byte, steps int, maxGroups int) (*PartialAggregate, error) {
	if steps < 1 || steps > maxFusedSteps {
		return nil, fmt.Errorf("%w: %d steps, want 1 to %d", ErrBadPartial, steps, maxFusedSteps)
	}
	d := partialDecoder{b: b}
	if v := d.byte("version"); d.err == nil && v != partialVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadPartial, v, partialVersion)
	}
	p := &PartialAggregate{}
	for _, dst := range []*int64{&p.Stats.SamplesLoaded, &p.Stats.SeriesLoaded, &p.Stats.QueryableSamples, &p.Stats.SamplesRead} {
		*dst = int64(d.uvarint("stats", math.MaxInt64))
	}
	gotSteps := d.uvarint("steps", math.MaxInt64)
	n := d.uvarint("groups", math.MaxInt64)
	if d.err != nil {
		return nil, d.err
	}
	if n > 0 && gotSteps != uint64(steps) {
		return nil, fmt.Errorf("%w: %d steps a group, want %d", ErrBadPartial, gotSteps, steps)
	}
	if n > uint64(maxGroups) {
		return nil, fmt.Errorf("%w: %d groups, more than the limit of %d", ErrBadPartial, n, maxGroups)
	}
	// Every group takes at least a byte for its labels and one per step.
	if n > uint64(len(d.b))/uint64(1+steps) {
		return nil, fmt.Errorf("%w: %d groups of %d steps cannot fit in %d bytes", ErrBadPartial, n, steps, len(d.b))
	}
	p.groups = make([]*fusedGroup, 0, n)
	sb := labels.NewScratchBuilder(8)
	for range n {
		grp := &fusedGroup{metric: d.labels(&sb)}
		if d.err == nil && len(d.b) < steps {
			d.fail("%d steps cannot fit in %d bytes", steps, len(d.b))
		}
		if d.err != nil {
			return nil, d.err
		}
		grp.steps = make([]groupState, steps)
		for i := range grp.steps {
			d.groupState(&grp.steps[i])
		}
		if d.err != nil {
			return nil, d.err
		}
		p.groups = append(p.groups, grp)
	}
	if len(d.b) > 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadPartial, len(d.b))
	}
	return p, nil
}

// partialDecoder reads a partial's wire form; the first error sticks.
type partialDecoder struct {
	b   []byte
	err error
}

func (d *partialDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadPartial, fmt.Sprintf(format, args...))
	}
}

func (d *partialDecoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated at %s", what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *partialDecoder) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong varint at %s", what)
		return 0
	}
	if v > limit {
		d.fail("%s %d is more than %d", what, v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *partialDecoder) string(what string) string {
	n := d.uvarint(what+" length", math.MaxInt64)
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("%s of %d bytes, %d left", what, n, len(d.b))
	}
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *partialDecoder) float(what string) float64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail("truncated at %s", what)
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return f
}

// labels reads a group's label set: names not empty, strictly ascending.
func (d *partialDecoder) labels(sb *labels.ScratchBuilder) labels.Labels {
	// Each label takes at least two bytes (two lengths).
	n := d.uvarint("label count", min(maxPartialLabels, uint64(len(d.b))/2))
	sb.Reset()
	prev := ""
	for i := range n {
		name, value := d.string("label name"), d.string("label value")
		if d.err != nil {
			return labels.EmptyLabels()
		}
		if name == "" || (i > 0 && name <= prev) {
			d.fail("label names empty, unsorted or repeated: %q after %q", name, prev)
			return labels.EmptyLabels()
		}
		sb.Add(name, value)
		prev = name
	}
	return sb.Labels()
}

func (d *partialDecoder) groupState(gs *groupState) {
	flags := d.byte("step flags")
	if d.err != nil || flags == 0 {
		return
	}
	if flags&^stepFlags != 0 || flags&stepSeen == 0 {
		d.fail("step flags %#x", flags)
		return
	}
	// A count of series is an integer far below 2^53.
	count := d.uvarint("step count", 1<<53)
	if d.err == nil && count == 0 {
		d.fail("a seen step with count 0")
	}
	gs.seen, gs.count, gs.incremental = true, float64(count), flags&stepIncremental != 0
	if flags&stepValue != 0 {
		gs.value = d.float("value")
	}
	if flags&stepC != 0 {
		gs.c = d.float("compensation")
	}
	if flags&stepMean != 0 {
		gs.mean = d.float("mean")
	}
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func appendFloat(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}
