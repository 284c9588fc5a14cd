package ring

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// FanoutOptions configure the ring's fan-out Queryable.
type FanoutOptions struct {
	// Self is this node's name: it reads its own store directly.
	Self string
	// Local is this node's store.
	Local tsdb.Queryable
	// View returns the current ring snapshot (never nil).
	View func() *Snapshot
	// Peers asks the other nodes (Peers.Select).
	Peers *Peers
	// ReplicationFactor is the ring's; it decides how many failed nodes
	// still leave a complete answer.
	ReplicationFactor int
	// PartialResponse allows an answer with series missing, with a
	// warning, when more nodes failed than the replication covers
	// (query.partial_response); a request overrides it
	// (WithPartialResponse). SetPartialResponse changes it live.
	PartialResponse bool
	// MaxSeries is the series limit of a select whose context carries
	// none (tsdb.WithSeriesLimit); it must not exceed the nodes'
	// query.max_series, which bounds what their endpoint accepts.
	MaxSeries int
	// MaxBytesPerNode bounds one node's decompressed answer (and the
	// local store's, counted alike); MaxFrameBytes one frame of it;
	// MaxBytesPerRead all the nodes' answers to one select together.
	MaxBytesPerNode int64
	MaxFrameBytes   int
	MaxBytesPerRead int64
	// Timeout bounds one node's answer; the caller's context bounds all.
	// A node past it counts as failed.
	Timeout time.Duration
	// Registerer receives the partial-response counter (nil: none).
	Registerer prometheus.Registerer
	// Aggregate evaluates a pushed-down aggregation over this node's
	// series (pushdown.go); nil: aggregations are not pushed down.
	Aggregate AggregateFunc
	// PushdownMinSeries is how many series an aggregation must read
	// (estimated from this node's share) to be pushed down: below it the
	// fan-out's one round is cheaper than pushdown's two. 0: every
	// aggregation that can be is pushed down.
	PushdownMinSeries int
}

// DefaultFanoutOptions returns the defaults: partial answers allowed,
// 2,000,000 series, 1 GiB per node and 2 GiB per read, 16 MiB per
// frame, 2 minutes per node.
func DefaultFanoutOptions() FanoutOptions {
	return FanoutOptions{
		PartialResponse: true,
		MaxSeries:       2_000_000,
		MaxBytesPerNode: 1 << 30,
		MaxBytesPerRead: 2 << 30,
		MaxFrameBytes:   16 << 20,
		Timeout:         2 * time.Minute,
		// BenchmarkFanoutQuery: pushed down, an aggregation over 3,000
		// series took 20 ms against 12.5 ms through the fan-out; over
		// 72,600, 0.31 s against 0.34 s with a quarter of the bytes.
		PushdownMinSeries: 10_000,
	}
}

// Validate checks the options.
func (o *FanoutOptions) Validate() error {
	switch {
	case o.Self == "":
		return errors.New("ring: fan-out: no self node name")
	case o.Local == nil || o.View == nil || o.Peers == nil:
		return errors.New("ring: fan-out: local store, view and peers are required")
	case o.ReplicationFactor < 1:
		return fmt.Errorf("ring: fan-out: replication factor %d must be at least 1", o.ReplicationFactor)
	case o.MaxSeries < 1 || o.MaxBytesPerNode < 1 || o.MaxFrameBytes < 1 || o.MaxBytesPerRead < 1 || o.Timeout <= 0:
		return errors.New("ring: fan-out: limits must be positive")
	case o.PushdownMinSeries < 0:
		return fmt.Errorf("ring: fan-out: pushdown minimum of %d series is negative", o.PushdownMinSeries)
	}
	return nil
}

// Queryable is a tsdb.Queryable over the whole ring: its queriers ask
// every ACTIVE node of the current snapshot at once (this node's store
// directly, the others through Peers.Select), merge the series with the
// same labels and deduplicate their samples by timestamp (a replica that
// missed samples is filled by the others). An acknowledged sample is on
// at least Quorum(rf) owners, so while at most Quorum(rf)-1 ACTIVE nodes
// fail (1 of 3 with RF 3) the answer is complete and carries no warning;
// past that it carries a warning naming the missing nodes, or fails with
// ErrPartialResponse when partial answers are refused.
//
// Memory: a select holds every node's answer until it has merged them,
// each bounded by MaxBytesPerNode, and the merged series until the
// querier is dropped.
type Queryable struct {
	opts    FanoutOptions // immutable
	partial atomic.Bool
	// wireBytes counts the compressed bytes received from peers.
	wireBytes atomic.Int64
	partials  *prometheus.CounterVec
	pushdowns *prometheus.CounterVec
	rawSeries prometheus.Counter
}

