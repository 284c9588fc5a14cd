package tsdb

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestBatchSeriesFind adds series past several growths of the index and
// finds each at its position, and none that was not added; reset forgets
// them all.
func TestBatchSeriesFind(t *testing.T) {
	var b batchSeries
	all := make([]*memSeries, 5000)
	for i := range all {
		all[i] = &memSeries{ref: SeriesRef(i + 1)}
	}
	for i, s := range all[:4000] {
		if got := b.find(s); got != -1 {
			t.Fatalf("series %d found at %d before it was added", i, got)
		}
		b.add(s, sample{t: int64(i)})
		if len(b.index) < 2*len(b.series) {
			t.Fatalf("%d series in an index of %d slots", len(b.series), len(b.index))
		}
	}
	for i, s := range all[:4000] {
		if got := b.find(s); got != i || b.newest[got].t != int64(i) {
			t.Fatalf("series %d found at %d", i, got)
		}
	}
	for i, s := range all[4000:] {
		if got := b.find(s); got != -1 {
			t.Fatalf("series %d, never added, found at %d", 4000+i, got)
		}
	}
	b.reset(pooledAppenderSeries)
	for i, s := range all[:4000] {
		if got := b.find(s); got != -1 {
			t.Fatalf("series %d found at %d after reset", i, got)
		}
	}
	if len(b.series) != 0 || len(b.newest) != 0 || cap(b.index) == 0 {
		t.Fatalf("after reset: %d series, %d newest, index of %d slots", len(b.series), len(b.newest), cap(b.index))
	}
}

// TestBatchChecksAgainstItsNewest: a batch that holds samples of a series
// apart from one another checks each against the batch's newest sample
// of it, not the series' committed one.
func TestBatchChecksAgainstItsNewest(t *testing.T) {
	h := newTestHead(t, func(o *HeadOptions) { o.OutOfOrderWindow = 0 })
	app := h.Appender()
	sets := etcdLabelSets(0)[:300]
	for _, ls := range sets {
		if err := app.Append(ls, 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Append(sets[7], 1000, 2); err == nil {
		t.Fatal("a second value at the same timestamp, 300 series later in the batch, was accepted")
	}
	if err := app.Append(sets[7], 1000, 1); err != nil {
		t.Fatalf("an exact duplicate later in the batch: %v", err)
	}
	if err := app.Append(sets[7], 500, 1); err == nil {
		t.Fatal("an older sample later in the batch was accepted")
	}
	if err := app.Append(sets[7], 2000, 3); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	var ms []*labels.Matcher
	sets[7].Range(func(l labels.Label) { ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value)) })
	got := selectAll(t, h, 0, 3000, ms...)
	if s := got[sets[7].String()]; len(s) != 2 || s[1].v != 3 {
		t.Fatalf("samples of the series: %v", s)
	}
}
