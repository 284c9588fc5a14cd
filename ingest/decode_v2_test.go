package ingest

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// toV2 converts a 1.0 request to 2.0 as Prometheus's sender does: one
// symbols table for the request, and every series with its metric's
// metadata (a counter with a help text) when withMetadata.
func toV2(req *prompb.WriteRequest, withMetadata bool) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := &writev2.Request{}
	var b labels.ScratchBuilder
	for _, ts := range req.Timeseries {
		b.Reset()
		name := ""
		for _, l := range ts.Labels {
			b.Add(l.Name, l.Value)
			if l.Name == "__name__" {
				name = l.Value
			}
		}
		s := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(b.Labels(), nil)}
		for _, smp := range ts.Samples {
			s.Samples = append(s.Samples, writev2.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
		}
		if withMetadata {
			s.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Help of " + name + ".")}
		}
		out.Timeseries = append(out.Timeseries, s)
	}
	out.Symbols = st.Symbols()
	return out
}

func marshalV2(tb testing.TB, req *writev2.Request) []byte {
	tb.Helper()
	data, err := req.Marshal()
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return data
}

// v2Cases are well-formed 2.0 requests: writev2 and UnmarshalV2 both
// accept them and agree on every field (requireSameRequestV2).
func v2Cases(tb testing.TB) map[string][]byte {
	label := func(refs ...uint64) []byte { // packed labels_refs
		var p []byte
		for _, r := range refs {
			p = pbVarint(p, r)
		}
		return pbLen(nil, 1, p)
	}
	symbols := cat(pbLen(nil, 4, nil), pbLen(nil, 4, []byte("__name__")), pbLen(nil, 4, []byte("up")), pbLen(nil, 4, []byte("job")), pbLen(nil, 4, []byte("etcd")))
	sample := pbLen(nil, 2, cat(pbFixed64(nil, 1, math.Float64bits(1)), pbTag(nil, 2, wireVarint), pbVarint(nil, uint64(testTS))))
	return map[string][]byte{
		"empty":       nil,
		"etcd fleet":  marshalV2(tb, toV2(etcdWriteRequests(1, 3, 500, testTS)[0], true)),
		"no metadata": marshalV2(tb, toV2(etcdWriteRequests(1, 1, 50, testTS)[0], false)),
		"all kinds": marshalV2(tb, &writev2.Request{
			Symbols: []string{"", "__name__", "etcd_disk_wal_fsync_duration_seconds", "job", "etcd", "WAL fsync latency.", "seconds", "trace_id", "abc"},
			Timeseries: []writev2.TimeSeries{{
				LabelsRefs: []uint32{1, 2, 3, 4},
				Samples:    []writev2.Sample{{Value: 1, Timestamp: testTS, StartTimestamp: testTS - 1000}, {Value: math.Float64frombits(staleNaN), Timestamp: testTS + 1}},
				Histograms: []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Schema: 3, PositiveSpans: []writev2.BucketSpan{{Offset: -2, Length: 2}}, PositiveDeltas: []int64{1, -1}, Timestamp: testTS, StartTimestamp: 1}},
				Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{7, 8}, Value: 0.2, Timestamp: testTS}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: 5, UnitRef: 6},
			}, {
				// Same metadata as the series before: kept once.
				LabelsRefs: []uint32{1, 2},
				Samples:    []writev2.Sample{{Value: 2, Timestamp: testTS}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: 5, UnitRef: 6},
			}, {
				// Start timestamp after the timestamp: counted.
				LabelsRefs: []uint32{1, 4},
				Samples:    []writev2.Sample{{Value: 2, Timestamp: testTS, StartTimestamp: testTS + 1}},
				Metadata:   writev2.Metadata{Type: 99},
			}, {
				// Empty names and values, metadata without a metric name.
				LabelsRefs: []uint32{0, 0, 3, 0},
				Metadata:   writev2.Metadata{UnitRef: 6},
			}},
		}),
		// Symbols after the series that use them, labels_refs unpacked,
		// packed and split, a repeated metadata field merged, unknown and
		// reserved fields (6: the old created_timestamp) skipped.
		"odd field order": cat(
			pbLen(nil, 5, cat(
				pbTag(nil, 1, wireVarint), pbVarint(nil, 1), label(2, 3), pbTag(nil, 1, wireVarint), pbVarint(nil, 4),
				sample,
				pbLen(nil, 5, cat(pbTag(nil, 1, wireVarint), pbVarint(nil, 2), pbTag(nil, 3, wireVarint), pbVarint(nil, 3))),
				pbLen(nil, 5, cat(pbTag(nil, 4, wireVarint), pbVarint(nil, 4))),
				pbTag(nil, 6, wireVarint), pbVarint(nil, uint64(testTS)),
				pbLen(nil, 9, []byte("unknown")),
			)),
			pbFixed64(nil, 1, 7), // reserved 1 to 3
			symbols,
		),
		// labels_refs elements are uint32: gogo drops higher bits.
		"refs truncated to 32 bits": cat(symbols, pbLen(nil, 5, cat(label(1<<32|1, 2), sample))),
		// A packed element may run past its run's end (gogo bounds it by
		// the message), and decoding resumes after it.
		"packed element straddles run": cat(symbols, pbLen(nil, 5, cat(pbTag(nil, 1, wireBytes), pbVarint(nil, 2), []byte{0x01, 0x81, 0x00}))),
	}
}

