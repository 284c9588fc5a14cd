package ingest

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

const testTS = int64(1_700_000_000_000)

// staleNaN is Prometheus' stale marker (model/value.StaleNaN).
const staleNaN = 0x7ff0000000000002

// decodeCase is a WriteRequest given as a prompb message or as raw bytes
// (for what prompb cannot marshal: repeated scalars, odd field order, wire
// quirks).
type decodeCase struct {
	name string
	req  *prompb.WriteRequest
	raw  []byte
}

func (c decodeCase) bytes(tb testing.TB) []byte {
	if c.raw != nil {
		return c.raw
	}
	data, err := c.req.Marshal()
	if err != nil {
		tb.Fatalf("%s: marshal: %v", c.name, err)
	}
	return data
}

// decodeCases are well-formed requests: prompb and Unmarshal must both
// accept them and agree on every field.
func decodeCases() []decodeCase {
	label := pbLen(nil, 1, []byte("__name__"))
	label = pbLen(label, 2, []byte("up"))
	sample := pbFixed64(nil, 1, math.Float64bits(1))
	sample = pbTag(sample, 2, wireVarint)
	sample = pbVarint(sample, uint64(testTS))
	return []decodeCase{
		{name: "empty", req: &prompb.WriteRequest{}},
		{name: "metadata only", req: metadataRequest()},
		{name: "series without samples", req: &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "etcd_server_has_leader"}}},
			{Labels: []prompb.Label{{Name: "__name__", Value: "go_goroutines"}}, Samples: []prompb.Sample{{Value: 42, Timestamp: testTS}}},
			{},
		}}},
		{name: "many series", req: etcdWriteRequests(2, 3, 1<<20, testTS)[0]},
		{name: "exemplars histograms metadata", req: richRequest()},
		{name: "unknown fields", req: unknownFieldsRequest()},
		{name: "special values", req: &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels: []prompb.Label{{Name: "", Value: ""}, {Name: "é", Value: "\xff\x00"}},
			Samples: []prompb.Sample{
				{Value: math.Float64frombits(staleNaN), Timestamp: -1},
				{Value: math.NaN(), Timestamp: math.MinInt64},
				{Value: math.Inf(-1), Timestamp: math.MaxInt64},
				{Value: math.Copysign(0, -1)},
			},
		}}}},
		{name: "repeated fields last wins, samples before labels", raw: pbLen(nil, 1, cat(
			pbLen(nil, 2, cat(sample, pbFixed64(nil, 1, math.Float64bits(2)))),
			pbLen(nil, 1, cat(label, pbLen(nil, 1, []byte("job")))),
		))},
		{name: "group in unknown field", raw: cat(
			pbTag(nil, 9, wireStartGroup), pbTag(nil, 1, wireVarint), []byte{5},
			pbTag(nil, 2, wireStartGroup), pbTag(nil, 0, wireEndGroup),
			pbTag(nil, 9, wireEndGroup), pbLen(nil, 1, pbLen(nil, 1, label)),
		)},
		// gogo truncates the field number to int32: 1<<32|1 is field 1.
		{name: "field number truncated to int32", raw: pbLen(nil, 1<<32|1, pbLen(nil, 1, label))},
		// The 10th byte of a varint contributes its low bit only; gogo
		// ignores the rest rather than refusing the varint.
		{name: "10-byte varint with spare bits", raw: pbLen(nil, 1, pbLen(nil, 2, cat(
			pbTag(nil, 2, wireVarint), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		)))},
		// A packed element may run past the end of its run: gogo reads on
		// into the histogram and resumes after the element.
		{name: "packed run straddling its end", raw: pbLen(nil, 1, pbLen(nil, 4, cat(
			pbTag(nil, 9, wireBytes), []byte{1, 0x80}, []byte{0x01},
			pbTag(nil, 10, wireBytes), []byte{3}, pbFixed64(nil, 0, 0)[1:],
		)))},
	}
}

