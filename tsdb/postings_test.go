package tsdb

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestPostingsForMatchersAgainstBruteForce checks the index against the
// definition: a series matches when every matcher matches its value of
// the label ("" when absent).
func TestPostingsForMatchersAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := newTestHead(t, nil)
	var all []labels.Labels
	for range 300 {
		ls := randomLabelSet(r)
		s, created, _ := h.getOrCreate(ls)
		if created {
			all = append(all, ls)
		}
		_ = s
	}
	types := []labels.MatchType{labels.MatchEqual, labels.MatchNotEqual, labels.MatchRegexp, labels.MatchNotRegexp}
	values := []string{"", "v0", "v1", "v[12]", "v.*", ".*", ".+", "nope", "v0|"}
	for range 2000 {
		var ms []*labels.Matcher
		for range 1 + r.IntN(3) {
			name := []string{"a", "b", "c", "__name__", "missing"}[r.IntN(5)]
			typ := types[r.IntN(len(types))]
			val := values[r.IntN(len(values))]
			if name == "__name__" && r.IntN(2) == 0 {
				val = fmt.Sprintf("m%d", r.IntN(3))
			}
			ms = append(ms, labels.MustNewMatcher(typ, name, val))
		}
		var want []string
		for _, ls := range all {
			ok := true
			for _, m := range ms {
				ok = ok && m.Matches(ls.Get(m.Name))
			}
			if ok {
				want = append(want, ls.String())
			}
		}
		var got []string
		for _, ref := range h.index.forMatchers(ms) {
			got = append(got, h.symbols.labels(new(labels.ScratchBuilder), h.series.getByRef(ref).syms.refs()).String())
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("matchers %v: got %d series %v, want %d %v", ms, len(got), got, len(want), want)
		}
	}
}

func TestSortedSetOperations(t *testing.T) {
	a := []SeriesRef{1, 3, 5, 7, 9}
	if got := intersectSorted(slices.Clone(a), []SeriesRef{2, 3, 4, 9, 10}); !slices.Equal(got, []SeriesRef{3, 9}) {
		t.Fatalf("intersect %v", got)
	}
	if got := withoutSorted(slices.Clone(a), []SeriesRef{1, 4, 9}); !slices.Equal(got, []SeriesRef{3, 5, 7}) {
		t.Fatalf("without %v", got)
	}
}

// TestPostingsRecentListDeleted: a pair whose list emptied and was
// deleted gets a new list when a series brings it back, found by
// matchers, rather than the deleted one recent remembered; and pairs at
// a position that changes from series to series land in their own lists.
func TestPostingsRecentListDeleted(t *testing.T) {
	st := newSymbolTable()
	p := newPostings()
	mk := func(ref SeriesRef, ls labels.Labels) *memSeries {
		s := newMemSeries(ref, st.internSyms(ls))
		p.add(ref, st.load(), s.syms.refs())
		return s
	}
	a1 := labels.FromStrings("a", "1", "b", "x")
	s1 := mk(1, a1)
	p.deleteSeries(st.load(), []*memSeries{s1})
	mk(2, a1)
	mk(3, labels.FromStrings("a", "2", "b", "x"))
	mk(4, a1)
	for _, c := range []struct {
		ms   []*labels.Matcher
		want []SeriesRef
	}{
		{[]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "a", "1")}, []SeriesRef{2, 4}},
		{[]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "a", "2")}, []SeriesRef{3}},
		{[]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "b", "x")}, []SeriesRef{2, 3, 4}},
	} {
		if got := p.forMatchers(c.ms); !slices.Equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.ms, got, c.want)
		}
	}
}
