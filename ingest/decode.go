package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// This file decodes remote-write 1.0 (prompb.WriteRequest) by hand so that a
// steady stream of requests allocates nothing. It accepts and refuses exactly
// the inputs that the gogo-generated prompb Unmarshal accepts and refuses,
// quirks included; FuzzUnmarshalWriteRequest holds it to that.

// Label is one label pair. Name and Value alias the buffer given to
// Unmarshal: they are valid only until that buffer is reused or the
// WriteRequest is Reset/Put.
type Label = labels.Label

// Sample is one float sample; Timestamp in milliseconds since the epoch.
type Sample struct {
	Value     float64
	Timestamp int64
}

// TimeSeries is one decoded prompb.TimeSeries. Labels and Samples are
// sub-slices of buffers owned by the WriteRequest.
type TimeSeries struct {
	Labels     []Label
	Samples    []Sample
	Exemplars  int // exemplars present (not stored; counted)
	Histograms int // native histogram samples present (unsupported; counted)
	// BadStartTimestamps counts the 2.0 samples whose start timestamp
	// (created timestamp) is after their timestamp; such a series is
	// refused. Start timestamps are otherwise not kept.
	BadStartTimestamps int
}

// DecodeLimits bound what one Unmarshal may hold, so that a small body
// cannot decode into a huge number of structs: an empty series is 2 bytes
// on the wire and 64 in memory, so 64 MiB of them would be 2 GiB. Each
// limit is checked before the buffer it bounds grows, and a buffer never
// grows past its limit. Zero means no limit.
type DecodeLimits struct {
	MaxSeries  int // TimeSeries entries
	MaxLabels  int // labels of all series together
	MaxSamples int // float samples of all series together
	// MaxMetadata bounds the metadata entries (1.0: the metadata field;
	// 2.0: series with metadata), MaxMetadataBytes each of their strings:
	// an entry with a longer metric name, help or unit is dropped and
	// counted (WriteRequest.DroppedMetadata), not kept.
	MaxMetadata      int
	MaxMetadataBytes int
	// MaxSymbols bounds the symbols table of a 2.0 request.
	MaxSymbols int
	// Reserve, if not nil, is called before a buffer grows with the bytes
	// of the new buffer; an error stops decoding and is returned as is
	// (not as ErrBadProtobuf). It lets a caller charge the memory a
	// request decodes into to a shared budget before it is allocated.
	Reserve func(bytes int) error
}

// Memory of one decoded entry, for DecodeLimits.Reserve and for callers
// that size budgets.
const (
	SeriesBytes = int(unsafe.Sizeof(TimeSeries{}))
	LabelBytes  = int(unsafe.Sizeof(Label{}))
	SampleBytes = int(unsafe.Sizeof(Sample{}))
	// MetadataBytes and SymbolBytes are the memory of one metadata entry
	// and of one 2.0 symbol (a string header; the string aliases src).
	MetadataBytes = int(unsafe.Sizeof(Metadata{}))
	SymbolBytes   = int(unsafe.Sizeof(""))
)

// Metadata is the metadata of one metric: from a 1.0 request's metadata
// field (MetricMetadata), or from a 2.0 series' metadata, keyed by the
// series' metric name. Type is Prometheus's lower-case type name
// ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info",
// "stateset", "unknown"). The strings alias the decoded request, as
// labels do: a consumer that keeps them copies them.
type Metadata struct {
	Metric, Type, Help, Unit string
}

// metricTypeNames maps the MetricType enum, the same in 1.0 and 2.0
// (0 is UNKNOWN in 1.0 and UNSPECIFIED in 2.0), to Prometheus's names.
var metricTypeNames = [...]string{"unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset"}

// metricTypeName names an enum value; a value no version defines is
// "unknown", as Prometheus treats it.
func metricTypeName(t int32) string {
	if t < 0 || int(t) >= len(metricTypeNames) {
		return metricTypeNames[0]
	}
	return metricTypeNames[t]
}