func TestUnmarshalWriteRequest(t *testing.T) {
	// One WriteRequest for all cases: each must replace what the last left.
	var got WriteRequest
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.bytes(t)
			var want prompb.WriteRequest
			if err := want.Unmarshal(data); err != nil {
				t.Fatalf("prompb refused the input: %v", err)
			}
			if err := got.Unmarshal(data); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			requireSameRequest(t, &want, &got)
			if tc.req != nil && len(tc.req.Timeseries) != len(got.Timeseries) {
				t.Fatalf("decoded %d series, marshalled %d", len(got.Timeseries), len(tc.req.Timeseries))
			}
		})
	}
}

func TestUnmarshalEtcdSnappy(t *testing.T) {
	wr := &WriteRequest{}
	for k, req := range etcdWriteRequests(2, 3, 500, testTS) {
		data, err := snappy.Decode(nil, marshalSnappy(req))
		if err != nil {
			t.Fatalf("request %d: snappy: %v", k, err)
		}
		if err := wr.Unmarshal(data); err != nil {
			t.Fatalf("request %d: %v", k, err)
		}
		requireSameRequest(t, req, wr)
	}
}

func TestUnmarshalAliasesSrc(t *testing.T) {
	data := decodeCases()[2].bytes(t)
	var wr WriteRequest
	if err := wr.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(&data[0]))
	hi := lo + uintptr(len(data))
	p := uintptr(unsafe.Pointer(unsafe.StringData(wr.Timeseries[0].Labels[0].Value)))
	if p < lo || p >= hi {
		t.Fatalf("label value was copied: %#x not in src [%#x, %#x)", p, lo, hi)
	}
}

// TestUnmarshalTruncated cuts a request with every kind of field at every
// offset: each prefix must be refused or decoded exactly as prompb does.
func TestUnmarshalTruncated(t *testing.T) {
	full := decodeCase{req: richRequest()}.bytes(t)
	full = append(full, decodeCase{req: unknownFieldsRequest()}.bytes(t)...)
	var wr WriteRequest
	refused := 0
	for n := range len(full) {
		data := full[:n]
		var want prompb.WriteRequest
		wantErr := want.Unmarshal(data)
		err := wr.Unmarshal(data)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("prefix %d: Unmarshal error %v, prompb error %v", n, err, wantErr)
		}
		if err != nil {
			requireBadProtobuf(t, err, "offset")
			refused++
			continue
		}
		requireSameRequest(t, &want, &wr)
	}
	if refused < len(full)/2 {
		t.Fatalf("only %d of %d prefixes refused", refused, len(full))
	}
}