// requireSameRequestV2 checks that got holds what want, a gogo-decoded
// Request, means (refDecodeV2).
func requireSameRequestV2(tb testing.TB, want *writev2.Request, got *WriteRequest) {
	tb.Helper()
	ref, md, err := refDecodeV2(want)
	if err != nil {
		tb.Fatalf("UnmarshalV2 accepted a request the reference refuses: %v", err)
	}
	if len(got.Timeseries) != len(ref) {
		tb.Fatalf("%d series, want %d", len(got.Timeseries), len(ref))
	}
	samples := 0
	for k, w := range ref {
		g := got.Timeseries[k]
		samples += len(w.Samples)
		if !slices.Equal(g.Labels, w.Labels) || cap(g.Labels) != len(g.Labels) {
			tb.Fatalf("series %d: labels %q, want %q", k, g.Labels, w.Labels)
		}
		if len(g.Samples) != len(w.Samples) || cap(g.Samples) != len(g.Samples) {
			tb.Fatalf("series %d: %d samples (cap %d), want %d", k, len(g.Samples), cap(g.Samples), len(w.Samples))
		}
		for j, s := range w.Samples {
			if gs := g.Samples[j]; math.Float64bits(gs.Value) != math.Float64bits(s.Value) || gs.Timestamp != s.Timestamp {
				tb.Fatalf("series %d sample %d: %v@%d, want %v@%d", k, j, gs.Value, gs.Timestamp, s.Value, s.Timestamp)
			}
		}
		if g.Exemplars != w.Exemplars || g.Histograms != w.Histograms || g.BadStartTimestamps != w.BadStartTimestamps {
			tb.Fatalf("series %d: %d exemplars, %d histograms, %d bad start timestamps, want %d, %d, %d", k,
				g.Exemplars, g.Histograms, g.BadStartTimestamps, w.Exemplars, w.Histograms, w.BadStartTimestamps)
		}
	}
	if got.NumSamples() != samples {
		tb.Fatalf("NumSamples %d, want %d", got.NumSamples(), samples)
	}
	if !slices.Equal(got.Metadata, md) {
		tb.Fatalf("metadata %q, want %q", got.Metadata, md)
	}
}