// WriteRequest is a decoded prompb.WriteRequest, reusable across requests.
//
// Ownership: after Unmarshal(src), label strings alias src and the Labels
// and Samples of every series alias wr's own buffers. All of it is valid
// until the next Unmarshal or Reset of wr; a caller that
// keeps a label longer must copy it (strings.Clone). A WriteRequest keeps
// buffers as large as the largest request it decoded.
type WriteRequest struct {
	Timeseries []TimeSeries
	// Metadata is the request's metric metadata, within
	// DecodeLimits.MaxMetadata; entries without a metric name are left
	// out, and a 2.0 series' metadata equal to the previous entry's is
	// not repeated. DroppedMetadata counts entries dropped for a string
	// longer than DecodeLimits.MaxMetadataBytes.
	Metadata        []Metadata
	DroppedMetadata int
	// droppedMeta describes the first dropped entry, for Result's error.
	droppedMeta droppedMetadata

	// labels and samples hold the labels and samples of all series back to
	// back; each series sub-slices them. Entries of labels past its length
	// are zero (Reset clears before it truncates, and append zeroes what
	// it grows), so a reused WriteRequest never pins an old src — unless
	// it was emptied by Release.
	labels  []Label
	samples []Sample
	// symbols is a 2.0 request's symbols table; its strings alias src.
	symbols []string
	// metadataSeen counts the metadata entries met, kept or not.
	metadataSeen int
	v2           seriesV2 // the 2.0 series being decoded

	lim DecodeLimits // of the Unmarshal in progress
}

// Reset empties wr, keeping its buffers, and drops every reference to the
// last src so that buffer can be freed or reused.
func (wr *WriteRequest) Reset() {
	clear(wr.Timeseries)
	clear(wr.labels)
	clear(wr.Metadata)
	clear(wr.symbols)
	wr.Release()
}

// Release empties wr as Reset does but leaves the entries of its buffers
// as they are: they go on pointing into the last src until a later
// Unmarshal overwrites them. It is for a caller that keeps wr together
// with the buffer it decodes into (ingest pools the two as one), so that
// nothing is pinned that is not kept anyway. Clearing there is wasted:
// while the GC marks, clearing a buffer of strings costs a write barrier
// per pointer (4% of the node's CPU creating series at 10M).
func (wr *WriteRequest) Release() {
	wr.Timeseries = wr.Timeseries[:0]
	wr.labels = wr.labels[:0]
	wr.samples = wr.samples[:0]
	wr.Metadata = wr.Metadata[:0]
	wr.symbols = wr.symbols[:0]
	wr.DroppedMetadata, wr.metadataSeen = 0, 0
	wr.droppedMeta = droppedMetadata{}
}

// NumSamples returns the float samples in all series.
func (wr *WriteRequest) NumSamples() int { return len(wr.samples) }

// Unmarshal decodes src (an uncompressed protobuf WriteRequest) into wr,
// replacing its previous content. Strings alias src: src must stay
// unmodified while wr's content is in use. On error wr is left empty and
// the error wraps ErrBadProtobuf and says where decoding failed.
//
//	message WriteRequest {
//	  repeated prometheus.TimeSeries timeseries = 1 [(gogoproto.nullable) = false];
//	  // Cortex uses this field to determine the source of the write request.
//	  // We reserve it to avoid any compatibility issues.
//	  reserved  2;
//	  repeated prometheus.MetricMetadata metadata = 3 [(gogoproto.nullable) = false];
//	}
func (wr *WriteRequest) Unmarshal(src []byte) error {
	return wr.UnmarshalLimited(src, DecodeLimits{})
}

// UnmarshalLimited is Unmarshal within lim. A request past a count limit
// is refused whole with an error wrapping ErrRequestTooLarge, as soon as
// the first entry over the limit is met and before anything is allocated
// for it; an error of lim.Reserve is returned as is.
func (wr *WriteRequest) UnmarshalLimited(src []byte, lim DecodeLimits) error {
	return wr.unmarshalWith(src, lim, wr.unmarshal)
}

