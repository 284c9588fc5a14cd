package tsdb

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func TestSymbolTableReleasesAndReusesSlots(t *testing.T) {
	st := newSymbolTable()
	b := labels.NewScratchBuilder(4)
	a := st.internLabels(labels.FromStrings("job", "etcd", "pod", "a"))
	bb := st.internLabels(labels.FromStrings("job", "etcd", "pod", "b"))
	if n := st.len(); n != 5 {
		t.Fatalf("%d symbols, want 5 (job etcd pod a b)", n)
	}
	size := st.size()
	if want := int64(len("jobetcdpodab") + 5*symbolOverhead); size != want {
		t.Fatalf("size %d, want %d", size, want)
	}
	st.release(a)
	if n := st.len(); n != 4 {
		t.Fatalf("%d symbols after releasing pod=a, want 4", n)
	}
	if got := st.labels(&b, bb).String(); got != `{job="etcd", pod="b"}` {
		t.Fatalf("survivor reads %s", got)
	}
	// The freed slot of "a" is reused before the table grows.
	slots := len(st.load())
	c := st.internLabels(labels.FromStrings("job", "etcd", "pod", "c"))
	if len(st.load()) != slots {
		t.Fatalf("table grew from %d to %d slots with a free slot", slots, len(st.load()))
	}
	if got := st.labels(&b, c).String(); got != `{job="etcd", pod="c"}` {
		t.Fatalf("new series reads %s", got)
	}
	st.release(bb)
	st.release(c)
	if n, sz := st.len(), st.size(); n != 0 || sz != 0 {
		t.Fatalf("after releasing all: %d symbols, %d bytes", n, sz)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("releasing a free symbol did not panic")
		}
	}()
	st.release(c)
}

// TestHeadRemovedSeriesReleaseSymbolsAfterReaders: symbols of removed
// series are freed, but not while a querier that may hold them is open;
// that querier keeps reading their labels right although new series are
// created meanwhile (which would take freed slots).
func TestHeadRemovedSeriesReleaseSymbolsAfterReaders(t *testing.T) {
	h := newTestHead(t, nil)
	pod := func(i int) labels.Labels {
		return labels.FromStrings("__name__", "up", "pod", fmt.Sprintf("pod-%d", i))
	}
	for i := range 100 {
		if err := appendOne(t, h, pod(i), 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.symbols.len(); n != 103 {
		t.Fatalf("%d symbols, want 103", n)
	}
	q, err := h.Querier(0, 2000)
	if err != nil {
		t.Fatal(err)
	}
	set := q.SelectUnsorted(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
	var held []Series
	for set.Next() {
		held = append(held, set.At())
	}
	if len(held) != 100 {
		t.Fatalf("selected %d series", len(held))
	}
	var gone []*memSeries
	for ref := SeriesRef(1); ref <= 50; ref++ {
		gone = append(gone, h.series.getByRef(ref))
	}
	h.removeSeries(gone)
	if n := h.symbols.len(); n != 103 {
		t.Fatalf("%d symbols while a querier is open, want 103", n)
	}
	if n := h.removed.len(); n != 50 {
		t.Fatalf("%d removed series waiting, want 50", n)
	}
	for i := 100; i < 150; i++ { // would reuse freed slots
		if err := appendOne(t, h, pod(i), 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range held {
		if got, want := s.Labels(), pod(i); !labels.Equal(got, want) {
			t.Fatalf("held series %d reads %s, want %s", i, got, want)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	h.collectRemoved()
	if n := h.removed.len(); n != 0 {
		t.Fatalf("%d removed series waiting after the querier closed", n)
	}
	if n := h.symbols.len(); n != 103 {
		t.Fatalf("%d symbols after the querier closed, want 103 (50 pods freed, 50 new)", n)
	}
	if got := h.index.labelValues("pod"); len(got) != 100 {
		t.Fatalf("%d pod values in the index, want 100", len(got))
	}
	got := selectAll(t, h, 0, 2000, labels.MustNewMatcher(labels.MatchRegexp, "pod", "pod-(1|149)"))
	if len(got) != 1 {
		t.Fatalf("selected %v, want only pod-149", got)
	}
}

// TestHeadAppenderHoldsRemovedSeriesSymbols: an open appender is a reader
// too.
func TestHeadAppenderHoldsRemovedSeriesSymbols(t *testing.T) {
	h := newTestHead(t, nil)
	ls := labels.FromStrings("__name__", "up", "pod", "x")
	if err := appendOne(t, h, ls, 1000, 1); err != nil {
		t.Fatal(err)
	}
	app := h.Appender()
	h.removeSeries([]*memSeries{h.series.getByRef(1)})
	if n := h.symbols.len(); n != 4 {
		t.Fatalf("%d symbols while an appender is open, want 4", n)
	}
	app.Rollback()
	h.collectRemoved()
	if n := h.symbols.len(); n != 0 {
		t.Fatalf("%d symbols after the appender ended, want 0", n)
	}
}

// TestInternRecentFreedSlot: a string interned at a label position whose
// slot was freed and given to another string is interned anew, not taken
// from what the position held: every series spells its own labels and
// the counts free each slot exactly when its last series goes.
func TestInternRecentFreedSlot(t *testing.T) {
	st := newSymbolTable()
	var b labels.ScratchBuilder
	first := labels.FromStrings("a", "1", "b", "2", "c", "3")
	refs1 := st.internLabels(first)
	st.release(refs1) // every slot freed
	other := labels.FromStrings("z", "9")
	refs2 := st.internLabels(other) // reuses the slots of "c" and "3"
	refs3 := st.internLabels(first)
	refs4 := st.internLabels(first)
	for _, c := range []struct {
		refs symRefs
		want labels.Labels
	}{{refs2, other}, {refs3, first}, {refs4, first}} {
		if got := st.labels(&b, c.refs); !labels.Equal(got, c.want) {
			t.Fatalf("refs spell %s, want %s", got, c.want)
		}
	}
	st.release(refs3)
	st.release(refs2)
	if got := st.labels(&b, refs4); !labels.Equal(got, first) {
		t.Fatalf("after releases refs spell %s, want %s", got, first)
	}
	st.release(refs4)
	if n := st.len(); n != 0 {
		t.Fatalf("%d symbols left after every series was released", n)
	}
}