// refDecodeV2 is the reference meaning of a Request, written plainly over
// the gogo type: the series and metadata UnmarshalV2 must produce, or the
// error it must return for a well-formed message that is not a valid
// request.
func refDecodeV2(req *writev2.Request) ([]TimeSeries, []Metadata, error) {
	if len(req.Symbols) > 0 && req.Symbols[0] != "" {
		return nil, nil, errors.New("symbols[0] not empty")
	}
	sym := func(ref uint32) (string, error) {
		switch {
		case int(ref) < len(req.Symbols):
			return req.Symbols[ref], nil
		case ref == 0:
			return "", nil
		}
		return "", errors.New("reference out of range")
	}
	var series []TimeSeries
	var mds []Metadata
	for _, ts := range req.Timeseries {
		var out TimeSeries
		if len(ts.LabelsRefs)%2 != 0 {
			return nil, nil, errors.New("odd labels_refs")
		}
		for i := 0; i < len(ts.LabelsRefs); i += 2 {
			n, err1 := sym(ts.LabelsRefs[i])
			v, err2 := sym(ts.LabelsRefs[i+1])
			if err := errors.Join(err1, err2); err != nil {
				return nil, nil, err
			}
			out.Labels = append(out.Labels, Label{Name: n, Value: v})
		}
		for _, s := range ts.Samples {
			out.Samples = append(out.Samples, Sample{Value: s.Value, Timestamp: s.Timestamp})
			if s.StartTimestamp != 0 && s.StartTimestamp > s.Timestamp {
				out.BadStartTimestamps++
			}
		}
		out.Histograms = len(ts.Histograms)
		out.Exemplars = len(ts.Exemplars)
		for _, e := range ts.Exemplars {
			if len(e.LabelsRefs)%2 != 0 {
				return nil, nil, errors.New("odd exemplar labels_refs")
			}
			for _, r := range e.LabelsRefs {
				if _, err := sym(r); err != nil {
					return nil, nil, err
				}
			}
		}
		help, err1 := sym(ts.Metadata.HelpRef)
		unit, err2 := sym(ts.Metadata.UnitRef)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, err
		}
		if ts.Metadata.Type != 0 || help != "" || unit != "" {
			m := Metadata{Type: metricTypeName(int32(ts.Metadata.Type)), Help: help, Unit: unit}
			for _, l := range out.Labels {
				if l.Name == "__name__" {
					m.Metric = l.Value
					break
				}
			}
			if m.Metric != "" && (len(mds) == 0 || mds[len(mds)-1] != m) {
				mds = append(mds, m)
			}
		}
		series = append(series, out)
	}
	return series, mds, nil
}

func TestUnmarshalV2MatchesWritev2(t *testing.T) {
	var wr WriteRequest // reused, as a pooled one is
	for name, data := range v2Cases(t) {
		t.Run(name, func(t *testing.T) {
			var want writev2.Request
			if err := want.Unmarshal(data); err != nil {
				t.Fatalf("writev2 refuses the case: %v", err)
			}
			if err := wr.UnmarshalV2(data); err != nil {
				t.Fatalf("UnmarshalV2: %v", err)
			}
			requireSameRequestV2(t, &want, &wr)
		})
	}
}

// TestUnmarshalV2Metadata pins what the all-kinds case's metadata is,
// beyond agreeing with the reference.
func TestUnmarshalV2Metadata(t *testing.T) {
	var wr WriteRequest
	if err := wr.UnmarshalV2(v2Cases(t)["all kinds"]); err != nil {
		t.Fatal(err)
	}
	want := []Metadata{
		{Metric: "etcd_disk_wal_fsync_duration_seconds", Type: "histogram", Help: "WAL fsync latency.", Unit: "seconds"},
		{Metric: "etcd", Type: "unknown"},
	}
	if !slices.Equal(wr.Metadata, want) {
		t.Fatalf("metadata %q, want %q", wr.Metadata, want)
	}
	if got := wr.Timeseries[2].BadStartTimestamps; got != 1 {
		t.Fatalf("bad start timestamps %d, want 1", got)
	}
}