// unmarshalWith runs decode, which is unmarshal or unmarshalV2, on src
// within lim.
func (wr *WriteRequest) unmarshalWith(src []byte, lim DecodeLimits, decode func([]byte) error) error {
	wr.Reset()
	wr.lim = lim
	// A buffer never has more capacity than its limit, so that the only
	// limit check is the one before a buffer grows (see grow). Buffers of
	// a pooled WriteRequest may be larger, from before a limit was lowered.
	if lim.MaxSeries > 0 && cap(wr.Timeseries) > lim.MaxSeries {
		wr.Timeseries = nil
	}
	if lim.MaxLabels > 0 && cap(wr.labels) > lim.MaxLabels {
		wr.labels = nil
	}
	if lim.MaxSamples > 0 && cap(wr.samples) > lim.MaxSamples {
		wr.samples = nil
	}
	if lim.MaxMetadata > 0 && cap(wr.Metadata) > lim.MaxMetadata {
		wr.Metadata = nil
	}
	if lim.MaxSymbols > 0 && cap(wr.symbols) > lim.MaxSymbols {
		wr.symbols = nil
	}
	err := decode(src)
	wr.lim = DecodeLimits{}
	if err != nil {
		wr.Reset()
		var le *limitError
		if errors.As(err, &le) {
			return le.err
		}
		return fmt.Errorf("%w: %w", ErrBadProtobuf, err)
	}
	wr.fixSlices()
	return nil
}

// limitError carries an error that is not the input's malformation (a
// count limit, a refused reservation) through the decoder's context
// wrapping, to be returned unwrapped.
type limitError struct{ err error }

func (e *limitError) Error() string { return e.err.Error() }

// BufferBytes returns the bytes of wr's own buffers (not of the src they
// alias), for a pool deciding whether to keep wr.
func (wr *WriteRequest) BufferBytes() int {
	return cap(wr.Timeseries)*SeriesBytes + cap(wr.labels)*LabelBytes + cap(wr.samples)*SampleBytes +
		cap(wr.Metadata)*MetadataBytes + cap(wr.symbols)*SymbolBytes
}

// grow returns a buffer for buf's contents with room for at least one more
// entry, within limit (0: none), after charging its bytes to
// wr.lim.Reserve. what names the entries in the error.
func grow[T any](wr *WriteRequest, buf []T, limit, size int, what string) ([]T, error) {
	n := len(buf)
	if limit > 0 && n >= limit {
		return buf, &limitError{fmt.Errorf("%w: more than %d %s", ErrRequestTooLarge, limit, what)}
	}
	c := max(2*cap(buf), 256)
	if limit > 0 && c > limit {
		c = limit
	}
	if wr.lim.Reserve != nil {
		if err := wr.lim.Reserve(c * size); err != nil {
			return buf, &limitError{err}
		}
	}
	nb := make([]T, n, c)
	copy(nb, buf)
	return nb, nil
}

func (wr *WriteRequest) addLabel(l Label) error {
	if len(wr.labels) == cap(wr.labels) {
		var err error
		if wr.labels, err = grow(wr, wr.labels, wr.lim.MaxLabels, LabelBytes, "labels"); err != nil {
			return err
		}
	}
	wr.labels = append(wr.labels, l)
	return nil
}

func (wr *WriteRequest) addSample(s Sample) error {
	if len(wr.samples) == cap(wr.samples) {
		var err error
		if wr.samples, err = grow(wr, wr.samples, wr.lim.MaxSamples, SampleBytes, "samples"); err != nil {
			return err
		}
	}
	wr.samples = append(wr.samples, s)
	return nil
}

