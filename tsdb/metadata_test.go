package tsdb

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func mm(metric, typ, help, unit string) MetricMetadata {
	return MetricMetadata{Metric: metric, Metadata: Metadata{Type: typ, Help: help, Unit: unit}}
}

func TestMetadataKeepsDistinctNewest(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at  int // seconds after t0
		mds []MetricMetadata
	}
	for _, tc := range []struct {
		name         string
		perMetric    int
		steps        []step
		metric       string
		limit, limPM int
		want         []MetricMetadataList
		wantChanged  int // by the last step
	}{
		{
			name: "same metadata again changes nothing", perMetric: 10,
			steps: []step{
				{0, []MetricMetadata{mm("up", "gauge", "Up.", "")}},
				{5, []MetricMetadata{mm("up", "gauge", "Up.", ""), mm("up", "gauge", "Up.", "")}},
			},
			limit: -1,
			want:  []MetricMetadataList{{Metric: "up", Entries: []Metadata{{Type: "gauge", Help: "Up."}}}},
		},
		{
			name: "distinct ones kept, most recently seen first", perMetric: 10,
			steps: []step{
				{0, []MetricMetadata{mm("x", "counter", "old", "")}},
				{1, []MetricMetadata{mm("x", "counter", "new", "")}},
				{2, []MetricMetadata{mm("x", "counter", "old", "")}},
			},
			limit: -1,
			want: []MetricMetadataList{{Metric: "x", Entries: []Metadata{
				{Type: "counter", Help: "old"}, {Type: "counter", Help: "new"}}}},
		},
		{
			name: "past the bound the least recently seen gives way", perMetric: 2,
			steps: []step{
				{0, []MetricMetadata{mm("x", "gauge", "a", "")}},
				{1, []MetricMetadata{mm("x", "gauge", "b", "")}},
				{2, []MetricMetadata{mm("x", "gauge", "a", "")}},
				{3, []MetricMetadata{mm("x", "gauge", "c", "")}},
			},
			limit: -1, wantChanged: 1,
			want: []MetricMetadataList{{Metric: "x", Entries: []Metadata{
				{Type: "gauge", Help: "c"}, {Type: "gauge", Help: "a"}}}},
		},
		{
			name: "unit and type make entries distinct", perMetric: 10,
			steps: []step{{0, []MetricMetadata{
				mm("d", "histogram", "h", "seconds"), mm("d", "histogram", "h", ""), mm("d", "summary", "h", "seconds")}}},
			limit: -1, limPM: 1, wantChanged: 3,
			want: []MetricMetadataList{{Metric: "d", Entries: []Metadata{{Type: "histogram", Help: "h", Unit: "seconds"}}}},
		},
		{
			name: "names sorted, limit cuts names", perMetric: 10,
			steps: []step{{0, []MetricMetadata{mm("c", "gauge", "", ""), mm("a", "gauge", "", ""), mm("b", "gauge", "", "")}}},
			limit: 2, wantChanged: 3,
			want: []MetricMetadataList{
				{Metric: "a", Entries: []Metadata{{Type: "gauge"}}},
				{Metric: "b", Entries: []Metadata{{Type: "gauge"}}}},
		},
		{
			name: "limit 0 returns nothing, as in Prometheus", perMetric: 10,
			steps: []step{{0, []MetricMetadata{mm("a", "gauge", "", "")}}},
			limit: 0, wantChanged: 1,
		},
		{
			name: "metric selects one name", perMetric: 10,
			steps:  []step{{0, []MetricMetadata{mm("a", "gauge", "A", ""), mm("b", "counter", "B", "")}}},
			metric: "b", limit: -1, wantChanged: 2,
			want: []MetricMetadataList{{Metric: "b", Entries: []Metadata{{Type: "counter", Help: "B"}}}},
		},
		{
			name: "metric unknown", perMetric: 10,
			steps:  []step{{0, []MetricMetadata{mm("a", "gauge", "A", "")}}},
			metric: "zz", limit: -1, wantChanged: 1,
		},
		{
			name: "type names of any case are Prometheus's", perMetric: 10,
			steps: []step{{0, []MetricMetadata{mm("a", "COUNTER", "A", ""), mm("a", "counter", "A", ""), mm("b", "Gauge", "", ""), mm("c", "custom", "", "")}}},
			limit: -1, wantChanged: 3,
			want: []MetricMetadataList{
				{Metric: "a", Entries: []Metadata{{Type: "counter", Help: "A"}}},
				{Metric: "b", Entries: []Metadata{{Type: "gauge"}}},
				{Metric: "c", Entries: []Metadata{{Type: "custom"}}}},
		},
		{
			name: "empty name refused", perMetric: 10,
			steps: []step{{0, []MetricMetadata{mm("", "gauge", "A", "")}}},
			limit: -1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultMetadataOptions()
			opts.MaxPerMetric = tc.perMetric
			s := newMetadataStore(opts, nil)
			changed := 0
			for _, st := range tc.steps {
				changed = s.add(st.mds, t0.Add(time.Duration(st.at)*time.Second))
			}
			if changed != tc.wantChanged {
				t.Errorf("last step changed %d entries, want %d", changed, tc.wantChanged)
			}
			got := s.list(tc.metric, tc.limit, tc.limPM)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("list = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestMetadataBounds(t *testing.T) {
	long := strings.Repeat("h", 65)
	for _, tc := range []struct {
		name     string
		mod      func(*MetadataOptions)
		headFull bool
		mds      []MetricMetadata
		kept     int // names
		reason   string
		dropped  float64
	}{
		{name: "metric names", mod: func(o *MetadataOptions) { o.MaxMetrics = 2 },
			mds:  []MetricMetadata{mm("a", "gauge", "", ""), mm("b", "gauge", "", ""), mm("c", "gauge", "", ""), mm("a", "gauge", "new", "")},
			kept: 2, reason: metadataDropMetrics, dropped: 1},
		{name: "help too long", mds: []MetricMetadata{mm("a", "gauge", long, ""), mm("b", "gauge", "ok", "")},
			kept: 1, reason: metadataDropTooLong, dropped: 1},
		{name: "name too long", mds: []MetricMetadata{mm(long, "gauge", "", "")}, reason: metadataDropTooLong, dropped: 1},
		{name: "unit too long", mds: []MetricMetadata{mm("a", "gauge", "", long)}, reason: metadataDropTooLong, dropped: 1},
		{name: "type too long", mds: []MetricMetadata{mm("a", long, "", "")}, reason: metadataDropTooLong, dropped: 1},
		{name: "bytes", mod: func(o *MetadataOptions) { o.MaxBytes = 2*metadataNameOverhead + 2*metadataEntryOverhead + 60 },
			mds:  []MetricMetadata{mm("a", "gauge", strings.Repeat("x", 20), ""), mm("b", "gauge", strings.Repeat("y", 20), ""), mm("c", "gauge", "", "")},
			kept: 2, reason: metadataDropBytes, dropped: 1},
		{name: "head full", headFull: true, mds: []MetricMetadata{mm("a", "gauge", "", "")},
			reason: metadataDropHeadBytes, dropped: 1},
		{name: "empty name", mds: []MetricMetadata{mm("", "gauge", "", "")}, reason: metadataDropInvalid, dropped: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultMetadataOptions()
			opts.MaxStringBytes = 64
			if tc.mod != nil {
				tc.mod(&opts)
			}
			s := newMetadataStore(opts, func() bool { return tc.headFull })
			s.add(tc.mds, time.Now())
			if got := len(s.list("", -1, 0)); got != tc.kept {
				t.Errorf("%d names kept, want %d", got, tc.kept)
			}
			if got := testutil.ToFloat64(s.dropped.WithLabelValues(tc.reason)); got != tc.dropped {
				t.Errorf("dropped{reason=%q} = %v, want %v", tc.reason, got, tc.dropped)
			}
			if s.bytes.Load() > opts.MaxBytes {
				t.Errorf("metadata holds %d bytes, over its bound %d", s.bytes.Load(), opts.MaxBytes)
			}
		})
	}
}

func TestMetadataSetLimits(t *testing.T) {
	h := newTestHead(t, nil)
	h.AddMetadata([]MetricMetadata{mm("a", "gauge", "", ""), mm("b", "gauge", "", "")})
	lower := DefaultMetadataOptions()
	lower.MaxMetrics = 2
	lower.MaxPerMetric = 1
	if err := h.SetMetadataLimits(lower); err != nil {
		t.Fatal(err)
	}
	if n := h.AddMetadata([]MetricMetadata{mm("c", "gauge", "", "")}); n != 0 {
		t.Fatalf("a third name kept under max metrics 2")
	}
	// A name past the lowered MaxPerMetric: the new entry replaces one.
	h.AddMetadata([]MetricMetadata{mm("a", "gauge", "newer", "")})
	if got := h.Metadata("a", -1, 0); len(got) != 1 || len(got[0].Entries) != 1 || got[0].Entries[0].Help != "newer" {
		t.Fatalf("after lowering max per metric: %+v", got)
	}
	bad := lower
	bad.MaxBytes = 0
	if err := h.SetMetadataLimits(bad); err == nil {
		t.Fatal("max bytes 0 accepted")
	}
}

// TestMetadataCopiesInput: the input aliases a request body that is
// reused afterwards.
func TestMetadataCopiesInput(t *testing.T) {
	s := newMetadataStore(DefaultMetadataOptions(), nil)
	body := []byte("etcd_up|a_type|The help.|seconds|gauge|COUNTER")
	str := unsafe.String(&body[0], len(body))
	s.add([]MetricMetadata{mm(str[:7], str[8:14], str[15:24], str[25:32]),
		mm(str[:7], str[33:38], "", ""), mm(str[:7], str[39:], "", "")}, time.Now())
	for i := range body {
		body[i] = 'X'
	}
	want := []MetricMetadataList{{Metric: "etcd_up", Entries: []Metadata{
		{Type: "a_type", Help: "The help.", Unit: "seconds"}, {Type: "gauge"}, {Type: "counter"}}}}
	if got := s.list("", -1, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the body changed: %+v, want %+v", got, want)
	}
	if got := s.list("etcd_up", -1, 0); len(got) != 1 {
		t.Fatalf("lookup by name after the body changed: %+v", got)
	}
}

// TestMetadataUnchangedAllocatesNothing: the steady state, the same
// metadata again, allocates nothing.
func TestMetadataUnchangedAllocatesNothing(t *testing.T) {
	s := newMetadataStore(DefaultMetadataOptions(), nil)
	mds := benchMetadata(500)
	now := time.Now()
	s.add(mds, now)
	upper := slices.Clone(mds) // remote write's enum names
	for i := range upper {
		upper[i].Type = strings.ToUpper(upper[i].Type)
	}
	for _, batch := range [][]MetricMetadata{mds, upper} {
		if a := testing.AllocsPerRun(20, func() {
			if s.add(batch, now.Add(time.Minute)) != 0 {
				t.Fatal("unchanged metadata changed the store")
			}
		}); a != 0 {
			t.Fatalf("%v allocations per unchanged batch, want 0", a)
		}
	}
}

func TestMetadataCountsInHeadBytes(t *testing.T) {
	h := newTestHead(t, nil)
	before := h.Bytes()
	h.AddMetadata([]MetricMetadata{mm("etcd_server_has_leader", "gauge", strings.Repeat("h", 1000), "")})
	if grown := h.Bytes() - before; grown < 1000+int64(len("etcd_server_has_leader")) {
		t.Fatalf("head bytes grew by %d for 1 KiB of metadata", grown)
	}
	// At the head's byte limit new metadata is refused.
	h.SetLimits(HeadLimits{MaxBytes: h.Bytes()})
	if n := h.AddMetadata([]MetricMetadata{mm("other", "gauge", "", "")}); n != 0 {
		t.Fatalf("head at its byte limit kept %d new metadata entries", n)
	}
	if got := testutil.ToFloat64(h.metadata.dropped.WithLabelValues(metadataDropHeadBytes)); got != 1 {
		t.Fatalf("dropped{reason=head_bytes_limit} = %v, want 1", got)
	}
}

func TestMetadataConcurrentAdds(t *testing.T) {
	opts := DefaultMetadataOptions()
	opts.MaxPerMetric = 3
	s := newMetadataStore(opts, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				s.add([]MetricMetadata{mm(fmt.Sprintf("m%d", i%50), "gauge", fmt.Sprintf("help %d", (i+w)%5), "")}, time.Now())
			}
		}()
	}
	wg.Wait()
	got := s.list("", -1, 0)
	if len(got) != 50 {
		t.Fatalf("%d names, want 50", len(got))
	}
	var want int64
	for _, l := range got {
		if len(l.Entries) > 3 {
			t.Fatalf("%s holds %d entries, bound 3", l.Metric, len(l.Entries))
		}
		want += metadataNameOverhead + int64(len(l.Metric))
		for _, e := range l.Entries {
			want += metadataEntryBytes(e)
		}
	}
	if s.bytes.Load() != want {
		t.Fatalf("accounted %d bytes, entries hold %d", s.bytes.Load(), want)
	}
}

