package tsdb

import "testing"

func TestSeriesRefsPages(t *testing.T) {
	var r seriesRefs
	page := SeriesRef(1) << refPageBits
	a, b, c := &memSeries{ref: 1}, &memSeries{ref: page + 5}, &memSeries{ref: 3*page + 1}
	for _, s := range []*memSeries{a, b, c} {
		r.set(s)
	}
	if r.get(1) != a || r.get(page+5) != b || r.get(3*page+1) != c || r.get(2) != nil || r.get(10*page) != nil {
		t.Fatal("lookup")
	}
	var seen []SeriesRef
	r.batches(2, func(batch []*memSeries) error {
		for _, s := range batch {
			seen = append(seen, s.ref)
		}
		return nil
	})
	if len(seen) != 3 || seen[0] != 1 || seen[2] != 3*page+1 {
		t.Fatalf("batches visited %v", seen)
	}
	r.del(page + 5)
	if r.pages[1] != nil {
		t.Fatal("an emptied page was kept")
	}
	if r.get(page+5) != nil || r.get(1) != a {
		t.Fatal("lookup after delete")
	}
}

func TestSeriesRefsChains(t *testing.T) {
	var r seriesRefs
	page := SeriesRef(1) << refPageBits
	a, b := &memSeries{ref: 1}, &memSeries{ref: page + 5}
	r.set(a)
	r.set(b)
	if r.chain(1) != 0 || r.chain(7*page) != 0 {
		t.Fatal("a chain before any was set")
	}
	r.setChain(1, makeJournalPos(3, 100))
	r.setChain(page+5, makeJournalPos(4, 8))
	if r.chain(1) != makeJournalPos(3, 100) || r.chain(page+5) != makeJournalPos(4, 8) || r.chain(2) != 0 {
		t.Fatal("chain lookup")
	}
	r.del(1)
	r.set(&memSeries{ref: 1})
	if r.chain(1) != 0 {
		t.Fatal("a deleted series' chain stayed in its slot")
	}
}