func (wr *WriteRequest) unmarshal(src []byte) error {
	for i := 0; i < len(src); {
		off := i
		field, wt, next, err := readTag(src, i)
		if err != nil {
			return err
		}
		switch field {
		case 1:
			n := len(wr.Timeseries)
			start, end, err := lenField(src, off, next, wt, "timeseries")
			if err == nil {
				err = wr.decodeTimeSeries(src[:end], start)
			}
			if err != nil {
				return fmt.Errorf("timeseries %d: %w", n, err)
			}
			i = end
		case 3:
			n := wr.metadataSeen
			start, end, err := lenField(src, off, next, wt, "metadata")
			if err == nil {
				err = wr.decodeMetricMetadata(src[:end], start)
			}
			if err != nil {
				return fmt.Errorf("metadata %d: %w", n, err)
			}
			wr.metadataSeen++
			i = end
		default:
			if i, err = skipField(src, off, next, wt); err != nil {
				return err
			}
		}
	}
	return nil
}

// fixSlices points every series at its run of the label and sample buffers.
// Series are decoded one after the other, so each one's labels (and
// samples) are contiguous and follow the previous series'. While decoding,
// a series' slices may point into an array that a later append has since
// outgrown; only their lengths are kept. Re-slicing once at the end is
// cheaper than a counting pass over src and leaves the final arrays as the
// only ones referenced. The capacity is capped so that a caller appending
// to one series cannot overwrite the next.
func (wr *WriteRequest) fixSlices() {
	var l, s int
	for k := range wr.Timeseries {
		ts := &wr.Timeseries[k]
		nl, ns := len(ts.Labels), len(ts.Samples)
		ts.Labels = wr.labels[l : l+nl : l+nl]
		ts.Samples = wr.samples[s : s+ns : s+ns]
		l += nl
		s += ns
	}
}

// decodeTimeSeries appends the series in b[i:] to wr; b ends where the
// series ends. Exemplars and histograms are validated and counted only.
//
//	message TimeSeries {
//	  // For a timeseries to be valid, and for the samples and exemplars
//	  // to be ingested by the remote system properly, the labels field is required.
//	  repeated Label labels         = 1 [(gogoproto.nullable) = false];
//	  repeated Sample samples       = 2 [(gogoproto.nullable) = false];
//	  repeated Exemplar exemplars   = 3 [(gogoproto.nullable) = false];
//	  repeated Histogram histograms = 4 [(gogoproto.nullable) = false];
//	}
func (wr *WriteRequest) decodeTimeSeries(b []byte, i int) error {
	if len(wr.Timeseries) == cap(wr.Timeseries) {
		var err error
		if wr.Timeseries, err = grow(wr, wr.Timeseries, wr.lim.MaxSeries, SeriesBytes, "series"); err != nil {
			return err
		}
	}
	wr.Timeseries = append(wr.Timeseries, TimeSeries{})
	ts := &wr.Timeseries[len(wr.Timeseries)-1]
	l0, s0 := len(wr.labels), len(wr.samples)
	for i < len(b) {
		if tag, start, end, ok := shortLenField(b, i); ok && tag == 1<<3|wireBytes {
			lbl, err := decodeLabel(b[:end], start)
			if err != nil {
				return fmt.Errorf("label %d: %w", len(wr.labels)-l0, err)
			}
			if err := wr.addLabel(lbl); err != nil {
				return err
			}
			i = end
			continue
		}
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		switch field {
		case 1:
			var lbl Label
			start, end, err := lenField(b, off, next, wt, "labels")
			if err == nil {
				lbl, err = decodeLabel(b[:end], start)
			}
			if err != nil {
				return fmt.Errorf("label %d: %w", len(wr.labels)-l0, err)
			}
			if err := wr.addLabel(lbl); err != nil {
				return err
			}
			i = end
		case 2:
			var s Sample
			start, end, err := lenField(b, off, next, wt, "samples")
			if err == nil {
				s, err = decodeSample(b[:end], start)
			}
			if err != nil {
				return fmt.Errorf("sample %d: %w", len(wr.samples)-s0, err)
			}
			if err := wr.addSample(s); err != nil {
				return err
			}
			i = end
		case 3:
			if i, err = exemplarSpec.validateField(b, off, next, wt, ts.Exemplars); err != nil {
				return err
			}
			ts.Exemplars++
		case 4:
			if i, err = histogramSpec.validateField(b, off, next, wt, ts.Histograms); err != nil {
				return err
			}
			ts.Histograms++
		default:
			if i, err = skipField(b, off, next, wt); err != nil {
				return err
			}
		}
	}
	// Provisional slices: fixSlices re-points them, keeping their lengths.
	ts.Labels = wr.labels[l0:]
	ts.Samples = wr.samples[s0:]
	return nil
}

