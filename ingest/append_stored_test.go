package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/tsdb"
)

// countingStore counts how an ingester appends to a real head: by labels
// (validated) or by the ref of a stored series.
type countingStore struct {
	head            *tsdb.Head
	byLabels, byRef int
}

func (c *countingStore) Appender() tsdb.Appender {
	return &countingAppender{Appender: c.head.Appender(), c: c}
}

type countingAppender struct {
	tsdb.Appender
	c *countingStore
}

func (a *countingAppender) AppendSeries(lset labels.Labels, t int64, v float64) (tsdb.SeriesRef, error) {
	a.c.byLabels++
	return a.Appender.AppendSeries(lset, t, v)
}

func (a *countingAppender) AppendRef(ref tsdb.SeriesRef, t int64, v float64) (bool, error) {
	a.c.byRef++
	return a.Appender.AppendRef(ref, t, v)
}

func newCountingIngester(t *testing.T, lim Limits) (*Ingester, *countingStore) {
	t.Helper()
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{head: head}
	in, err := New(store, Options{Limits: lim, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return in, store
}

func writeOne(t *testing.T, in *Ingester, ls []prompb.Label, ts int64) Result {
	t.Helper()
	res, err := in.Write(marshalSnappy(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: ls, Samples: []prompb.Sample{{Timestamp: ts, Value: float64(ts)}}},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestAppendStoredSkipsValidationOfKnownSeries: the first sample of a
// series goes by labels, the next ones by ref; sent in another form
// (unsorted, with an empty label) the same series goes by labels and
// lands in the same series.
func TestAppendStoredSkipsValidationOfKnownSeries(t *testing.T) {
	in, store := newCountingIngester(t, DefaultLimits())
	sorted := []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "instance", Value: "a:2379"}, {Name: "job", Value: "etcd"}}
	t0 := testNow.Add(-time.Minute).UnixMilli()
	steps := []struct {
		name   string
		labels []prompb.Label
		byRef  bool
	}{
		{"new series", sorted, false},
		{"known series", sorted, true},
		{"known, unsorted", []prompb.Label{sorted[2], sorted[0], sorted[1]}, false},
		{"known, with an empty value", append([]prompb.Label{{Name: "a", Value: ""}}, sorted...), false},
		{"known again", sorted, true},
	}
	for i, st := range steps {
		store.byLabels, store.byRef = 0, 0
		res := writeOne(t, in, st.labels, t0+int64(i)*1000)
		if res.Accepted != 1 || res.Err() != nil {
			t.Fatalf("%s: %+v", st.name, res)
		}
		if byRef := store.byRef == 1 && store.byLabels == 0; byRef != st.byRef {
			t.Fatalf("%s: %d appends by ref, %d by labels; want by ref %v", st.name, store.byRef, store.byLabels, st.byRef)
		}
	}
	if n := store.head.NumSeries(); n != 1 {
		t.Fatalf("head holds %d series, want 1", n)
	}
}

// TestAppendStoredHonoursNewLimits: a stored series whose labels the
// limits now refuse is refused, as a new one would be.
func TestAppendStoredHonoursNewLimits(t *testing.T) {
	lim := DefaultLimits()
	in, store := newCountingIngester(t, lim)
	ls := []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "instance", Value: "a-long-instance-name:2379"}, {Name: "job", Value: "etcd"}}
	t0 := testNow.Add(-time.Minute).UnixMilli()
	if res := writeOne(t, in, ls, t0); res.Accepted != 1 {
		t.Fatalf("first write: %+v", res)
	}
	for _, c := range []struct {
		name  string
		lower func(*Limits)
	}{
		{"label value length", func(l *Limits) { l.MaxLabelValueLength = 10 }},
		{"label name length", func(l *Limits) { l.MaxLabelNameLength = 5 }},
		{"labels per series", func(l *Limits) { l.MaxLabelsPerSeries = 2 }},
	} {
		l := lim
		c.lower(&l)
		if err := in.SetLimits(l); err != nil {
			t.Fatal(err)
		}
		store.byRef = 0
		res := writeOne(t, in, ls, t0+1000)
		if res.RefusedSeries != 1 || res.Accepted != 0 || store.byRef != 0 {
			t.Fatalf("%s lowered: %+v, %d appends by ref", c.name, res, store.byRef)
		}
	}
}

func TestStorableAsSent(t *testing.T) {
	lim := DefaultLimits()
	for _, c := range []struct {
		name string
		ls   []Label
		want bool
	}{
		{"sorted", []Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "etcd"}}, true},
		{"empty", nil, false},
		{"unsorted", []Label{{Name: "job", Value: "etcd"}, {Name: "__name__", Value: "up"}}, false},
		{"duplicate name", []Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}, {Name: "job", Value: "b"}}, false},
		{"empty value", []Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: ""}}, false},
		{"value too long", []Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: string(make([]byte, lim.MaxLabelValueLength+1))}}, false},
		{"name too long", []Label{{Name: "__name__", Value: "up"}, {Name: string(make([]byte, lim.MaxLabelNameLength+1)), Value: "x"}}, false},
	} {
		if got := storableAsSent(c.ls, &lim); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
