package ingest

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/prometheus/common/model"
)

// This file decodes remote-write 2.0 (io.prometheus.write.v2.Request) into
// the same WriteRequest as 1.0, by hand and with the wire helpers of
// decode.go: a 2.0 request allocates nothing per sample either. It accepts
// and refuses the inputs that the gogo-generated writev2 Unmarshal accepts
// and refuses, and in addition refuses what is well-formed protobuf but
// not a valid request: a symbols table whose first entry is not "", a
// symbol reference past the table, labels_refs of odd length.
// FuzzUnmarshalV2 holds it to that.
//
// Labels become Label pairs aliasing the symbols, which alias src; they
// are validated later exactly as 1.0 labels are (empty names, order,
// duplicates, __name__). A sample's start timestamp (the "created
// timestamp") is decoded and checked, not stored: a series with a start
// timestamp after its sample's timestamp is counted in
// TimeSeries.BadStartTimestamps and refused. Histograms and exemplars are
// checked and counted, as in 1.0.
//
//	message Request {
//	  reserved 1 to 3;
//	  repeated string symbols = 4;
//	  repeated TimeSeries timeseries = 5 [(gogoproto.nullable) = false];
//	}

// UnmarshalV2 decodes src (an uncompressed 2.0 Request) into wr, as
// Unmarshal does a 1.0 WriteRequest.
func (wr *WriteRequest) UnmarshalV2(src []byte) error {
	return wr.UnmarshalV2Limited(src, DecodeLimits{})
}

// UnmarshalV2Limited is UnmarshalV2 within lim, as UnmarshalLimited.
func (wr *WriteRequest) UnmarshalV2Limited(src []byte, lim DecodeLimits) error {
	return wr.unmarshalWith(src, lim, wr.unmarshalV2)
}

// unmarshalV2 reads the symbols first, wherever they are in src, since a
// series may refer to a symbol that follows it; then it decodes the
// series.
func (wr *WriteRequest) unmarshalV2(src []byte) error {
	for i := 0; i < len(src); {
		off := i
		field, wt, next, err := readTag(src, i)
		if err != nil {
			return err
		}
		switch field {
		case 4:
			start, end, err := lenField(src, off, next, wt, "symbols")
			if err != nil {
				return fmt.Errorf("symbol %d: %w", len(wr.symbols), err)
			}
			if len(wr.symbols) == cap(wr.symbols) {
				if wr.symbols, err = grow(wr, wr.symbols, wr.lim.MaxSymbols, SymbolBytes, "symbols"); err != nil {
					return err
				}
			}
			wr.symbols = append(wr.symbols, aliasString(src[start:end]))
			i = end
		case 5:
			_, end, err := lenField(src, off, next, wt, "timeseries")
			if err != nil {
				return err
			}
			i = end
		default:
			if i, err = skipField(src, off, next, wt); err != nil {
				return err
			}
		}
	}
	if len(wr.symbols) > 0 && wr.symbols[0] != "" {
		return fmt.Errorf("symbols[0] is %.64q, must be the empty string", wr.symbols[0])
	}
	for i := 0; i < len(src); {
		off := i
		field, wt, next, err := readTag(src, i)
		if err != nil {
			return err
		}
		if field == 5 {
			n := len(wr.Timeseries)
			start, end, _ := lenField(src, off, next, wt, "timeseries") // checked above
			if err := wr.decodeTimeSeriesV2(src[:end], start); err != nil {
				return fmt.Errorf("timeseries %d: %w", n, err)
			}
			i = end
			continue
		}
		if i, err = skipField(src, off, next, wt); err != nil {
			return err
		}
	}
	return nil
}

// symbol resolves a symbol reference. Reference 0 is "" even in a request
// without symbols: the default of an unset reference.
func (wr *WriteRequest) symbol(ref uint32) (string, bool) {
	if int64(ref) < int64(len(wr.symbols)) {
		return wr.symbols[ref], true
	}
	return "", ref == 0
}

// refs reads the labels_refs at b[i:], one varint (wire type 0) or a
// packed run (2), calling add for each reference. Like gogo, an element
// of a packed run is bounded by the message, not by the run, and each is
// truncated to 32 bits.
func refs(b []byte, off, i int, wt uint8, add func(uint32) error) (int, error) {
	switch wt {
	case wireVarint:
		v, next, err := uvarint(b, i)
		if err == nil {
			err = add(uint32(v))
		}
		return next, err
	case wireBytes:
		start, end, err := readLen(b, i)
		if err != nil {
			return 0, err
		}
		for i = start; i < end; {
			var v uint64
			if v, i, err = uvarint(b, i); err != nil {
				return 0, err
			}
			if err = add(uint32(v)); err != nil {
				return 0, err
			}
		}
		return i, nil
	}
	return 0, errWireType("labels_refs", off, wt, "0 or 2")
}