// decodeLabel decodes the label in b[i:]; b ends where the label ends.
// A repeated field overwrites the earlier one, as in gogo.
//
//	message Label {
//	  string name  = 1;
//	  string value = 2;
//	}
func decodeLabel(b []byte, i int) (Label, error) {
	var lbl Label
	for i < len(b) {
		if tag, start, end, ok := shortLenField(b, i); ok && (tag == 1<<3|wireBytes || tag == 2<<3|wireBytes) {
			if tag == 1<<3|wireBytes {
				lbl.Name = aliasString(b[start:end])
			} else {
				lbl.Value = aliasString(b[start:end])
			}
			i = end
			continue
		}
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return Label{}, err
		}
		switch field {
		case 1, 2:
			start, end, err := lenField(b, off, next, wt, labelFieldNames[field])
			if err != nil {
				return Label{}, err
			}
			if field == 1 {
				lbl.Name = aliasString(b[start:end])
			} else {
				lbl.Value = aliasString(b[start:end])
			}
			i = end
		default:
			if i, err = skipField(b, off, next, wt); err != nil {
				return Label{}, err
			}
		}
	}
	return lbl, nil
}

var labelFieldNames = [3]string{1: "name", 2: "value"}

// decodeSample decodes the sample in b[i:]; b ends where the sample ends.
//
//	message Sample {
//	  double value    = 1;
//	  // timestamp is in ms format, see model/timestamp/timestamp.go for
//	  // conversion from time.Time to Prometheus timestamp.
//	  int64 timestamp = 2;
//	}
func decodeSample(b []byte, i int) (Sample, error) {
	var s Sample
	for i < len(b) {
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return Sample{}, err
		}
		switch field {
		case 1:
			if wt != wireFixed64 {
				return Sample{}, errWireType("value", off, wt, "1")
			}
			if len(b)-next < 8 {
				return Sample{}, errTruncated("double", next, len(b))
			}
			s.Value = math.Float64frombits(binary.LittleEndian.Uint64(b[next:]))
			i = next + 8
		case 2:
			if wt != wireVarint {
				return Sample{}, errWireType("timestamp", off, wt, "0")
			}
			var v uint64
			if v, i, err = uvarint(b, next); err != nil {
				return Sample{}, err
			}
			s.Timestamp = int64(v)
		default:
			if i, err = skipField(b, off, next, wt); err != nil {
				return Sample{}, err
			}
		}
	}
	return s, nil
}

// aliasString returns b as a string without copying; see Unmarshal for how
// long b must stay unmodified. An empty string keeps no pointer into b.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Wire types of the protobuf encoding.
const (
	wireVarint     uint8 = 0
	wireFixed64    uint8 = 1
	wireBytes      uint8 = 2
	wireStartGroup uint8 = 3
	wireEndGroup   uint8 = 4
	wireFixed32    uint8 = 5
)

// uvarint reads the varint at b[i:] and returns it with the offset after
// it. Like gogo it reads at most 10 bytes and drops bits past the 64th
// rather than refusing them.
func uvarint(b []byte, i int) (uint64, int, error) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, nil
	}
	return uvarintSlow(b, i)
}

func uvarintSlow(b []byte, i int) (uint64, int, error) {
	var v uint64
	k := i
	for shift := uint(0); shift < 64; shift += 7 {
		if k >= len(b) {
			return 0, 0, fmt.Errorf("truncated varint at offset %d", i)
		}
		c := b[k]
		k++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, k, nil
		}
	}
	return 0, 0, fmt.Errorf("varint at offset %d overflows 64 bits", i)
}