func TestUnmarshalMalformed(t *testing.T) {
	label := func(field uint64, wt uint8, payload ...byte) []byte {
		return pbLen(nil, 1, pbLen(nil, 1, cat(pbTag(nil, field, wt), payload)))
	}
	sample := func(payload ...byte) []byte { return pbLen(nil, 1, pbLen(nil, 2, payload)) }
	histogram := func(payload ...byte) []byte { return pbLen(nil, 1, pbLen(nil, 4, payload)) }
	overflow := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"timeseries as varint", "timeseries 0: timeseries: wire type 0 at offset 0, want 2", []byte{0x08, 0x01}},
		{"timeseries as group", "wire type 3 at offset 0", []byte{0x0b, 0x0c}},
		{"label name as varint", "timeseries 0: label 0: name: wire type 0 at offset 4, want 2", label(1, wireVarint, 5)},
		{"label value as fixed64", "label 0: value: wire type 1", label(2, wireFixed64, make([]byte, 8)...)},
		{"sample value as varint", "sample 0: value: wire type 0", sample(0x08, 0x01)},
		{"sample timestamp as fixed64", "sample 0: timestamp: wire type 1", sample(pbFixed64(nil, 2, 0)...)},
		{"exemplar timestamp as bytes", "exemplar 0: timestamp: wire type 2", pbLen(nil, 1, pbLen(nil, 3, pbLen(nil, 3, nil)))},
		{"exemplar label name as varint", "exemplar 0: labels: name: wire type 0", pbLen(nil, 1, pbLen(nil, 3, pbLen(nil, 1, []byte{0x08, 0x01})))},
		{"histogram schema as fixed64", "histogram 0: schema: wire type 1", histogram(pbFixed64(nil, 4, 0)...)},
		{"histogram span as varint", "histogram 0: positive_spans: wire type 0", histogram(0x58, 0x01)},
		{"histogram deltas as fixed32", "positive_deltas: wire type 5 at offset 4, want 0 or 2", histogram(0x65, 0, 0, 0, 0)},
		{"metadata type as bytes", "metadata 0: type: wire type 2", pbLen(nil, 3, pbLen(nil, 1, nil))},
		{"huge length", "timeseries 0: length 4611686018427387904 at offset 1 exceeds the 0 bytes left", pbVarint([]byte{0x0a}, 1<<62)},
		{"negative length", "length 9223372036854775808 at offset 1 exceeds", pbVarint([]byte{0x0a}, 1<<63)},
		{"label longer than series", "label 0: length 100 at offset 3 exceeds the 0 bytes left", []byte{0x0a, 0x02, 0x0a, 0x64}},
		{"unknown field too long", "length 200 at offset 1 exceeds the 1 bytes left", []byte{0x3a, 0xc8, 0x01, 0x00}},
		{"varint overflow in timestamp", "sample 0: varint at offset 5 overflows 64 bits", sample(cat([]byte{0x10}, overflow)...)},
		{"varint overflow in tag", "varint at offset 0 overflows 64 bits", overflow},
		{"varint overflow in length", "varint at offset 1 overflows 64 bits", cat([]byte{0x0a}, overflow)},
		{"truncated tag", "truncated varint at offset 0", []byte{0x80}},
		{"truncated timestamp", "sample 0: truncated varint at offset 5", sample(0x10, 0x80)},
		{"truncated double", "sample 0: truncated double at offset 5 (3 bytes left)", sample(0x09, 1, 2, 3)},
		{"truncated fixed32", "truncated fixed32 at offset 1 (2 bytes left)", []byte{0x3d, 1, 2}},
		{"truncated packed double", "negative_counts: truncated fixed64 at offset 6", histogram(0x52, 0x01, 0x00)},
		{"field number 0", "invalid field number 0 at offset 0", []byte{0x02, 0x00}},
		{"negative field number", "invalid field number -1 at offset 0", pbTag(nil, 1<<32-1, wireVarint)},
		{"end group without start", "end-group tag at offset 0 without a start-group", []byte{0x0c}},
		{"wire type 6", "invalid wire type 6 at offset 0", []byte{0x3e}},
		{"wire type 7 inside group", "invalid wire type 7 at offset 1", []byte{0x3b, 0x0f}},
		{"unterminated group", "unterminated group: truncated varint at offset 3", []byte{0x3b, 0x08, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want prompb.WriteRequest
			if err := want.Unmarshal(tc.data); err == nil {
				t.Fatalf("prompb accepted %x", tc.data)
			}
			var wr WriteRequest
			err := wr.Unmarshal(tc.data)
			requireBadProtobuf(t, err, tc.want)
			if len(wr.Timeseries) != 0 || wr.NumSamples() != 0 || len(wr.Metadata) != 0 {
				t.Fatalf("failed Unmarshal left content: %d series, %d samples, %d metadata",
					len(wr.Timeseries), wr.NumSamples(), len(wr.Metadata))
			}
		})
	}
}