// labelRefs is refs for a series' labels_refs, calling addLabelRef
// directly: the common packed run of one-byte references takes no
// indirect call per reference.
func (wr *WriteRequest) labelRefs(b []byte, off, i int, wt uint8) (int, error) {
	if wt != wireBytes {
		return refs(b, off, i, wt, wr.addLabelRef)
	}
	start, end, err := readLen(b, i)
	if err != nil {
		return 0, err
	}
	for i = start; i < end; {
		var v uint64
		if b[i] < 0x80 {
			v, i = uint64(b[i]), i+1
		} else if v, i, err = uvarintSlow(b, i); err != nil {
			return 0, err
		}
		if err = wr.addLabelRef(uint32(v)); err != nil {
			return 0, err
		}
	}
	return i, nil
}

// seriesV2 is the state of the 2.0 series being decoded, in the
// WriteRequest so that addLabelRef needs no closure.
type seriesV2 struct {
	l0      int    // the series' first label in wr.labels
	name    uint32 // a label name's reference, waiting for its value
	pending bool
}

// addLabelRef takes the next reference of a series' labels_refs: a name,
// or the value that completes a label.
func (wr *WriteRequest) addLabelRef(ref uint32) error {
	s := &wr.v2
	if !s.pending {
		s.name, s.pending = ref, true
		return nil
	}
	s.pending = false
	name, ok := wr.symbol(s.name)
	if !ok {
		return errRef(fmt.Sprintf("label %d name", len(wr.labels)-s.l0), s.name, len(wr.symbols))
	}
	value, ok := wr.symbol(ref)
	if !ok {
		return errRef(fmt.Sprintf("label %d value", len(wr.labels)-s.l0), ref, len(wr.symbols))
	}
	return wr.addLabel(Label{Name: name, Value: value})
}

// decodeTimeSeriesV2 appends the series in b[i:] to wr; b ends where the
// series ends.
//
//	message TimeSeries {
//	  repeated uint32 labels_refs = 1;
//	  repeated Sample samples = 2 [(gogoproto.nullable) = false];
//	  repeated Histogram histograms = 3 [(gogoproto.nullable) = false];
//	  repeated Exemplar exemplars = 4 [(gogoproto.nullable) = false];
//	  Metadata metadata = 5 [(gogoproto.nullable) = false];
//	  reserved 6;
//	}
func (wr *WriteRequest) decodeTimeSeriesV2(b []byte, i int) error {
	if len(wr.Timeseries) == cap(wr.Timeseries) {
		var err error
		if wr.Timeseries, err = grow(wr, wr.Timeseries, wr.lim.MaxSeries, SeriesBytes, "series"); err != nil {
			return err
		}
	}
	wr.Timeseries = append(wr.Timeseries, TimeSeries{})
	ts := &wr.Timeseries[len(wr.Timeseries)-1]
	l0, s0 := len(wr.labels), len(wr.samples)
	sv := &wr.v2
	sv.l0, sv.pending = l0, false
	var md metadataV2
	for i < len(b) {
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		switch field {
		case 1:
			if i, err = wr.labelRefs(b, off, next, wt); err != nil {
				return err
			}
		case 2:
			var s Sample
			var st int64
			start, end, err := lenField(b, off, next, wt, "samples")
			if err == nil {
				s, st, err = decodeSampleV2(b[:end], start)
			}
			if err != nil {
				return fmt.Errorf("sample %d: %w", len(wr.samples)-s0, err)
			}
			if st != 0 && st > s.Timestamp {
				ts.BadStartTimestamps++
			}
			if err := wr.addSample(s); err != nil {
				return err
			}
			i = end
		case 3:
			if i, err = histogramV2Spec.validateField(b, off, next, wt, ts.Histograms); err != nil {
				return err
			}
			ts.Histograms++
		case 4:
			start, end, err := lenField(b, off, next, wt, "exemplars")
			if err == nil {
				err = wr.checkExemplarV2(b[:end], start)
			}
			if err != nil {
				return fmt.Errorf("exemplar %d: %w", ts.Exemplars, err)
			}
			ts.Exemplars++
			i = end
		case 5:
			start, end, err := lenField(b, off, next, wt, "metadata")
			if err == nil {
				err = md.decode(b[:end], start)
			}
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			i = end
		default:
			if i, err = skipField(b, off, next, wt); err != nil {
				return err
			}
		}
	}
	if sv.pending {
		return fmt.Errorf("labels_refs has an odd number of references (%d)", 2*(len(wr.labels)-l0)+1)
	}
	// As in decodeTimeSeries, only the lengths count until fixSlices.
	ts.Labels = wr.labels[l0:]
	ts.Samples = wr.samples[s0:]
	return wr.addMetadataV2(ts.Labels, &md)
}

// metadataV2 is a 2.0 series' metadata as decoded: a repeated metadata
// field merges into it, as gogo merges a repeated message field.
//
//	message Metadata {
//	  MetricType type = 1;
//	  uint32 help_ref = 3;
//	  uint32 unit_ref = 4;
//	}
type metadataV2 struct {
	typ        int32
	help, unit uint32
}

