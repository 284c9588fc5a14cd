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
			got = append(got, h.symbols.labels(new(labels.ScratchBuilder), h.series.getByRef(ref).syms).String())
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