func TestUnmarshalZeroAllocs(t *testing.T) {
	req := etcdWriteRequests(3, 3, 2000, testTS)[0]
	req.Timeseries = append(req.Timeseries, richRequest().Timeseries...)
	req.Metadata = metadataRequest().Metadata
	data := decodeCase{req: req}.bytes(t)
	var wr WriteRequest
	if err := wr.Unmarshal(data); err != nil { // grows the buffers
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := wr.Unmarshal(data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Unmarshal of a %d-sample request allocates %.1f times in steady state", wr.NumSamples(), allocs)
	}
}

// TestResetClearsReferences: a reused WriteRequest (ingest pools them)
// must keep no reference into a decoded buffer once Reset, or the pool
// would pin every large request's body.
func TestResetClearsReferences(t *testing.T) {
	big := decodeCase{req: etcdWriteRequests(1, 3, 1<<20, testTS)[0]}.bytes(t)
	small := decodeCase{req: richRequest()}.bytes(t)
	var wr WriteRequest
	for _, data := range [][]byte{big, small} { // small leaves big's tail behind
		if err := wr.Unmarshal(data); err != nil {
			t.Fatal(err)
		}
	}
	wr.Reset()
	requireCleared(t, &wr)
	if len(wr.Timeseries) != 0 || wr.NumSamples() != 0 || len(wr.Metadata) != 0 {
		t.Fatalf("Reset left stale content: %d series, %d samples, %d metadata",
			len(wr.Timeseries), wr.NumSamples(), len(wr.Metadata))
	}
}

func TestResetZeroesLabels(t *testing.T) {
	var wr WriteRequest
	if err := wr.Unmarshal(decodeCase{req: richRequest()}.bytes(t)); err != nil {
		t.Fatal(err)
	}
	wr.Reset()
	requireCleared(t, &wr)

	// A failed Unmarshal must not pin its src either.
	data := decodeCase{req: richRequest()}.bytes(t)
	if err := wr.Unmarshal(data[:len(data)-1]); err == nil {
		t.Fatal("truncated request accepted")
	}
	requireCleared(t, &wr)
}

// requireCleared checks that wr is empty and that no label in its buffer,
// up to its capacity, still points anywhere.
func requireCleared(t *testing.T, wr *WriteRequest) {
	t.Helper()
	if len(wr.Timeseries) != 0 || wr.NumSamples() != 0 || len(wr.Metadata) != 0 || len(wr.labels) != 0 {
		t.Fatalf("not empty: %d series, %d samples, %d metadata, %d labels",
			len(wr.Timeseries), wr.NumSamples(), len(wr.Metadata), len(wr.labels))
	}
	if cap(wr.labels) == 0 {
		t.Fatal("label buffer dropped: nothing left to reuse")
	}
	for k, l := range wr.labels[:cap(wr.labels)] {
		if l != (Label{}) {
			t.Fatalf("label %d of the buffer still holds %q=%q", k, l.Name, l.Value)
		}
	}
	for k, ts := range wr.Timeseries[:cap(wr.Timeseries)] {
		if ts.Labels != nil || ts.Samples != nil {
			t.Fatalf("series %d of the buffer still holds %d labels", k, len(ts.Labels))
		}
	}
}

func requireBadProtobuf(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !errors.Is(err, ErrBadProtobuf) {
		t.Fatalf("error %q does not wrap ErrBadProtobuf", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

// requireSameRequest fails unless got holds what prompb decoded into want.
func requireSameRequest(tb testing.TB, want *prompb.WriteRequest, got *WriteRequest) {
	tb.Helper()
	if len(got.Timeseries) != len(want.Timeseries) {
		tb.Fatalf("%d series, want %d", len(got.Timeseries), len(want.Timeseries))
	}
	var wantMD []Metadata
	for _, m := range want.Metadata {
		if m.MetricFamilyName != "" {
			wantMD = append(wantMD, Metadata{Metric: m.MetricFamilyName, Type: metricTypeName(int32(m.Type)), Help: m.Help, Unit: m.Unit})
		}
	}
	if !slices.Equal(got.Metadata, wantMD) {
		tb.Fatalf("metadata %q, want %q", got.Metadata, wantMD)
	}
	samples := 0
	for k, w := range want.Timeseries {
		g := got.Timeseries[k]
		samples += len(w.Samples)
		if len(g.Labels) != len(w.Labels) || cap(g.Labels) != len(g.Labels) {
			tb.Fatalf("series %d: %d labels (cap %d), want %d", k, len(g.Labels), cap(g.Labels), len(w.Labels))
		}
		for j, l := range w.Labels {
			if g.Labels[j].Name != l.Name || g.Labels[j].Value != l.Value {
				tb.Fatalf("series %d label %d: %q=%q, want %q=%q", k, j, g.Labels[j].Name, g.Labels[j].Value, l.Name, l.Value)
			}
		}
		if len(g.Samples) != len(w.Samples) || cap(g.Samples) != len(g.Samples) {
			tb.Fatalf("series %d: %d samples (cap %d), want %d", k, len(g.Samples), cap(g.Samples), len(w.Samples))
		}
		for j, s := range w.Samples {
			gs := g.Samples[j]
			if math.Float64bits(gs.Value) != math.Float64bits(s.Value) || gs.Timestamp != s.Timestamp {
				tb.Fatalf("series %d sample %d: %v@%d, want %v@%d", k, j, gs.Value, gs.Timestamp, s.Value, s.Timestamp)
			}
		}
		if g.Exemplars != len(w.Exemplars) || g.Histograms != len(w.Histograms) {
			tb.Fatalf("series %d: %d exemplars, %d histograms, want %d, %d",
				k, g.Exemplars, g.Histograms, len(w.Exemplars), len(w.Histograms))
		}
	}
	if got.NumSamples() != samples {
		tb.Fatalf("NumSamples %d, want %d", got.NumSamples(), samples)
	}
}

// metadataRequest is a metadata-only request as Prometheus 2.42 sends
// them, apart from the series, on its metadata interval.
func metadataRequest() *prompb.WriteRequest {
	return &prompb.WriteRequest{Metadata: []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "etcd_server_has_leader", Help: "Whether or not a leader exists. 1 is existence, 0 is not."},
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "etcd_server_leader_changes_seen_total", Help: "The number of leader changes seen."},
		{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "etcd_disk_wal_fsync_duration_seconds", Help: "The latency distributions of fsync called by WAL.", Unit: "seconds"},
		{Type: prompb.MetricMetadata_SUMMARY, MetricFamilyName: "go_gc_duration_seconds", Help: "A summary of the pause duration of garbage collection cycles."},
	}}
}

// richRequest has every field prompb knows: exemplars, integer and float
// native histograms, metadata.
func richRequest() *prompb.WriteRequest {
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "etcd_disk_wal_fsync_duration_seconds"},
				{Name: "instance", Value: "10.0.0.1:2379"},
				{Name: "job", Value: "etcd"},
			},
			Samples: []prompb.Sample{{Value: 1.5, Timestamp: testTS}, {Value: math.Float64frombits(staleNaN), Timestamp: testTS + 15000}},
			Exemplars: []prompb.Exemplar{
				{Labels: []prompb.Label{{Name: "trace_id", Value: "4bf92f3577b34da6a3ce929d0e0e4736"}}, Value: 0.004, Timestamp: testTS},
				{Value: 0.002},
			},
			Histograms: []prompb.Histogram{{
				Count: &prompb.Histogram_CountInt{CountInt: 12}, Sum: 0.25, Schema: 3, ZeroThreshold: 1e-128,
				ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
				NegativeSpans: []prompb.BucketSpan{{Offset: -2, Length: 2}}, NegativeDeltas: []int64{1, -1},
				PositiveSpans:  []prompb.BucketSpan{{Offset: 0, Length: 3}, {Offset: 2, Length: 1}},
				PositiveDeltas: []int64{2, 1, -1, 3}, ResetHint: prompb.Histogram_NO, Timestamp: testTS,
			}, {
				Count: &prompb.Histogram_CountFloat{CountFloat: 7.5}, Sum: -3, Schema: -53,
				ZeroCount:     &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
				NegativeSpans: []prompb.BucketSpan{{Offset: 1, Length: 1}}, NegativeCounts: []float64{1},
				PositiveSpans: []prompb.BucketSpan{{Length: 2}}, PositiveCounts: []float64{1.5, 4.5},
				CustomValues: []float64{0.1, 0.5}, ResetHint: prompb.Histogram_GAUGE, Timestamp: testTS,
			}},
		}, {
			Labels:  []prompb.Label{{Name: "__name__", Value: "etcd_server_has_leader"}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: testTS}},
		}},
		Metadata: metadataRequest().Metadata[2:3],
	}
}