func TestMetadataSurvivesRestart(t *testing.T) {
	for _, stop := range []string{"close", "crash"} {
		t.Run(stop, func(t *testing.T) {
			dir := t.TempDir()
			db := openTestDB(t, dir, testDBOptions())
			if err := db.AddMetadata([]MetricMetadata{
				mm("etcd_server_has_leader", "gauge", "Whether or not a leader exists.", ""),
				mm("etcd_disk_wal_fsync_duration_seconds", "histogram", "The latency of fsync.", "seconds"),
			}); err != nil {
				t.Fatal(err)
			}
			if err := db.AddMetadata([]MetricMetadata{mm("etcd_server_has_leader", "gauge", "Whether a leader exists.", "")}); err != nil {
				t.Fatal(err)
			}
			want := db.Metadata("", -1, 0)
			if stop == "close" {
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(t, db)
			}
			db = openTestDB(t, dir, testDBOptions())
			defer db.Close()
			if got := db.Metadata("", -1, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("after %s: %+v\nwant %+v", stop, got, want)
			}
			if len(want) != 2 || len(want[1].Entries) != 2 {
				t.Fatalf("before the restart: %+v", want)
			}
			// Restored entries are older than what arrives after the start.
			if err := db.AddMetadata([]MetricMetadata{mm("etcd_server_has_leader", "gauge", "Third.", "")}); err != nil {
				t.Fatal(err)
			}
			if got := db.Metadata("etcd_server_has_leader", -1, 1); got[0].Entries[0].Help != "Third." {
				t.Fatalf("newest after restart: %+v", got)
			}
		})
	}
}

