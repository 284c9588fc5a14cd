package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
)

func newTestHead(t testing.TB, mod func(*HeadOptions)) *Head {
	t.Helper()
	opts := DefaultHeadOptions()
	opts.StripeSize = 64
	if mod != nil {
		mod(&opts)
	}
	h, err := NewHead(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func appendOne(t testing.TB, h Appendable, lset labels.Labels, ts int64, v float64) error {
	t.Helper()
	app := h.Appender()
	err := app.Append(lset, ts, v)
	if cerr := app.Commit(); cerr != nil {
		t.Fatal(cerr)
	}
	return err
}

// selectAll returns every series matching ms in [mint, maxt] as
// label string → samples.
func selectAll(t testing.TB, h Queryable, mint, maxt int64, ms ...*labels.Matcher) map[string][]sample {
	t.Helper()
	q, err := h.Querier(mint, maxt)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]sample{}
	set := q.Select(context.Background(), ms...)
	var it Iterator
	prev := labels.EmptyLabels()
	for set.Next() {
		s := set.At()
		if labels.Compare(prev, s.Labels()) >= 0 && !prev.IsEmpty() {
			t.Fatalf("series not sorted: %s before %s", prev, s.Labels())
		}
		prev = s.Labels()
		it = s.Iterator(it)
		var samples []sample
		for it.Next() {
			ts, v := it.At()
			samples = append(samples, sample{ts, v})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		out[s.Labels().String()] = samples
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHeadAppendSelectAcrossChunks(t *testing.T) {
	h := newTestHead(t, nil)
	lset := labels.FromStrings("__name__", "etcd_server_has_leader", "cluster", "a")
	const n = 1000 // several chunks of 120 samples
	for i := range n {
		if err := appendOne(t, h, lset, int64(i)*15000, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := selectAll(t, h, 0, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "cluster", "a"))
	samples := got[lset.String()]
	if len(samples) != n {
		t.Fatalf("got %d samples, want %d", len(samples), n)
	}
	for i, s := range samples {
		if s.t != int64(i)*15000 || s.v != float64(i) {
			t.Fatalf("sample %d = %v", i, s)
		}
	}
	// A range inside the data is trimmed exactly.
	got = selectAll(t, h, 150*15000, 400*15000, labels.MustNewMatcher(labels.MatchEqual, "cluster", "a"))
	if s := got[lset.String()]; len(s) != 251 || s[0].t != 150*15000 || s[250].t != 400*15000 {
		t.Fatalf("trimmed range: %d samples, first %v", len(s), s[0])
	}
	if h.NumSeries() != 1 || h.MinTime() != 0 || h.MaxTime() != (n-1)*15000 {
		t.Fatalf("series %d, range [%d, %d]", h.NumSeries(), h.MinTime(), h.MaxTime())
	}
}

func TestHeadSampleOrdering(t *testing.T) {
	lset := labels.FromStrings("__name__", "m")
	min := int64(time.Minute / time.Millisecond)
	cases := []struct {
		name    string
		window  time.Duration
		ts      []int64
		vs      []float64
		errs    []error
		want    []int64
		wantVal map[int64]float64
	}{
		{
			name: "in order", window: 10 * time.Minute,
			ts: []int64{1, 2, 3}, vs: []float64{1, 2, 3}, errs: []error{nil, nil, nil},
			want: []int64{1, 2, 3},
		},
		{
			name: "out of order within window is kept in time order", window: 10 * time.Minute,
			ts: []int64{10 * min, 5 * min, 7 * min, 11 * min}, vs: []float64{10, 5, 7, 11}, errs: []error{nil, nil, nil, nil},
			want: []int64{5 * min, 7 * min, 10 * min, 11 * min},
		},
		{
			name: "too old for the window", window: 10 * time.Minute,
			ts: []int64{20 * min, 9 * min, 10 * min}, vs: []float64{1, 2, 3}, errs: []error{nil, ErrTooOldSample, nil},
			want: []int64{10 * min, 20 * min},
		},
		{
			name: "out of order disabled", window: 0,
			ts: []int64{20, 10}, vs: []float64{1, 2}, errs: []error{nil, ErrOutOfOrderSample},
			want: []int64{20},
		},
		{
			name: "duplicate same value ignored", window: 10 * time.Minute,
			ts: []int64{5, 5, 3, 3}, vs: []float64{1, 1, 7, 7}, errs: []error{nil, nil, nil, nil},
			want: []int64{3, 5},
		},
		{
			name: "duplicate timestamp different value refused", window: 10 * time.Minute,
			ts: []int64{5, 5, 3, 3}, vs: []float64{1, 2, 7, 8}, errs: []error{nil, ErrDuplicateSampleForTimestamp, nil, ErrDuplicateSampleForTimestamp},
			want: []int64{3, 5}, wantVal: map[int64]float64{5: 1, 3: 7},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newTestHead(t, func(o *HeadOptions) { o.OutOfOrderWindow = c.window })
			for i := range c.ts {
				err := appendOne(t, h, lset, c.ts[i], c.vs[i])
				if !errors.Is(err, c.errs[i]) || (err != nil) != (c.errs[i] != nil) {
					t.Fatalf("append %d: err %v, want %v", i, err, c.errs[i])
				}
			}
			got := selectAll(t, h, math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))[lset.String()]
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want timestamps %v", got, c.want)
			}
			for i := range got {
				if got[i].t != c.want[i] {
					t.Fatalf("got %v, want timestamps %v", got, c.want)
				}
				if v, ok := c.wantVal[got[i].t]; ok && v != got[i].v {
					t.Fatalf("value at %d = %v, want %v", got[i].t, got[i].v, v)
				}
			}
		})
	}
}

// TestHeadOutOfOrderSpillsToChunks appends more out-of-order samples than
// the buffer holds, interleaved with in-order ones, and checks the merge.
func TestHeadOutOfOrderSpillsToChunks(t *testing.T) {
	h := newTestHead(t, func(o *HeadOptions) { o.OutOfOrderCapacity = 4; o.ChunkSamples = 8 })
	lset := labels.FromStrings("__name__", "m")
	// Even timestamps in order first, then the odd ones out of order.
	for ts := int64(0); ts < 200; ts += 2 {
		if err := appendOne(t, h, lset, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	for ts := int64(199); ts > 0; ts -= 2 {
		if err := appendOne(t, h, lset, ts, float64(ts)); err != nil {
			t.Fatalf("ts %d: %v", ts, err)
		}
	}
	// Re-sending an out-of-order sample that now sits in a chunk is a duplicate.
	if err := appendOne(t, h, lset, 101, 101); err != nil {
		t.Fatalf("duplicate of chunked out-of-order sample: %v", err)
	}
	if err := appendOne(t, h, lset, 101, 5); !errors.Is(err, ErrDuplicateSampleForTimestamp) {
		t.Fatalf("conflicting out-of-order sample: %v", err)
	}
	got := selectAll(t, h, 50, 150, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))[lset.String()]
	if len(got) != 101 {
		t.Fatalf("got %d samples, want 101", len(got))
	}
	for i, s := range got {
		if s.t != int64(50+i) || s.v != float64(50+i) {
			t.Fatalf("sample %d = %v", i, s)
		}
	}
}

func TestHeadBatchWithSeveralSamplesOfOneSeries(t *testing.T) {
	h := newTestHead(t, func(o *HeadOptions) { o.OutOfOrderWindow = 0 })
	lset := labels.FromStrings("__name__", "m")
	app := h.Appender()
	for _, ts := range []int64{1, 2, 3} {
		if err := app.Append(lset, ts, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Append(lset, 3, 1); err != nil {
		t.Fatalf("duplicate within batch: %v", err)
	}
	if err := app.Append(lset, 2, 1); !errors.Is(err, ErrOutOfOrderSample) {
		t.Fatalf("older sample within batch: %v", err)
	}
	if err := app.Append(lset, 3, 2); !errors.Is(err, ErrDuplicateSampleForTimestamp) {
		t.Fatalf("conflict within batch: %v", err)
	}
	if err := app.Append(lset, 0, 1); !errors.Is(err, ErrOutOfOrderSample) {
		t.Fatalf("out of order within batch: %v", err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := selectAll(t, h, 0, 10, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))[lset.String()]; len(got) != 3 {
		t.Fatalf("got %v", got)
	}
}

func TestHeadRollbackDropsSamples(t *testing.T) {
	h := newTestHead(t, nil)
	app := h.Appender()
	if err := app.Append(labels.FromStrings("__name__", "m"), 1, 1); err != nil {
		t.Fatal(err)
	}
	app.Rollback()
	if got := selectAll(t, h, 0, 10, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")); len(got) != 0 {
		t.Fatalf("rolled back samples visible: %v", got)
	}
}

func TestHeadKeepsStaleMarkers(t *testing.T) {
	h := newTestHead(t, nil)
	lset := labels.FromStrings("__name__", "up")
	if err := appendOne(t, h, lset, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(t, h, lset, 2, math.Float64frombits(value.StaleNaN)); err != nil {
		t.Fatal(err)
	}
	// A resent stale marker is a duplicate, not a conflict: NaNs compare by bits.
	if err := appendOne(t, h, lset, 2, math.Float64frombits(value.StaleNaN)); err != nil {
		t.Fatal(err)
	}
	got := selectAll(t, h, 0, 10, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))[lset.String()]
	if len(got) != 2 || !value.IsStaleNaN(got[1].v) {
		t.Fatalf("stale marker lost: %v", got)
	}
}

func TestStripeSeriesHashCollision(t *testing.T) {
	st := newSymbolTable()
	s := newStripeSeries(4)
	a := labels.FromStrings("__name__", "a")
	b := labels.FromStrings("__name__", "b")
	const hash = 42 // both label sets forced onto one hash
	mk := func(ref SeriesRef, lset labels.Labels) func() *memSeries {
		return func() *memSeries { return newMemSeries(ref, st.internSyms(lset)) }
	}
	sa, created := s.getOrSet(hash, a, st, mk(1, a))
	if !created {
		t.Fatal("a not created")
	}
	sb, created := s.getOrSet(hash, b, st, mk(2, b))
	if !created || sb == sa {
		t.Fatal("colliding b resolved to a")
	}
	if got := s.getByHash(hash, a, st); got != sa {
		t.Fatal("lookup of a after collision failed")
	}
	if got := s.getByHash(hash, b, st); got != sb {
		t.Fatal("lookup of b after collision failed")
	}
	if again, created := s.getOrSet(hash, b, st, mk(3, b)); created || again != sb {
		t.Fatal("b created twice")
	}
}

func TestHeadLabelNamesAndValues(t *testing.T) {
	h := newTestHead(t, nil)
	for i, ls := range []labels.Labels{
		labels.FromStrings("__name__", "up", "job", "etcd", "instance", "a"),
		labels.FromStrings("__name__", "up", "job", "apiserver", "zone", "z1"),
		labels.FromStrings("__name__", "etcd_server_has_leader", "job", "etcd", "instance", "b"),
	} {
		if err := appendOne(t, h, ls, int64(i+1)*1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	q, _ := h.Querier(0, 10000)
	ctx := context.Background()
	names, _ := q.LabelNames(ctx)
	if fmt.Sprint(names) != "[__name__ instance job zone]" {
		t.Fatalf("names %v", names)
	}
	names, _ = q.LabelNames(ctx, labels.MustNewMatcher(labels.MatchEqual, "job", "etcd"))
	if fmt.Sprint(names) != "[__name__ instance job]" {
		t.Fatalf("names of job=etcd %v", names)
	}
	values, _ := q.LabelValues(ctx, "job")
	if fmt.Sprint(values) != "[apiserver etcd]" {
		t.Fatalf("values %v", values)
	}
	values, _ = q.LabelValues(ctx, "instance", labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
	if fmt.Sprint(values) != "[a]" {
		t.Fatalf("instance values of up %v", values)
	}
	// Only the series with a sample in [2500, 10000] remains.
	q, _ = h.Querier(2500, 10000)
	values, _ = q.LabelValues(ctx, "instance", labels.MustNewMatcher(labels.MatchRegexp, "job", ".+"))
	if fmt.Sprint(values) != "[b]" {
		t.Fatalf("time-filtered values %v", values)
	}
	q, _ = h.Querier(20000, 30000)
	if names, _ := q.LabelNames(ctx); len(names) != 0 {
		t.Fatalf("names outside the head's range: %v", names)
	}
}

func TestHeadStats(t *testing.T) {
	h := newTestHead(t, nil)
	for i := range 5 {
		ls := labels.FromStrings("__name__", "up", "instance", fmt.Sprint(i))
		if err := appendOne(t, h, ls, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := appendOne(t, h, labels.FromStrings("__name__", "go_goroutines", "instance", "0"), 1, 1); err != nil {
		t.Fatal(err)
	}
	st := h.Stats(10)
	if st.NumSeries != 6 || st.NumLabelPairs != 7 {
		t.Fatalf("series %d pairs %d", st.NumSeries, st.NumLabelPairs)
	}
	if st.SeriesCountByMetricName[0] != (Stat{"up", 5}) || st.SeriesCountByMetricName[1] != (Stat{"go_goroutines", 1}) {
		t.Fatalf("by metric %v", st.SeriesCountByMetricName)
	}
	if st.LabelValueCountByLabelName[0] != (Stat{"instance", 5}) {
		t.Fatalf("value counts %v", st.LabelValueCountByLabelName)
	}
	if st.SeriesCountByLabelValuePair[0] != (Stat{"__name__=up", 5}) {
		t.Fatalf("pairs %v", st.SeriesCountByLabelValuePair)
	}
	if len(h.Stats(1).SeriesCountByLabelValuePair) != 1 {
		t.Fatal("limit not applied")
	}
}

// TestHeadConcurrentWritersAndReaders runs writers on overlapping series
// and readers at once; run under -race it checks the locking, and the
// final counts check that no sample was lost.
func TestHeadConcurrentWritersAndReaders(t *testing.T) {
	h := newTestHead(t, nil)
	const writers, series, samples = 4, 50, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range samples {
				app := h.Appender()
				for s := range series {
					ls := labels.FromStrings("__name__", "m", "series", fmt.Sprint(s), "writer", fmt.Sprint(w))
					if err := app.Append(ls, int64(i), float64(i)); err != nil {
						t.Error(err)
					}
				}
				if err := app.Commit(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				selectAll(t, h, 0, samples, labels.MustNewMatcher(labels.MatchRegexp, "series", "1.*"))
				q, _ := h.Querier(0, samples)
				if _, err := q.LabelValues(context.Background(), "series"); err != nil {
					t.Error(err)
				}
				h.Stats(5)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	got := selectAll(t, h, 0, samples, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if len(got) != writers*series || h.NumSeries() != writers*series {
		t.Fatalf("%d series selected, %d in head, want %d", len(got), h.NumSeries(), writers*series)
	}
	for ls, s := range got {
		if len(s) != samples {
			t.Fatalf("%s: %d samples, want %d", ls, len(s), samples)
		}
	}
}

func TestChunksIteratorSeek(t *testing.T) {
	h := newTestHead(t, func(o *HeadOptions) { o.ChunkSamples = 10 })
	lset := labels.FromStrings("__name__", "m")
	for ts := int64(0); ts < 100; ts++ {
		if err := appendOne(t, h, lset, ts*10, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	q, _ := h.Querier(0, 1000)
	set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if !set.Next() {
		t.Fatal("no series")
	}
	it := set.At().Iterator(nil)
	for _, c := range []struct{ seek, want int64 }{{5, 10}, {10, 10}, {0, 10}, {455, 460}, {990, 990}} {
		if !it.SeekTo(c.seek) {
			t.Fatalf("SeekTo(%d) found nothing", c.seek)
		}
		if ts, _ := it.At(); ts != c.want {
			t.Fatalf("SeekTo(%d) at %d, want %d", c.seek, ts, c.want)
		}
	}
	if it.SeekTo(991) {
		t.Fatal("seek past the end found a sample")
	}
}

func TestHeadSelectHonoursCancellation(t *testing.T) {
	h := newTestHead(t, nil)
	for i := range 3000 {
		if err := appendOne(t, h, labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q, _ := h.Querier(0, 10)
	set := q.Select(ctx, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	if set.Next() || !errors.Is(set.Err(), context.Canceled) {
		t.Fatalf("canceled select: err %v", set.Err())
	}
}

// randomLabelSet draws from small vocabularies so that matchers hit.
func randomLabelSet(r *rand.Rand) labels.Labels {
	b := labels.NewScratchBuilder(4)
	b.Add("__name__", fmt.Sprintf("m%d", r.IntN(3)))
	for _, name := range []string{"a", "b", "c"} {
		if r.IntN(3) > 0 {
			b.Add(name, fmt.Sprintf("v%d", r.IntN(4)))
		}
	}
	b.Sort()
	return b.Labels()
}

func TestHeadAppendRef(t *testing.T) {
	h := newTestHead(t, nil)
	lset := labels.FromStrings("__name__", "m")
	app := h.Appender()
	ref, err := app.AppendSeries(lset, 1, 1)
	if err != nil || ref == 0 {
		t.Fatal(ref, err)
	}
	if ok, err := app.AppendRef(ref, 2, 2); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := app.AppendRef(ref, 2, 3); !ok || !errors.Is(err, ErrDuplicateSampleForTimestamp) {
		t.Fatalf("conflicting sample by ref: %v %v", ok, err)
	}
	if ok, _ := app.AppendRef(ref+100, 3, 3); ok {
		t.Fatal("unknown ref accepted")
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := selectAll(t, h, 0, 10, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))[lset.String()]; len(got) != 2 {
		t.Fatalf("got %v", got)
	}
}

// TestHeadLookup: Lookup finds stored series only, AppendRef after it
// appends to the series of the ref it is given (not merely the last one
// looked up), and a series removed after the lookup is refused by ref.
func TestHeadLookup(t *testing.T) {
	h := newTestHead(t, nil)
	a, b := labels.FromStrings("__name__", "a"), labels.FromStrings("__name__", "b")
	app := h.Appender()
	pairs := func(ls labels.Labels) []labels.Label {
		var out []labels.Label
		ls.Range(func(l labels.Label) { out = append(out, l) })
		return out
	}
	if ref := app.Lookup(a.Hash(), pairs(a)); ref != 0 {
		t.Fatalf("Lookup of a new series: %d", ref)
	}
	refA, _ := app.AppendSeries(a, 1, 1)
	refB, _ := app.AppendSeries(b, 1, 1)
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = h.Appender()
	if got := app.Lookup(a.Hash(), pairs(a)); got != refA {
		t.Fatalf("Lookup(a) = %d, want %d", got, refA)
	}
	if ok, err := app.AppendRef(refB, 2, 2); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got := app.Lookup(b.Hash(), pairs(b)); got != refB {
		t.Fatalf("Lookup(b) = %d, want %d", got, refB)
	}
	s := h.series.getByRef(refB)
	s.mu.Lock()
	s.deleted = true // as retention does, after the lookup
	s.mu.Unlock()
	if ok, _ := app.AppendRef(refB, 3, 3); ok {
		t.Fatal("a removed series took a sample by ref")
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	got := selectAll(t, h, 0, 10, labels.MustNewMatcher(labels.MatchRegexp, "__name__", "a|b"))
	if len(got[a.String()]) != 1 || len(got[b.String()]) != 2 {
		t.Fatalf("samples: %v", got)
	}
}

// TestAppenderPoolDropsLargeBatches: a pooled appender that served a
// batch of many series does not keep its buffers, whose capacity every
// later commit would clear; one that served a small batch keeps them.
func TestAppenderPoolDropsLargeBatches(t *testing.T) {
	h := newTestHead(t, nil)
	indexOf := func(a *headAppender) *uint32 { return unsafe.SliceData(a.taken.index) }
	for _, c := range []struct {
		series int
		kept   bool
	}{{10, true}, {pooledAppenderSeries + 1, false}} {
		a := h.Appender().(*headAppender)
		for i := range c.series {
			if err := a.Append(labels.FromStrings("__name__", "m", "i", strconv.Itoa(i)), 1000, 1); err != nil {
				t.Fatal(err)
			}
		}
		index := indexOf(a)
		h.appenders.put(a) // as Commit does, without sync.Pool's choice of what to return
		a.head = h
		if kept := indexOf(a) == index; kept != c.kept || len(a.taken.series) != 0 || len(a.samples) != 0 {
			t.Errorf("%d series: index kept %v, want %v; %d series and %d samples left", c.series, kept, c.kept, len(a.taken.series), len(a.samples))
		}
		if c.kept && slices.ContainsFunc(a.taken.series[:cap(a.taken.series)], func(s *memSeries) bool { return s != nil }) {
			t.Errorf("%d series: the pooled appender keeps series alive", c.series)
		}
		if c.kept && slices.ContainsFunc(a.taken.index, func(k uint32) bool { return k != 0 }) {
			t.Errorf("%d series: the pooled appender's index is not cleared", c.series)
		}
		if !c.kept && (cap(a.samples) != 0 || cap(a.taken.index) != 0) {
			t.Errorf("%d series: the pooled appender keeps room for %d samples, %d index slots", c.series, cap(a.samples), cap(a.taken.index))
		}
	}
}

// TestLookupComparesEveryPair looks up label pairs under the hash of a
// stored series, as a hash collision would: only the exact pairs find it,
// not a prefix, an extension or another value.
func TestLookupComparesEveryPair(t *testing.T) {
	h := newTestHead(t, nil)
	stored := labels.FromStrings("__name__", "up", "instance", "a:1", "job", "etcd")
	app := h.Appender()
	ref, err := app.AppendSeries(stored, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	l := func(kv ...string) []labels.Label {
		var out []labels.Label
		for i := 0; i < len(kv); i += 2 {
			out = append(out, labels.Label{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	app = h.Appender()
	defer app.Rollback()
	for _, c := range []struct {
		name  string
		pairs []labels.Label
		want  SeriesRef
	}{
		{"exact", l("__name__", "up", "instance", "a:1", "job", "etcd"), ref},
		{"prefix", l("__name__", "up", "instance", "a:1"), 0},
		{"extension", l("__name__", "up", "instance", "a:1", "job", "etcd", "zone", "z"), 0},
		{"other value", l("__name__", "up", "instance", "a:2", "job", "etcd"), 0},
		{"other name", l("__name__", "up", "instancf", "a:1", "job", "etcd"), 0},
		{"none", nil, 0},
	} {
		if got := app.Lookup(stored.Hash(), c.pairs); got != c.want {
			t.Errorf("%s: Lookup = %d, want %d", c.name, got, c.want)
		}
	}
}