// shortLenField returns the one-byte tag of the length-delimited field at
// b[i:] and the bounds of its payload, if its tag and length are one byte
// each and it fits in b: true of nearly every label and sample, and so
// worth a path that the compiler inlines. Otherwise ok is false and the
// caller takes the general path, which decides what is wrong, if anything.
func shortLenField(b []byte, i int) (tag byte, start, end int, ok bool) {
	if len(b)-i < 2 {
		return 0, 0, 0, false
	}
	tag, n := b[i], b[i+1]
	start, end = i+2, i+2+int(n)
	if tag >= 0x80 || tag&7 != wireBytes || n >= 0x80 || end > len(b) {
		return 0, 0, 0, false
	}
	return tag, start, end, true
}

// readTag reads the field tag at b[i:]. It refuses what every gogo message
// refuses before looking at the field number: an end-group tag and a field
// number below 1.
func readTag(b []byte, i int) (field int32, wt uint8, next int, err error) {
	tag, next, err := uvarint(b, i)
	if err != nil {
		return 0, 0, 0, err
	}
	// gogo truncates the field number to int32 before testing it, so the
	// tag of field 2^32+1 is field 1 to prompb; truncate alike to agree.
	field, wt = int32(tag>>3), uint8(tag&7)
	if wt == wireEndGroup {
		return 0, 0, 0, fmt.Errorf("end-group tag at offset %d without a start-group", i)
	}
	if field <= 0 {
		return 0, 0, 0, fmt.Errorf("invalid field number %d at offset %d", field, i)
	}
	return field, wt, next, nil
}

// readLen reads a length prefix at b[i:] and returns the bounds of the
// payload it announces, which must fit in b.
func readLen(b []byte, i int) (start, end int, err error) {
	n, start, err := uvarint(b, i)
	if err != nil {
		return 0, 0, err
	}
	if left := len(b) - start; n > uint64(left) {
		return 0, 0, fmt.Errorf("length %d at offset %d exceeds the %d bytes left in its message", n, i, left)
	}
	return start, start + int(n), nil
}

// lenField checks that the field whose tag is at off has wire type 2 and
// returns the bounds of its payload, whose length prefix is at i.
func lenField(b []byte, off, i int, wt uint8, name string) (start, end int, err error) {
	if wt != wireBytes {
		return 0, 0, errWireType(name, off, wt, "2")
	}
	return readLen(b, i)
}

// skipFixed steps over n bytes at b[i:].
func skipFixed(b []byte, i, n int) (int, error) {
	if len(b)-i < n {
		return 0, errTruncated(fmt.Sprintf("fixed%d", 8*n), i, len(b))
	}
	return i + n, nil
}

// skipField steps over the payload at b[i:] of an unknown field whose tag,
// at off, has wire type wt. Like gogo's skipTypes it walks a group to its
// matching end-group without checking the field numbers inside, and
// refuses wire types 6 and 7.
func skipField(b []byte, off, i int, wt uint8) (int, error) {
	depth := 0
	for {
		var err error
		switch wt {
		case wireVarint:
			_, i, err = uvarint(b, i)
		case wireFixed64:
			i, err = skipFixed(b, i, 8)
		case wireBytes:
			_, i, err = readLen(b, i)
		case wireStartGroup:
			depth++
		case wireEndGroup:
			if depth == 0 {
				err = fmt.Errorf("end-group tag at offset %d without a start-group", off)
			}
			depth--
		case wireFixed32:
			i, err = skipFixed(b, i, 4)
		default:
			err = fmt.Errorf("invalid wire type %d at offset %d", wt, off)
		}
		if err != nil {
			return 0, err
		}
		if depth == 0 {
			return i, nil
		}
		var tag uint64
		off = i
		if tag, i, err = uvarint(b, i); err != nil {
			return 0, fmt.Errorf("unterminated group: %w", err)
		}
		wt = uint8(tag & 7)
	}
}