func (md *metadataV2) decode(b []byte, i int) error {
	for i < len(b) {
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		switch field {
		case 1, 3, 4:
			if wt != wireVarint {
				return errWireType(metadataV2FieldNames[field], off, wt, "0")
			}
			var v uint64
			if v, i, err = uvarint(b, next); err != nil {
				return err
			}
			switch field {
			case 1:
				md.typ = int32(v)
			case 3:
				md.help = uint32(v)
			default:
				md.unit = uint32(v)
			}
		default:
			if i, err = skipField(b, off, next, wt); err != nil {
				return err
			}
		}
	}
	return nil
}

var metadataV2FieldNames = [5]string{1: "type", 3: "help_ref", 4: "unit_ref"}

// addMetadataV2 resolves a series' metadata and keeps it under the
// series' metric name, unless it is empty (no type, help or unit), the
// series has no metric name, or it equals the previous entry (the series
// of one metric family usually follow each other).
func (wr *WriteRequest) addMetadataV2(ls []Label, md *metadataV2) error {
	help, ok := wr.symbol(md.help)
	if !ok {
		return errRef("metadata help_ref", md.help, len(wr.symbols))
	}
	unit, ok := wr.symbol(md.unit)
	if !ok {
		return errRef("metadata unit_ref", md.unit, len(wr.symbols))
	}
	if md.typ == 0 && help == "" && unit == "" {
		return nil
	}
	m := Metadata{Type: metricTypeName(md.typ), Help: help, Unit: unit}
	for _, l := range ls {
		if l.Name == model.MetricNameLabel {
			m.Metric = metricFamilyName(l.Value, m.Type)
			break
		}
	}
	if n := len(wr.Metadata); n > 0 && wr.Metadata[n-1] == m {
		return nil
	}
	return wr.addMetadata(m)
}

// decodeSampleV2 decodes the sample in b[i:]; b ends where the sample
// ends. It returns the start timestamp apart (0: unset).
//
//	message Sample {
//	  double value = 1;
//	  int64 timestamp = 2;
//	  int64 start_timestamp = 3;
//	}
func decodeSampleV2(b []byte, i int) (Sample, int64, error) {
	var s Sample
	var st int64
	for i < len(b) {
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return Sample{}, 0, err
		}
		switch field {
		case 1:
			if wt != wireFixed64 {
				return Sample{}, 0, errWireType("value", off, wt, "1")
			}
			if len(b)-next < 8 {
				return Sample{}, 0, errTruncated("double", next, len(b))
			}
			s.Value = math.Float64frombits(binary.LittleEndian.Uint64(b[next:]))
			i = next + 8
		case 2, 3:
			if wt != wireVarint {
				return Sample{}, 0, errWireType(sampleV2FieldNames[field], off, wt, "0")
			}
			var v uint64
			if v, i, err = uvarint(b, next); err != nil {
				return Sample{}, 0, err
			}
			if field == 2 {
				s.Timestamp = int64(v)
			} else {
				st = int64(v)
			}
		default:
			if i, err = skipField(b, off, next, wt); err != nil {
				return Sample{}, 0, err
			}
		}
	}
	return s, st, nil
}

var sampleV2FieldNames = [4]string{2: "timestamp", 3: "start_timestamp"}

// checkExemplarV2 checks the exemplar in b[i:], its label references
// included; exemplars are counted, not kept.
//
//	message Exemplar {
//	  repeated uint32 labels_refs = 1;
//	  double value = 2;
//	  int64 timestamp = 3;
//	}
func (wr *WriteRequest) checkExemplarV2(b []byte, i int) error {
	n := 0
	for i < len(b) {
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		switch field {
		case 1:
			i, err = refs(b, off, next, wt, func(ref uint32) error {
				n++
				if _, ok := wr.symbol(ref); !ok {
					return errRef("labels_refs", ref, len(wr.symbols))
				}
				return nil
			})
		case 2:
			if wt != wireFixed64 {
				return errWireType("value", off, wt, "1")
			}
			i, err = skipFixed(b, next, 8)
		case 3:
			if wt != wireVarint {
				return errWireType("timestamp", off, wt, "0")
			}
			_, i, err = uvarint(b, next)
		default:
			i, err = skipField(b, off, next, wt)
		}
		if err != nil {
			return err
		}
	}
	if n%2 != 0 {
		return fmt.Errorf("labels_refs has an odd number of references (%d)", n)
	}
	return nil
}

// histogramV2Spec checks a 2.0 Histogram: the 1.0 Histogram's fields and
// start_timestamp (17).
var histogramV2Spec = func() *messageSpec {
	fields := make([]fieldSpec, 18)
	copy(fields, histogramSpec.fields)
	fields[17] = fieldSpec{name: "start_timestamp", wire: wireVarint}
	return &messageSpec{name: "histogram", fields: fields}
}()