// TestUnmarshalV2RefusesMalformed: each input is refused with
// ErrBadProtobuf and a message naming the problem; gogoErr says whether
// writev2 refuses it too (a wire fault) or accepts it (well-formed
// protobuf, but not a valid request).
func TestUnmarshalV2RefusesMalformed(t *testing.T) {
	syms := []string{"", "__name__", "up"}
	ts := func(s writev2.TimeSeries) []byte {
		return marshalV2(t, &writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{s}})
	}
	symbols := cat(pbLen(nil, 4, nil), pbLen(nil, 4, []byte("__name__")), pbLen(nil, 4, []byte("up")))
	cases := []struct {
		name    string
		data    []byte
		msg     string
		gogoErr bool
	}{
		{"symbols[0] not empty", marshalV2(t, &writev2.Request{Symbols: []string{"__name__", "up"}}), "symbols[0]", false},
		{"label name reference out of range", ts(writev2.TimeSeries{LabelsRefs: []uint32{3, 2}}), "label 0 name: symbol reference 3 out of range of 3 symbols", false},
		{"label value reference out of range", ts(writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 1, 1 << 31}}), "label 1 value: symbol reference 2147483648 out of range", false},
		{"reference without symbols", marshalV2(t, &writev2.Request{Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 0}}}}), "out of range of 0 symbols", false},
		{"odd labels_refs", ts(writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 1}}), "odd number of references (3)", false},
		{"help_ref out of range", ts(writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Metadata: writev2.Metadata{HelpRef: 7}}), "help_ref: symbol reference 7", false},
		{"unit_ref out of range", ts(writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Metadata: writev2.Metadata{UnitRef: 3}}), "unit_ref: symbol reference 3", false},
		{"exemplar reference out of range", ts(writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{1, 9}}}}), "exemplar 0: labels_refs: symbol reference 9", false},
		{"exemplar odd labels_refs", ts(writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{1}}}}), "exemplar 0: labels_refs has an odd number", false},
		{"symbol of wire type 0", cat(pbTag(nil, 4, wireVarint), pbVarint(nil, 1)), "symbols: wire type 0", true},
		{"timeseries past the end", cat(symbols, pbTag(nil, 5, wireBytes), pbVarint(nil, 10), []byte{1, 2}), "exceeds", true},
		{"labels_refs of wire type 1", cat(symbols, pbLen(nil, 5, pbFixed64(nil, 1, 1))), "labels_refs: wire type 1", true},
		{"packed labels_refs truncated", cat(symbols, pbLen(nil, 5, pbLen(nil, 1, []byte{0x81}))), "truncated varint", true},
		{"sample value of wire type 0", cat(symbols, pbLen(nil, 5, pbLen(nil, 2, cat(pbTag(nil, 1, wireVarint), pbVarint(nil, 1))))), "value: wire type 0", true},
		{"start_timestamp of wire type 2", cat(symbols, pbLen(nil, 5, pbLen(nil, 2, pbLen(nil, 3, nil)))), "start_timestamp: wire type 2", true},
		{"metadata help_ref of wire type 2", cat(symbols, pbLen(nil, 5, pbLen(nil, 5, pbLen(nil, 3, nil)))), "help_ref: wire type 2", true},
		{"histogram count of wire type 1", cat(symbols, pbLen(nil, 5, pbLen(nil, 3, pbFixed64(nil, 1, 1)))), "histogram 0: count_int: wire type 1", true},
		{"histogram start_timestamp of wire type 1", cat(symbols, pbLen(nil, 5, pbLen(nil, 3, pbFixed64(nil, 17, 1)))), "start_timestamp: wire type 1", true},
		{"exemplar value of wire type 0", cat(symbols, pbLen(nil, 5, pbLen(nil, 4, cat(pbTag(nil, 2, wireVarint), pbVarint(nil, 1))))), "exemplar 0: value: wire type 0", true},
		{"end group at top level", pbTag(nil, 5, wireEndGroup), "end-group", true},
	}
	var wr WriteRequest
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var gogo writev2.Request
			if gerr := gogo.Unmarshal(c.data); (gerr != nil) != c.gogoErr {
				t.Fatalf("writev2 error %v, want error: %v", gerr, c.gogoErr)
			}
			err := wr.UnmarshalV2(c.data)
			if !errors.Is(err, ErrBadProtobuf) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want ErrBadProtobuf containing %q", err, c.msg)
			}
			if len(wr.Timeseries) != 0 || len(wr.Metadata) != 0 || len(wr.symbols) != 0 {
				t.Fatalf("refused request left %d series, %d metadata, %d symbols", len(wr.Timeseries), len(wr.Metadata), len(wr.symbols))
			}
		})
	}
}

