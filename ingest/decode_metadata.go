package ingest

import "fmt"

// droppedMetadata describes a metadata entry dropped for a string longer
// than DecodeLimits.MaxMetadataBytes, for the error that reports it.
type droppedMetadata struct {
	metric string // aliases src; formatted only into the error
	field  string // "metric name", "help" or "unit"
	bytes  int
}

// DroppedMetadataError returns nil when no metadata entry was dropped,
// and otherwise an error wrapping ErrInvalidSeries that names the first
// dropped entry and counts them. limit is DecodeLimits.MaxMetadataBytes.
func (wr *WriteRequest) DroppedMetadataError(limit int) error {
	if wr.DroppedMetadata == 0 {
		return nil
	}
	d := wr.droppedMeta
	return invalid(reasonMetadataTooLong, "%d metadata entries dropped; first: %s of metric %.200q is %d bytes, longer than the limit of %d",
		wr.DroppedMetadata, d.field, d.metric, d.bytes, limit)
}

// addMetadata keeps md within the decode limits: an entry without a
// metric name is left out, one with a string past MaxMetadataBytes is
// dropped and counted, and the count is checked before the buffer grows.
func (wr *WriteRequest) addMetadata(md Metadata) error {
	if md.Metric == "" {
		return nil
	}
	if limit := wr.lim.MaxMetadataBytes; limit > 0 {
		field, n := "", 0
		switch {
		case len(md.Metric) > limit:
			field, n = "metric name", len(md.Metric)
		case len(md.Help) > limit:
			field, n = "help", len(md.Help)
		case len(md.Unit) > limit:
			field, n = "unit", len(md.Unit)
		}
		if field != "" {
			if wr.DroppedMetadata == 0 {
				wr.droppedMeta = droppedMetadata{metric: md.Metric, field: field, bytes: n}
			}
			wr.DroppedMetadata++
			return nil
		}
	}
	if len(wr.Metadata) == cap(wr.Metadata) {
		var err error
		if wr.Metadata, err = grow(wr, wr.Metadata, wr.lim.MaxMetadata, MetadataBytes, "metadata entries"); err != nil {
			return err
		}
	}
	wr.Metadata = append(wr.Metadata, md)
	return nil
}

// decodeMetricMetadata decodes the 1.0 MetricMetadata in b[i:] (b ends
// where it ends) and keeps it. A repeated field overwrites the earlier
// one, as in gogo; the type is an int32 enum, truncated as gogo does.
//
//	message MetricMetadata {
//	  enum MetricType {
//	    UNKNOWN        = 0;
//	    COUNTER        = 1;
//	    GAUGE          = 2;
//	    HISTOGRAM      = 3;
//	    GAUGEHISTOGRAM = 4;
//	    SUMMARY        = 5;
//	    INFO           = 6;
//	    STATESET       = 7;
//	  }
//
//	  // Represents the metric type, these match the set from Prometheus.
//	  // Refer to github.com/prometheus/common/model/metadata.go for details.
//	  MetricType type = 1;
//	  string metric_family_name = 2;
//	  string help = 4;
//	  string unit = 5;
//	}
func (wr *WriteRequest) decodeMetricMetadata(b []byte, i int) error {
	var md Metadata
	var typ int32
	for i < len(b) {
		off := i
		field, wt, next, err := readTag(b, i)
		if err != nil {
			return err
		}
		switch field {
		case 1:
			if wt != wireVarint {
				return errWireType("type", off, wt, "0")
			}
			var v uint64
			if v, i, err = uvarint(b, next); err != nil {
				return err
			}
			typ = int32(v)
		case 2, 4, 5:
			start, end, err := lenField(b, off, next, wt, metadataFieldNames[field])
			if err != nil {
				return err
			}
			s := aliasString(b[start:end])
			switch field {
			case 2:
				md.Metric = s
			case 4:
				md.Help = s
			default:
				md.Unit = s
			}
			i = end
		default:
			if i, err = skipField(b, off, next, wt); err != nil {
				return err
			}
		}
	}
	md.Type = metricTypeName(typ)
	if err := wr.addMetadata(md); err != nil {
		return err
	}
	return nil
}

var metadataFieldNames = [6]string{2: "metric_family_name", 4: "help", 5: "unit"}

// errRef is the error of a 2.0 symbol reference out of range.
func errRef(what string, ref uint32, symbols int) error {
	return fmt.Errorf("%s: symbol reference %d out of range of %d symbols", what, ref, symbols)
}