// NewQueryable validates opts (defaults for zero limits) and returns the
// fan-out Queryable.
func NewQueryable(opts FanoutOptions) (*Queryable, error) {
	def := DefaultFanoutOptions()
	if opts.MaxSeries == 0 {
		opts.MaxSeries = def.MaxSeries
	}
	if opts.MaxBytesPerNode == 0 {
		opts.MaxBytesPerNode = def.MaxBytesPerNode
	}
	if opts.MaxFrameBytes == 0 {
		opts.MaxFrameBytes = def.MaxFrameBytes
	}
	if opts.MaxBytesPerRead == 0 {
		opts.MaxBytesPerRead = def.MaxBytesPerRead
	}
	if opts.Timeout == 0 {
		opts.Timeout = def.Timeout
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	f := &Queryable{opts: opts, partials: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "etcdgate_ring_fanout_partial_responses_total",
		Help: "Fan-out reads with more ACTIVE nodes failed than the replication covers, by outcome: warned (answered with a warning) or refused (partial_response=false).",
	}, []string{"outcome"})}
	f.pushdowns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "etcdgate_ring_pushdown_aggregations_total",
		Help: "Aggregations asked to be pushed down to the ring's nodes, by outcome: pushed; small (fewer series than ring.pushdown_min_series: read through the fan-out); declined (read through the fan-out: a node failed between the phases, or too many series differ between replicas).",
	}, []string{"outcome"})
	f.rawSeries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "etcdgate_ring_pushdown_raw_series_total",
		Help: "Series of pushed-down aggregations whose replicas differed, read raw and folded in by the asking node.",
	})
	f.partial.Store(opts.PartialResponse)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(f.partials, f.pushdowns, f.rawSeries)
	}
	f.pushdowns.WithLabelValues("pushed")
	f.pushdowns.WithLabelValues("declined")
	f.pushdowns.WithLabelValues("small")
	f.partials.WithLabelValues("warned")
	f.partials.WithLabelValues("refused")
	return f, nil
}

// SetPartialResponse sets whether partial answers are allowed by
// default (query.partial_response, reloaded live).
func (f *Queryable) SetPartialResponse(allow bool) { f.partial.Store(allow) }

// ReceivedBytes is the compressed bytes received from peers so far.
func (f *Queryable) ReceivedBytes() int64 { return f.wireBytes.Load() }

// Querier returns a querier over [mint, maxt] of the whole ring. It
// holds nothing: every call asks the nodes.
func (f *Queryable) Querier(mint, maxt int64) (tsdb.Querier, error) {
	return &fanoutQuerier{f: f, mint: mint, maxt: maxt}, nil
}

// fanoutQuerier asks the nodes on every call.
type fanoutQuerier struct {
	f          *Queryable // immutable
	mint, maxt int64      // immutable
	keys       keySet     // immutable: nil, or the only series selected (pushdown.go)
}

var _ tsdb.SeriesLister = (*fanoutQuerier)(nil)

func (q *fanoutQuerier) Close() error { return nil }

// Select returns the merged series, sorted by labels.
func (q *fanoutQuerier) Select(ctx context.Context, ms ...*labels.Matcher) tsdb.SeriesSet {
	return q.selectSeries(ctx, true, ms)
}

// SelectUnsorted is Select without the sort.
func (q *fanoutQuerier) SelectUnsorted(ctx context.Context, ms ...*labels.Matcher) tsdb.SeriesSet {
	return q.selectSeries(ctx, false, ms)
}