func errWireType(name string, off int, got uint8, want string) error {
	return fmt.Errorf("%s: wire type %d at offset %d, want %s", name, got, off, want)
}

func errTruncated(what string, off, end int) error {
	return fmt.Errorf("truncated %s at offset %d (%d bytes left)", what, off, end-off)
}

// messageSpec describes a message that etcdgate does not keep but must
// still check, so that it refuses exactly what prompb refuses: the gogo
// Unmarshal of such a message fails on a known field of the wrong wire
// type, on a malformed varint, fixed-size value or length anywhere in it,
// and on a malformed nested message. Strings are not checked (gogo does not
// check UTF-8 either), nor are enum or integer ranges.
type messageSpec struct {
	name   string      // in errors: "exemplar 2: ..."
	fields []fieldSpec // by field number; gaps are unknown fields, skipped
}

type fieldSpec struct {
	name   string       // empty for an unknown field
	wire   uint8        // wire type of one element
	packed bool         // repeated scalar: also accepted as one length-delimited run
	sub    *messageSpec // wire type 2: the message it holds; nil for a string
}

// validateField checks the n-th field holding an m in its parent: its tag
// at off, its length prefix at i. It returns the offset after the field.
func (m *messageSpec) validateField(b []byte, off, i int, wt uint8, n int) (int, error) {
	start, end, err := lenField(b, off, i, wt, m.name)
	if err == nil {
		err = m.validate(b[:end], start)
	}
	if err != nil {
		return 0, fmt.Errorf("%s %d: %w", m.name, n, err)
	}
	return end, nil
}