// unknownFieldsRequest carries fields from a newer .proto at every level,
// with every wire type; prompb keeps them in XXX_unrecognized, Unmarshal
// skips them.
func unknownFieldsRequest() *prompb.WriteRequest {
	unknown := cat(
		pbTag(nil, 21, wireVarint), pbVarint(nil, 1<<40),
		pbFixed64(nil, 22, 7),
		pbLen(nil, 23, []byte("cortex")),
		pbTag(nil, 24, wireFixed32), []byte{1, 2, 3, 4},
		pbTag(nil, 25, wireStartGroup), pbLen(nil, 1, []byte("x")), pbTag(nil, 25, wireEndGroup),
	)
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels:           []prompb.Label{{Name: "__name__", Value: "up", XXX_unrecognized: unknown}},
			Samples:          []prompb.Sample{{Value: 1, Timestamp: testTS, XXX_unrecognized: unknown}},
			Exemplars:        []prompb.Exemplar{{Value: 1, XXX_unrecognized: unknown}},
			Histograms:       []prompb.Histogram{{Sum: 1, XXX_unrecognized: unknown}},
			XXX_unrecognized: unknown,
		}},
		Metadata:         []prompb.MetricMetadata{{MetricFamilyName: "up", XXX_unrecognized: pbLen(nil, 3, []byte("field 3 is not in MetricMetadata"))}},
		XXX_unrecognized: cat(pbTag(nil, 2, wireVarint), []byte{1}, unknown),
	}
}

