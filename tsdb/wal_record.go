package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"
)

// A WAL record is the payload one commit logs: the series it creates,
// then its samples, so that replay always meets a series before its
// samples.
//
//	record  := section*
//	section := 0x01 count:uvarint seriesEntry*  |  0x02 count:uvarint sampleEntry*
//	seriesEntry := ref:uvarint n:uvarint (len:uvarint name len:uvarint value)*n
//	sampleEntry := ref:uvarint t:varint v:float64-bits-LE
const (
	walSeriesSection  byte = 1
	walSamplesSection byte = 2
)

var errBadWALRecord = errors.New("malformed WAL record")

type walSeries struct {
	ref  SeriesRef
	lset labels.Labels
}

type walSample struct {
	ref SeriesRef
	t   int64
	v   float64
}

// appendWALSeries appends a series section to dst.
func appendWALSeries(dst []byte, series []walSeries) []byte {
	dst = appendWALSeriesHeader(dst, len(series))
	for _, s := range series {
		dst = appendWALEntryHeader(dst, s.ref, s.lset.Len())
		s.lset.Range(func(l labels.Label) { dst = appendWALLabel(dst, l.Name, l.Value) })
	}
	return dst
}

// appendWALSeriesSyms appends the series section appendWALSeries writes
// for series' label sets, spelling each from its symbol refs in strs
// rather than building it: at ten million new series, building the label
// sets only to log them was a tenth of all the node allocated. Each
// series' symbols are live while the caller holds it.
func appendWALSeriesSyms(dst []byte, series []*memSeries, strs []string) []byte {
	dst = appendWALSeriesHeader(dst, len(series))
	for _, s := range series {
		dst = appendWALEntryHeader(dst, s.ref, s.syms.refs().labelCount())
		s.syms.refs().each(func(n, v uint32) { dst = appendWALLabel(dst, strs[n], strs[v]) })
	}
	return dst
}

// appendWALSeriesHeader appends the header of a series section of n
// entries, and nothing for none.
func appendWALSeriesHeader(dst []byte, n int) []byte {
	if n == 0 {
		return dst
	}
	return binary.AppendUvarint(append(dst, walSeriesSection), uint64(n))
}

// appendWALEntryHeader appends the start of a series entry: its ref and
// number of labels.
func appendWALEntryHeader(dst []byte, ref SeriesRef, labels int) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(dst, uint64(ref)), uint64(labels))
}

// appendWALLabel appends one label of a series entry.
func appendWALLabel(dst []byte, name, value string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	dst = append(dst, name...)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// appendWALSamples appends a samples section to dst.
func appendWALSamples(dst []byte, samples []walSample) []byte {
	if len(samples) == 0 {
		return dst
	}
	dst = append(dst, walSamplesSection)
	dst = binary.AppendUvarint(dst, uint64(len(samples)))
	for _, s := range samples {
		dst = binary.AppendUvarint(dst, uint64(s.ref))
		dst = binary.AppendVarint(dst, s.t)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.v))
	}
	return dst
}

// walRecordReader decodes a record; onSeries and onSample are called in
// record order. lset passed to onSeries is valid only during the call.
type walRecordReader struct {
	b labels.ScratchBuilder
}

func (r *walRecordReader) decode(rec []byte, onSeries func(SeriesRef, labels.Labels) error, onSample func(walSample) error) error {
	d := decbuf{b: rec}
	for len(d.b) > 0 && d.err == nil {
		typ := d.byte()
		n := d.uvarint()
		if n > uint64(len(d.b)) { // every entry takes at least one byte
			return fmt.Errorf("%w: section of %d entries in %d bytes", errBadWALRecord, n, len(d.b))
		}
		for range n {
			var err error
			switch typ {
			case walSeriesSection:
				err = r.decodeSeries(&d, onSeries)
			case walSamplesSection:
				s := walSample{ref: SeriesRef(d.uvarint()), t: d.varint(), v: math.Float64frombits(d.uint64())}
				if d.err == nil {
					err = onSample(s)
				}
			default:
				return fmt.Errorf("%w: unknown section type %d", errBadWALRecord, typ)
			}
			if err != nil {
				return err
			}
			if d.err != nil {
				break
			}
		}
	}
	return d.err
}

func (r *walRecordReader) decodeSeries(d *decbuf, onSeries func(SeriesRef, labels.Labels) error) error {
	ref := SeriesRef(d.uvarint())
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: series of %d labels in %d bytes", errBadWALRecord, n, len(d.b))
		return nil
	}
	r.b.Reset()
	for range n {
		name, value := d.str(), d.str()
		if d.err != nil {
			return nil
		}
		r.b.Add(name, value)
	}
	if d.err != nil {
		return nil
	}
	r.b.Sort()
	return onSeries(ref, r.b.Labels())
}

// decbuf reads varints and strings, remembering the first error.
type decbuf struct {
	b   []byte
	err error
}

func (d *decbuf) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errBadWALRecord, what)
	}
	d.b = nil
}

func (d *decbuf) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decbuf) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decbuf) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decbuf) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail("float")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decbuf) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