// validate checks the m in b[i:]; b ends where the message ends.
func (m *messageSpec) validate(b []byte, i int) error {
	for i < len(b) {
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		if int(field) >= len(m.fields) || m.fields[field].name == "" {
			i, err = skipField(b, off, next, wt)
		} else if f := &m.fields[field]; wt == wireBytes && f.packed {
			i, err = f.checkPacked(b, next)
		} else {
			i, err = f.check(b, off, next, wt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// check steps over one element of f, whose tag at off had wire type wt.
func (f *fieldSpec) check(b []byte, off, i int, wt uint8) (int, error) {
	if wt != f.wire {
		want := fmt.Sprint(f.wire)
		if f.packed {
			want += " or 2"
		}
		return 0, errWireType(f.name, off, wt, want)
	}
	var err error
	switch wt {
	case wireVarint:
		_, i, err = uvarint(b, i)
	case wireFixed64:
		i, err = skipFixed(b, i, 8)
	case wireBytes:
		var start, end int
		if start, end, err = readLen(b, i); err == nil && f.sub != nil {
			err = f.sub.validate(b[:end], start)
		}
		i = end
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.name, err)
	}
	return i, nil
}

// checkPacked steps over a packed run of f whose length prefix is at i.
// gogo bounds each element by the enclosing message, not by the run: an
// element may straddle the run's end, and decoding resumes after it. That
// input is accepted by prompb, so it is accepted here too.
func (f *fieldSpec) checkPacked(b []byte, i int) (int, error) {
	start, end, err := readLen(b, i)
	for i = start; err == nil && i < end; {
		if f.wire == wireVarint {
			_, i, err = uvarint(b, i)
		} else {
			i, err = skipFixed(b, i, 8)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.name, err)
	}
	return i, nil
}

// exemplarSpec checks an Exemplar.
//
//	message Exemplar {
//	  // Optional, can be empty.
//	  repeated Label labels = 1 [(gogoproto.nullable) = false];
//	  double value = 2;
//	  // timestamp is in ms format, see model/timestamp/timestamp.go for
//	  // conversion from time.Time to Prometheus timestamp.
//	  int64 timestamp = 3;
//	}
var exemplarSpec = &messageSpec{name: "exemplar", fields: []fieldSpec{
	1: {name: "labels", wire: wireBytes, sub: labelSpec},
	2: {name: "value", wire: wireFixed64},
	3: {name: "timestamp", wire: wireVarint},
}}

// labelSpec checks an exemplar's Label; a series' labels go through
// decodeLabel, which keeps them.
//
//	message Label {
//	  string name  = 1;
//	  string value = 2;
//	}
var labelSpec = &messageSpec{name: "label", fields: []fieldSpec{
	1: {name: "name", wire: wireBytes},
	2: {name: "value", wire: wireBytes},
}}

// histogramSpec checks a native Histogram.
//
//	message Histogram {
//	  enum ResetHint { UNKNOWN = 0; YES = 1; NO = 2; GAUGE = 3; }
//	  oneof count { // Count of observations in the histogram.
//	    uint64 count_int   = 1;
//	    double count_float = 2;
//	  }
//	  double sum = 3; // Sum of observations in the histogram.
//	  sint32 schema             = 4;
//	  double zero_threshold     = 5; // Breadth of the zero bucket.
//	  oneof zero_count { // Count in zero bucket.
//	    uint64 zero_count_int     = 6;
//	    double zero_count_float   = 7;
//	  }
//	  // Negative Buckets.
//	  repeated BucketSpan negative_spans =  8 [(gogoproto.nullable) = false];
//	  repeated sint64 negative_deltas    =  9; // Count delta of each bucket compared to previous one (or to zero for 1st bucket).
//	  repeated double negative_counts    = 10; // Absolute count of each bucket.
//	  // Positive Buckets.
//	  repeated BucketSpan positive_spans = 11 [(gogoproto.nullable) = false];
//	  repeated sint64 positive_deltas    = 12; // Count delta of each bucket compared to previous one (or to zero for 1st bucket).
//	  repeated double positive_counts    = 13; // Absolute count of each bucket.
//	  ResetHint reset_hint               = 14;
//	  // timestamp is in ms format, see model/timestamp/timestamp.go for
//	  // conversion from time.Time to Prometheus timestamp.
//	  int64 timestamp = 15;
//	  // custom_values are not part of the specification, DO NOT use in remote write clients.
//	  // Used only for converting from OpenTelemetry to Prometheus internally.
//	  repeated double custom_values = 16;
//	}
var histogramSpec = &messageSpec{name: "histogram", fields: []fieldSpec{
	1:  {name: "count_int", wire: wireVarint},
	2:  {name: "count_float", wire: wireFixed64},
	3:  {name: "sum", wire: wireFixed64},
	4:  {name: "schema", wire: wireVarint},
	5:  {name: "zero_threshold", wire: wireFixed64},
	6:  {name: "zero_count_int", wire: wireVarint},
	7:  {name: "zero_count_float", wire: wireFixed64},
	8:  {name: "negative_spans", wire: wireBytes, sub: bucketSpanSpec},
	9:  {name: "negative_deltas", wire: wireVarint, packed: true},
	10: {name: "negative_counts", wire: wireFixed64, packed: true},
	11: {name: "positive_spans", wire: wireBytes, sub: bucketSpanSpec},
	12: {name: "positive_deltas", wire: wireVarint, packed: true},
	13: {name: "positive_counts", wire: wireFixed64, packed: true},
	14: {name: "reset_hint", wire: wireVarint},
	15: {name: "timestamp", wire: wireVarint},
	16: {name: "custom_values", wire: wireFixed64, packed: true},
}}

// bucketSpanSpec checks a BucketSpan.
//
//	message BucketSpan {
//	  sint32 offset = 1; // Gap to previous span, or starting point for 1st span (which can be negative).
//	  uint32 length = 2; // Length of consecutive buckets.
//	}
var bucketSpanSpec = &messageSpec{name: "bucket span", fields: []fieldSpec{
	1: {name: "offset", wire: wireVarint},
	2: {name: "length", wire: wireVarint},
}}