// Protobuf writers for hand-made inputs.

func pbVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func pbTag(b []byte, field uint64, wt uint8) []byte { return pbVarint(b, field<<3|uint64(wt)) }

func pbLen(b []byte, field uint64, payload []byte) []byte {
	b = pbVarint(pbTag(b, field, wireBytes), uint64(len(payload)))
	return append(b, payload...)
}

func pbFixed64(b []byte, field uint64, v uint64) []byte {
	b = pbTag(b, field, wireFixed64)
	for range 8 {
		b = append(b, byte(v))
		v >>= 8
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestReleaseKeepsBuffersForReuse: Release empties a WriteRequest without
// dropping or clearing its buffers, and the next Unmarshal decodes as a
// fresh WriteRequest does, whatever the released one held.
func TestReleaseKeepsBuffersForReuse(t *testing.T) {
	big := decodeCase{req: etcdWriteRequests(1, 3, 1<<20, testTS)[0]}.bytes(t)
	small := decodeCase{req: richRequest()}.bytes(t)
	var wr WriteRequest
	if err := wr.Unmarshal(big); err != nil {
		t.Fatal(err)
	}
	capLabels := cap(wr.labels)
	wr.Release()
	if len(wr.Timeseries) != 0 || wr.NumSamples() != 0 || len(wr.Metadata) != 0 || len(wr.labels) != 0 {
		t.Fatalf("Release left content: %d series, %d samples, %d metadata, %d labels",
			len(wr.Timeseries), wr.NumSamples(), len(wr.Metadata), len(wr.labels))
	}
	if cap(wr.labels) != capLabels {
		t.Fatalf("Release dropped the label buffer: capacity %d, was %d", cap(wr.labels), capLabels)
	}
	if err := wr.Unmarshal(small); err != nil {
		t.Fatal(err)
	}
	var fresh WriteRequest
	if err := fresh.Unmarshal(small); err != nil {
		t.Fatal(err)
	}
	if len(wr.Timeseries) != len(fresh.Timeseries) || len(wr.Metadata) != len(fresh.Metadata) {
		t.Fatalf("a released WriteRequest decoded %d series, %d metadata; a fresh one %d, %d",
			len(wr.Timeseries), len(wr.Metadata), len(fresh.Timeseries), len(fresh.Metadata))
	}
	for i, ts := range wr.Timeseries {
		sameSample := func(a, b Sample) bool {
			return a.Timestamp == b.Timestamp && math.Float64bits(a.Value) == math.Float64bits(b.Value)
		}
		if !slices.Equal(ts.Labels, fresh.Timeseries[i].Labels) || !slices.EqualFunc(ts.Samples, fresh.Timeseries[i].Samples, sameSample) {
			t.Fatalf("series %d: released WriteRequest decoded %v %v, a fresh one %v %v",
				i, ts.Labels, ts.Samples, fresh.Timeseries[i].Labels, fresh.Timeseries[i].Samples)
		}
	}
	if !slices.Equal(wr.Metadata, fresh.Metadata) {
		t.Fatalf("metadata %v, a fresh WriteRequest %v", wr.Metadata, fresh.Metadata)
	}
}
