package tsdb

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPostingListAgainstSet drives lists with appends, late refs (below
// the largest), duplicates and removals, and checks each against a plain
// set after every step: contents, length, and intersections with sorted
// candidate lists, which exercise the skips.
func TestPostingListAgainstSet(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for round := range 40 {
		var l postingList
		set := map[SeriesRef]bool{}
		next := SeriesRef(r.IntN(3))
		steps := 50 + r.IntN(3000)
		for step := range steps {
			switch op := r.IntN(100); {
			case op < 70: // append, with gaps from 1 to far beyond a byte
				next += SeriesRef(1 + r.IntN([]int{1, 4, 300, 1 << 20}[r.IntN(4)]))
				l.add(next)
				set[next] = true
			case op < 90: // a late ref, maybe one already there
				if next == 0 {
					continue
				}
				ref := SeriesRef(r.Uint64N(uint64(next)))
				l.add(ref)
				set[ref] = true
			case op < 97: // remove a few
				var drop []SeriesRef
				for ref := range set {
					if r.IntN(8) == 0 {
						drop = append(drop, ref)
					}
				}
				drop = append(drop, next+5) // absent refs are ignored
				slices.Sort(drop)
				l.repack(drop)
				for _, ref := range drop {
					delete(set, ref)
				}
			default:
				l.clip()
			}
			if step%97 == 0 || step == steps-1 {
				checkPostingList(t, r, &l, set)
			}
		}
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
}

func checkPostingList(t *testing.T, r *rand.Rand, l *postingList, set map[SeriesRef]bool) {
	t.Helper()
	want := make([]SeriesRef, 0, len(set))
	for ref := range set {
		want = append(want, ref)
	}
	slices.Sort(want)
	if got := l.appendTo([]SeriesRef{42}); !slices.Equal(got[1:], want) || got[0] != 42 {
		t.Fatalf("list holds %d refs %v, want %d %v", len(got)-1, brief(got[1:]), len(want), brief(want))
	}
	if l.len() != len(want) {
		t.Fatalf("len %d, want %d", l.len(), len(want))
	}
	// Candidates: some refs of the list, some around them, some beyond.
	var cand []SeriesRef
	for _, ref := range want {
		if r.IntN(3) == 0 {
			cand = append(cand, ref)
		}
		if r.IntN(5) == 0 {
			cand = append(cand, ref+1)
		}
	}
	cand = append(cand, 0, SeriesRef(1)<<62)
	slices.Sort(cand)
	cand = slices.Compact(cand)
	wantI := intersectSorted(slices.Clone(cand), want)
	if got := l.intersect(slices.Clone(cand)); !slices.Equal(got, wantI) {
		t.Fatalf("intersect of %d candidates: got %v, want %v", len(cand), brief(got), brief(wantI))
	}
}

// TestPostingListSeekAcrossSkips intersects a dense list with single refs
// at and around every skip boundary, from a fresh cursor and from one
// that has moved.
func TestPostingListSeekAcrossSkips(t *testing.T) {
	var refs []SeriesRef
	for i := range 5*postingSkipEvery + 3 {
		refs = append(refs, SeriesRef(10+3*i))
	}
	l := newPostingList(refs)
	if len(l.skips) != 5 {
		t.Fatalf("%d skips, want 5", len(l.skips))
	}
	for i, ref := range refs {
		for _, c := range [][]SeriesRef{{ref}, {ref - 1, ref}, {refs[0], ref}, {ref, ref + 1}} {
			c = slices.Compact(c)
			want := intersectSorted(slices.Clone(c), refs)
			if got := l.intersect(slices.Clone(c)); !slices.Equal(got, want) {
				t.Fatalf("ref #%d: intersect %v = %v, want %v", i, c, got, want)
			}
		}
	}
	if got := l.intersect([]SeriesRef{refs[len(refs)-1] + 1}); len(got) != 0 {
		t.Fatalf("past the end: %v", got)
	}
}

// TestPostingListSize checks the point of packing: a list of dense refs
// costs a byte or two a ref, against eight in a []SeriesRef.
func TestPostingListSize(t *testing.T) {
	var l postingList
	for ref := SeriesRef(1); ref <= 1_000_000; ref++ {
		l.add(ref)
	}
	l.clip()
	if perRef := float64(l.bytes()) / 1e6; perRef > 1.5 {
		t.Fatalf("%.2f bytes a ref, want ≤ 1.5", perRef)
	}
	var sparse postingList
	for i := range 100_000 {
		sparse.add(SeriesRef(1 + i*1830)) // one metric of each member
	}
	sparse.clip()
	if perRef := float64(sparse.bytes()) / 1e5; perRef > 2.6 {
		t.Fatalf("sparse: %.2f bytes a ref, want ≤ 2.6", perRef)
	}
}

// TestPostingListLateRepacks: late refs are folded into the packed part
// once they pass their share, so late stays bounded.
func TestPostingListLateRepacks(t *testing.T) {
	var l postingList
	for ref := SeriesRef(1000); ref < 11000; ref++ {
		l.add(ref)
	}
	for ref := SeriesRef(999); ref > 0; ref-- {
		l.add(ref)
		if len(l.late) > max(postingLateMin, l.n/16) {
			t.Fatalf("late holds %d refs beside %d packed", len(l.late), l.n)
		}
	}
	if got := l.appendTo(nil); len(got) != 10999 || got[0] != 1 || got[len(got)-1] != 10999 {
		t.Fatalf("got %d refs from %d to %d", len(got), got[0], got[len(got)-1])
	}
}

// TestPostingListAddTwice: a ref added again, the largest or one below
// it, is held once and counted once.
func TestPostingListAddTwice(t *testing.T) {
	var l postingList
	for _, ref := range []SeriesRef{3, 9, 9, 5, 5, 3} {
		l.add(ref)
	}
	if got := l.appendTo(nil); l.len() != 3 || !slices.Equal(got, []SeriesRef{3, 5, 9}) {
		t.Fatalf("len %d, refs %v; want 3 refs 3, 5, 9", l.len(), got)
	}
}