// TestUnmarshalV2Limits: each count limit refuses the request with
// ErrRequestTooLarge before its buffer grows past it; a metadata string
// past its limit drops that entry only.
func TestUnmarshalV2Limits(t *testing.T) {
	req := toV2(etcdWriteRequests(1, 1, 100, testTS)[0], true)
	data := marshalV2(t, req)
	labels := 0
	for _, ts := range req.Timeseries {
		labels += len(ts.LabelsRefs) / 2
	}
	var all WriteRequest
	if err := all.UnmarshalV2(data); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		lim  DecodeLimits
		msg  string
	}{
		{"series", DecodeLimits{MaxSeries: len(req.Timeseries) - 1}, "series"},
		{"labels", DecodeLimits{MaxLabels: labels - 1}, "labels"},
		{"samples", DecodeLimits{MaxSamples: len(req.Timeseries) - 1}, "samples"},
		{"symbols", DecodeLimits{MaxSymbols: len(req.Symbols) - 1}, "symbols"},
		{"metadata", DecodeLimits{MaxMetadata: len(all.Metadata) - 1}, "metadata entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var wr WriteRequest
			reserved := 0
			c.lim.Reserve = func(n int) error { reserved += n; return nil }
			err := wr.UnmarshalV2Limited(data, c.lim)
			if !errors.Is(err, ErrRequestTooLarge) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want ErrRequestTooLarge about %s", err, c.msg)
			}
			l := c.lim
			if reserved < wr.BufferBytes() || l.MaxSeries > 0 && cap(wr.Timeseries) > l.MaxSeries || l.MaxLabels > 0 && cap(wr.labels) > l.MaxLabels ||
				l.MaxSamples > 0 && cap(wr.samples) > l.MaxSamples || l.MaxSymbols > 0 && cap(wr.symbols) > l.MaxSymbols ||
				l.MaxMetadata > 0 && cap(wr.Metadata) > l.MaxMetadata {
				t.Fatalf("buffers past their limits or not reserved: %d bytes reserved, %d held", reserved, wr.BufferBytes())
			}
		})
	}
	t.Run("metadata string", func(t *testing.T) {
		var wr WriteRequest
		long := strings.Repeat("h", 100)
		big := marshalV2(t, &writev2.Request{
			Symbols: []string{"", "__name__", "a", "b", "short", long},
			Timeseries: []writev2.TimeSeries{
				{LabelsRefs: []uint32{1, 2}, Metadata: writev2.Metadata{Type: 1, HelpRef: 5}},
				{LabelsRefs: []uint32{1, 3}, Metadata: writev2.Metadata{Type: 1, HelpRef: 4}},
			},
		})
		if err := wr.UnmarshalV2Limited(big, DecodeLimits{MaxMetadataBytes: 99}); err != nil {
			t.Fatal(err)
		}
		if want := []Metadata{{Metric: "b", Type: "counter", Help: "short"}}; !slices.Equal(wr.Metadata, want) || wr.DroppedMetadata != 1 {
			t.Fatalf("metadata %q, %d dropped; want %q, 1 dropped", wr.Metadata, wr.DroppedMetadata, want)
		}
		err := wr.DroppedMetadataError(99)
		if !errors.Is(err, ErrInvalidSeries) || !strings.Contains(err.Error(), `help of metric "a" is 100 bytes, longer than the limit of 99`) {
			t.Fatalf("error %v", err)
		}
	})
}

// TestUnmarshalV1Metadata: the 1.0 metadata field is kept, entries
// without a metric name left out.
func TestUnmarshalV1Metadata(t *testing.T) {
	req := metadataRequest()
	req.Metadata = append(req.Metadata, prompb.MetricMetadata{Type: prompb.MetricMetadata_GAUGE, Help: "no name"})
	var wr WriteRequest
	if err := wr.Unmarshal(marshalV1(t, req)); err != nil {
		t.Fatal(err)
	}
	if len(wr.Metadata) != 4 || wr.Metadata[2] != (Metadata{Metric: "etcd_disk_wal_fsync_duration_seconds", Type: "histogram",
		Help: "The latency distributions of fsync called by WAL.", Unit: "seconds"}) {
		t.Fatalf("metadata %q", wr.Metadata)
	}
}

func marshalV1(tb testing.TB, req *prompb.WriteRequest) []byte {
	tb.Helper()
	data, err := req.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