func (q *fanoutQuerier) selectSeries(ctx context.Context, sorted bool, ms []*labels.Matcher) tsdb.SeriesSet {
	limit := tsdb.SeriesLimit(ctx)
	if limit <= 0 || limit > q.f.opts.MaxSeries {
		limit = q.f.opts.MaxSeries
	}
	req := q.request(SelectSeries, ms, limit, "")
	req.Chunks = true
	req.Keys = q.keys
	results, err := q.f.fanout(ctx, req)
	if err != nil {
		return errSeriesSet{err}
	}
	series, err := mergeSeries(results, limit, sorted, q.mint, q.maxt)
	if err != nil {
		return errSeriesSet{err}
	}
	return &sliceSeriesSet{series: series, i: -1}
}

// ListSeries lists the merged label sets, each once, in no order; each node
// is asked for at most the listing's limit (WithListLimit) or MaxSeries.
func (q *fanoutQuerier) ListSeries(ctx context.Context, fn func(labels.Labels) bool, ms ...*labels.Matcher) error {
	limit := listLimit(ctx)
	if limit <= 0 || limit > q.f.opts.MaxSeries {
		limit = q.f.opts.MaxSeries
	}
	results, err := q.f.fanout(ctx, q.request(SelectLabels, ms, limit, ""))
	if err != nil {
		return err
	}
	series, err := mergeSeries(results, 0, false, q.mint, q.maxt)
	if err != nil {
		return err
	}
	for _, s := range series {
		if !fn(s.lset) {
			break
		}
	}
	return nil
}

// LabelNames returns the sorted union of the nodes' label names.
func (q *fanoutQuerier) LabelNames(ctx context.Context, ms ...*labels.Matcher) ([]string, error) {
	return q.strings(ctx, q.request(SelectNames, ms, tsdb.SeriesLimit(ctx), ""))
}

// LabelValues returns the sorted union of the nodes' values of name.
func (q *fanoutQuerier) LabelValues(ctx context.Context, name string, ms ...*labels.Matcher) ([]string, error) {
	return q.strings(ctx, q.request(SelectValues, ms, tsdb.SeriesLimit(ctx), name))
}