// TestMetadataRestoreWithinBounds: bounds lowered across a restart apply
// to what is restored.
func TestMetadataRestoreWithinBounds(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir, testDBOptions())
	for i := range 5 {
		if err := db.AddMetadata([]MetricMetadata{mm("a", "gauge", fmt.Sprint("help ", i), ""), mm(fmt.Sprint("n", i), "gauge", "", "")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	o := testDBOptions()
	o.Head.Metadata.MaxPerMetric = 2
	o.Head.Metadata.MaxMetrics = 3
	db = openTestDB(t, dir, o)
	defer db.Close()
	got := db.Metadata("", -1, 0)
	if len(got) != 3 {
		t.Fatalf("%d names restored, bound 3: %+v", len(got), got)
	}
	if a := db.Metadata("a", -1, 0); len(a) == 1 && len(a[0].Entries) > 2 {
		t.Fatalf("%d entries restored, bound 2", len(a[0].Entries))
	}
}

// TestMetadataRestoredOverHeadLimit: what was kept is restored even when
// the head starts at its byte limit; only new metadata is refused then.
func TestMetadataRestoredOverHeadLimit(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir, testDBOptions())
	if err := db.AddMetadata([]MetricMetadata{mm("a", "gauge", "A.", ""), mm("b", "counter", "B.", "")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	o := testDBOptions()
	o.Head.Limits.MaxBytes = 1
	db = openTestDB(t, dir, o)
	defer db.Close()
	if got := db.Metadata("", -1, 0); len(got) != 2 {
		t.Fatalf("restored %+v, want a and b", got)
	}
	if err := db.AddMetadata([]MetricMetadata{mm("c", "gauge", "", "")}); err != nil {
		t.Fatal(err)
	}
	if got := db.Metadata("c", -1, 0); len(got) != 0 {
		t.Fatalf("new metadata kept over the head's byte limit: %+v", got)
	}
}

func TestMetadataValueMalformed(t *testing.T) {
	good := appendMetadataValue(nil, []Metadata{{Type: "gauge", Help: "h", Unit: "u"}})
	for _, tc := range []struct {
		name string
		val  []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{2}, good[1:]...)},
		{"count without entries", []byte{1, 5}},
		{"huge count", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"truncated count", []byte{1, 0x80}},
		{"truncated string", good[:len(good)-1]},
		{"string length past the end", []byte{1, 1, 9, 'a', 0, 0}},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if mds, err := decodeMetadataValue(tc.val); !errors.Is(err, errBadMetadataValue) {
				t.Fatalf("decode = %+v, %v; want errBadMetadataValue", mds, err)
			}
		})
	}
}