func (q *fanoutQuerier) strings(ctx context.Context, req SelectRequest) ([]string, error) {
	if req.Limit > q.f.opts.MaxSeries {
		req.Limit = q.f.opts.MaxSeries
	}
	results, err := q.f.fanout(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range results {
		if r != nil {
			out = append(out, r.Strings...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (q *fanoutQuerier) request(mode string, ms []*labels.Matcher, limit int, name string) SelectRequest {
	return SelectRequest{Mode: mode, Matchers: ms, Mint: q.mint, Maxt: q.maxt, Limit: max(limit, 0), Name: name}
}

// fanout asks every ACTIVE node of the current snapshot at once (this
// node's store directly) and returns their answers (nil for a node that
// failed). A failure that is the request's (its context, a series
// limit, this node's own store) fails the read; a peer that cannot
// answer is a missing node, judged against the replication factor.
func (f *Queryable) fanout(ctx context.Context, req SelectRequest) ([]*SelectResult, error) {
	return f.fanoutTo(ctx, f.activeNodes(), req, nil)
}

// fanoutTo is fanout to nodes; results[i] is nodes[i]'s answer. own,
// when not nil, is this node's answer, already read.
func (f *Queryable) fanoutTo(ctx context.Context, nodes []*Node, req SelectRequest, own *SelectResult) ([]*SelectResult, error) {
	shared := &atomic.Int64{}
	lim := SelectLimits{MaxFrameBytes: f.opts.MaxFrameBytes, MaxBytes: f.opts.MaxBytesPerNode,
		MaxSeries: max(req.Limit, 0) + maxFrameSlack(req), MaxStrings: 1 << 30,
		Shared: shared, SharedMax: f.opts.MaxBytesPerRead}
	if req.Mode == SelectDigests {
		req.Limit = f.opts.MaxSeries
		lim.MaxSeries = req.Limit
	}
	if req.Mode == SelectSeries || req.Mode == SelectLabels || req.Mode == SelectDigests {
		lim.MaxStrings = 0
	} else {
		lim.MaxSeries = 0
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]*SelectResult, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			if n.Name == f.opts.Self && own != nil {
				results[i] = own
				return
			}
			if n.Name == f.opts.Self {
				results[i], errs[i] = f.local(fctx, req, shared)
				if errs[i] != nil {
					cancel() // this node's failure fails the read
				}
				return
			}
			pctx, pcancel := context.WithTimeout(fctx, f.opts.Timeout)
			res, err := f.opts.Peers.Select(pctx, n, req, lim)
			pcancel()
			if res != nil {
				f.wireBytes.Add(res.WireBytes)
			}
			results[i], errs[i] = res, err
			if errors.Is(err, tsdb.ErrTooManySeries) || errors.Is(err, ErrReadTooLarge) {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if errors.Is(err, tsdb.ErrTooManySeries) || errors.Is(err, ErrReadTooLarge) {
			return nil, err
		}
	}
	var failed []string
	var firstErr error
	for i, n := range nodes {
		err := errs[i]
		if err == nil {
			continue
		}
		stopped := fctx.Err() != nil && errors.Is(err, context.Canceled)
		if n.Name == f.opts.Self && !stopped {
			return nil, err
		}
		if stopped {
			continue // stopped because another node failed the read
		}
		results[i] = nil
		failed = append(failed, n.Name)
		if firstErr == nil {
			firstErr = err
		}
	}
	if err := f.judge(ctx, len(nodes), failed, firstErr); err != nil {
		return nil, err
	}
	return results, nil
}

// maxFrameSlack is how many series frames past the limit a node's answer
// may hold: a long series comes as several frames.
func maxFrameSlack(req SelectRequest) int {
	if req.Mode != SelectSeries {
		return 1
	}
	return 1 << 20
}

// judge decides whether an answer with failed nodes missing is complete
// (at most Quorum(rf)-1 of them), partial with a warning, or refused.
func (f *Queryable) judge(ctx context.Context, active int, failed []string, firstErr error) error {
	rf := min(f.opts.ReplicationFactor, active)
	tolerated := Quorum(rf) - 1
	if len(failed) <= tolerated {
		return nil
	}
	msg := fmt.Sprintf("partial response: %d of %d ACTIVE ring nodes did not answer (%s; first error: %v); "+
		"with replication factor %d the answer is complete only while at most %d fail, so some series may be missing",
		len(failed), active, strings.Join(failed, ", "), firstErr, f.opts.ReplicationFactor, tolerated)
	if !partialAllowed(ctx, f.partial.Load()) {
		f.partials.WithLabelValues("refused").Inc()
		return fmt.Errorf("%w (partial_response=false): %s", ErrPartialResponse, msg)
	}
	f.partials.WithLabelValues("warned").Inc()
	addWarning(ctx, msg)
	return nil
}

// local answers req from this node's store, within the same byte bound
// as a peer's answer.
func (f *Queryable) local(ctx context.Context, req SelectRequest, shared *atomic.Int64) (*SelectResult, error) {
	q, err := f.opts.Local.Querier(req.Mint, req.Maxt)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	if req.Mode == SelectSeries && req.Limit <= 0 {
		req.Limit = f.opts.MaxSeries
	}
	if (req.Mode == SelectLabels || req.Mode == SelectDigests) && req.Limit <= 0 {
		req.Limit = f.opts.MaxSeries
	}
	sink := &collectSink{maxBytes: f.opts.MaxBytesPerNode, shared: shared, sharedMax: f.opts.MaxBytesPerRead}
	if err := runSelect(ctx, q, req, sink); err != nil {
		return nil, err
	}
	return &sink.res, nil
}

// mergeSeries merges the nodes' series: one per label set, copies with
// the same chunks taken once, others merged by timestamp (equal
// timestamps: the earlier node's value) over [mint, maxt], sorted by
// labels when sorted is set. Series are grouped by the hash of
// their labels, so that the sort, when asked for, sorts the distinct
// series only, not their RF copies. With limit > 0 more distinct series
// than limit fail with tsdb.ErrTooManySeries.
func mergeSeries(results []*SelectResult, limit int, sorted bool, mint, maxt int64) ([]*mergedSeries, error) {
	total := 0
	for _, r := range results {
		if r != nil {
			total += len(r.Series)
		}
	}
	var out []*mergedSeries
	byHash := make(map[uint64]*mergedSeries, total/2)
	var collided map[string]*mergedSeries // series whose hash another holds
	for _, r := range results {
		if r == nil {
			continue
		}
		for i := range r.Series {
			s := &r.Series[i]
			h := s.Labels.Hash()
			m := byHash[h]
			if m != nil && !labels.Equal(m.lset, s.Labels) {
				if collided == nil {
					collided = map[string]*mergedSeries{}
				}
				key := s.Labels.String()
				if m = collided[key]; m == nil {
					m = &mergedSeries{lset: s.Labels, mint: mint, maxt: maxt}
					collided[key] = m
					out = append(out, m)
				}
			} else if m == nil {
				m = &mergedSeries{lset: s.Labels, mint: mint, maxt: maxt}
				byHash[h] = m
				out = append(out, m)
			}
			if err := m.add(s, mint, maxt); err != nil {
				return nil, err
			}
			if limit > 0 && len(out) > limit {
				return nil, fmt.Errorf("%w: the selector matches more than %d series", tsdb.ErrTooManySeries, limit)
			}
		}
	}
	if sorted {
		slices.SortFunc(out, func(a, b *mergedSeries) int { return labels.Compare(a.lset, b.lset) })
	}
	return out, nil
}

// mergeSamples merges two time-ordered sample lists, one sample per
// timestamp (a's on a tie). It returns a itself when b adds nothing.
func mergeSamples(a, b []Sample) []Sample {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	if len(a) == len(b) && a[0].T == b[0].T && a[len(a)-1].T == b[len(b)-1].T && sameTimes(a, b) {
		return a // the common case: replicas that agree
	}
	out := make([]Sample, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].T < b[j].T:
			out = append(out, a[i])
			i++
		case a[i].T > b[j].T:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func sameTimes(a, b []Sample) bool {
	for i := range a {
		if a[i].T != b[i].T {
			return false
		}
	}
	return true
}

// mergedSeries is one series of a fan-out select: its samples, or the
// chunks its copies agreed on.
type mergedSeries struct {
	lset       labels.Labels
	samples    []Sample
	chunks     []tsdb.Chunk
	mint, maxt int64 // the select's range: chunks may hold samples past it
	copies     int   // how many nodes' copies were merged
}

func (s *mergedSeries) Labels() labels.Labels { return s.lset }

func (s *mergedSeries) Iterator(reuse tsdb.Iterator) tsdb.Iterator {
	if s.chunks != nil {
		it, ok := reuse.(*chunkIterator)
		if !ok {
			it = &chunkIterator{}
		}
		it.reset(s.chunks, s.mint, s.maxt)
		return it
	}
	if it, ok := reuse.(*sampleIterator); ok {
		*it = sampleIterator{samples: s.samples, i: -1}
		return it
	}
	return &sampleIterator{samples: s.samples, i: -1}
}

// sampleIterator walks a slice of samples.
type sampleIterator struct {
	samples []Sample
	i       int
}

func (it *sampleIterator) Next() bool {
	if it.i < len(it.samples) {
		it.i++
	}
	return it.i < len(it.samples)
}

func (it *sampleIterator) SeekTo(t int64) bool {
	if it.i < 0 {
		it.i = 0
	}
	if it.i < len(it.samples) && it.samples[it.i].T >= t {
		return true
	}
	j, _ := slices.BinarySearchFunc(it.samples[min(it.i, len(it.samples)):], t, func(s Sample, t int64) int {
		switch {
		case s.T < t:
			return -1
		case s.T > t:
			return 1
		}
		return 0
	})
	it.i += j
	return it.i < len(it.samples)
}

func (it *sampleIterator) At() (int64, float64) {
	s := it.samples[it.i]
	return s.T, s.V
}

func (it *sampleIterator) Err() error { return nil }

// sliceSeriesSet iterates over merged series.
type sliceSeriesSet struct {
	series []*mergedSeries
	i      int
}

func (s *sliceSeriesSet) Next() bool {
	if s.i < len(s.series) {
		s.i++
	}
	return s.i < len(s.series)
}

func (s *sliceSeriesSet) At() tsdb.Series { return s.series[s.i] }
func (s *sliceSeriesSet) Err() error      { return nil }

// errSeriesSet is a failed select.
type errSeriesSet struct{ err error }

func (s errSeriesSet) Next() bool      { return false }
func (s errSeriesSet) At() tsdb.Series { return nil }
func (s errSeriesSet) Err() error      { return s.err }