func FuzzMetadataValue(f *testing.F) {
	f.Add(appendMetadataValue(nil, []Metadata{{Type: "gauge", Help: "h", Unit: "u"}, {}}))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, val []byte) {
		mds, err := decodeMetadataValue(val)
		if err != nil {
			return
		}
		again := appendMetadataValue(nil, mds)
		got, err := decodeMetadataValue(again)
		if err != nil || !reflect.DeepEqual(got, mds) {
			t.Fatalf("round trip of %+v: %+v, %v", mds, got, err)
		}
		if len(again) > len(val) {
			t.Fatalf("re-encoding %x grew it to %x", val, again)
		}
	})
}

func benchMetadata(n int) []MetricMetadata {
	mds := make([]MetricMetadata, n)
	for i := range mds {
		mds[i] = mm(fmt.Sprintf("etcd_metric_%d_total", i), "counter", fmt.Sprintf("The number of things %d seen by the server since it started.", i), "")
	}
	return mds
}

// BenchmarkMetadataUnchanged is the steady state: every sender sends the
// same metadata of every metric every few seconds. shape=families is
// remote write 1.0's metadata field (one entry a metric name);
// shape=series is 2.0's per-series metadata (one entry a series, 10
// series a metric name, their strings from one symbol table).
func BenchmarkMetadataUnchanged(b *testing.B) {
	for _, shape := range []string{"families", "series"} {
		for _, n := range []int{100, 2000} {
			b.Run(fmt.Sprintf("shape=%s/entries=%d", shape, n), func(b *testing.B) {
				s := newMetadataStore(DefaultMetadataOptions(), nil)
				base := benchMetadata(n)
				if shape == "series" {
					base = benchMetadata(n / 10)
				}
				s.add(base, time.Now())
				// One copy per goroutine, as each request decodes its own
				// body; made before the timer starts.
				procs := runtime.GOMAXPROCS(0)
				copies := make([][]MetricMetadata, procs)
				for p := range copies {
					for _, m := range base {
						c := mm(strings.Clone(m.Metric), strings.Clone(m.Type), strings.Clone(m.Help), m.Unit)
						reps := 1
						if shape == "series" {
							reps = 10
						}
						for range reps {
							copies[p] = append(copies[p], c)
						}
					}
				}
				var next atomic.Int32
				now := time.Now()
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					own := copies[int(next.Add(1)-1)%procs]
					for pb.Next() {
						s.add(own, now)
					}
				})
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
			})
		}
	}
}
