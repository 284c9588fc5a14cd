package ring

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// The answer of the internal select endpoint (SelectPath) is a stream in
// the snappy framing format (github.com/golang/snappy NewBufferedWriter:
// chunks of at most 64 KiB, each checksummed) of frames:
//
//	frame   = kind:byte  len:uvarint  payload:len bytes
//	series  = kind 's': nlabels:uvarint (name:str value:str)*
//	          nsamples:uvarint (t value:8 bytes LE float bits)*
//	          (t: the first timestamp as a varint, then the difference to
//	          the previous one as a uvarint, at least 1)
//	string  = kind 'v': the bytes of one label name or value
//	error   = kind 'x': code:byte message:bytes (code 1: too many series)
//	end     = kind 'e': empty payload; the answer is complete
//	str     = len:uvarint bytes
//
// A series with more than maxFrameSamples samples is sent as several
// frames with the same labels, in time order. A stream that stops
// before its end frame is an error (a node that died mid-answer), never
// a short answer taken as complete.

// Frame kinds.
const (
	frameSeries = 's'
	frameString = 'v'
	frameError  = 'x'
	frameEnd    = 'e'
)

// Error codes of an error frame.
const (
	selectErrTooManySeries = 1
	selectErrOther         = 2
)

// maxFrameSamples is the most samples the encoder puts in one frame:
// 64k samples are at most ~1.2 MiB of payload.
const maxFrameSamples = 1 << 16

// Sample is one float sample of a selected series.
type Sample struct {
	T int64
	V float64
}

// AppendSeriesFrames appends the frames of one series to dst: its labels
// and samples (in time order), split every maxFrameSamples samples.
func AppendSeriesFrames(dst []byte, lset labels.Labels, samples []Sample) []byte {
	return appendSeriesFrames(dst, encodeFrameLabels(nil, lset), samples)
}

func appendSeriesFrames(dst []byte, fl frameLabels, samples []Sample) []byte {
	for {
		n := min(len(samples), maxFrameSamples)
		dst = appendSeriesFrame(dst, fl, samples[:n])
		samples = samples[n:]
		if len(samples) == 0 {
			return dst
		}
	}
}

// beginFrame appends a frame's kind and room for its length, and
// returns where the length goes; endFrame writes it once the payload is
// appended and moves the payload down to it.
func beginFrame(dst []byte, kind byte) ([]byte, int) {
	dst = append(dst, kind)
	lenAt := len(dst)
	return append(dst, make([]byte, binary.MaxVarintLen64)...), lenAt
}

func endFrame(dst []byte, lenAt int) []byte {
	start := lenAt + binary.MaxVarintLen64
	payload := len(dst) - start
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(payload))
	copy(dst[lenAt:], hdr[:h])
	copy(dst[lenAt+h:], dst[start:])
	return dst[:lenAt+h+payload]
}

// frameLabels is a label set as it starts a series or chunk frame: n
// pairs, encoded (appendLabelPair).
type frameLabels struct {
	n     int
	pairs []byte
}

// appendLabelPair appends one label as a frame holds it.
func appendLabelPair(dst []byte, name, value string) []byte {
	return appendStr(appendStr(dst, name), value)
}

// encodeFrameLabels encodes lset into buf (reused).
func encodeFrameLabels(buf []byte, lset labels.Labels) frameLabels {
	buf = buf[:0]
	lset.Range(func(l labels.Label) { buf = appendLabelPair(buf, l.Name, l.Value) })
	return frameLabels{n: lset.Len(), pairs: buf}
}

// appendFrameLabels appends the label set that starts a series or chunk
// frame.
func appendFrameLabels(dst []byte, fl frameLabels) []byte {
	dst = binary.AppendUvarint(dst, uint64(fl.n))
	return append(dst, fl.pairs...)
}

func appendSeriesFrame(dst []byte, fl frameLabels, samples []Sample) []byte {
	dst, lenAt := beginFrame(dst, frameSeries)
	dst = appendFrameLabels(dst, fl)
	dst = binary.AppendUvarint(dst, uint64(len(samples)))
	for i, s := range samples {
		if i == 0 {
			dst = binary.AppendVarint(dst, s.T)
		} else {
			// Increasing: the unsigned difference is exact even when the
			// signed one would overflow.
			dst = binary.AppendUvarint(dst, uint64(s.T)-uint64(samples[i-1].T))
		}
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.V))
	}
	return endFrame(dst, lenAt)
}

// AppendStringFrame appends a frame of one label name or value.
func AppendStringFrame(dst []byte, s string) []byte {
	dst = append(dst, frameString)
	return appendStr(dst, s)
}

// AppendErrorFrame appends an error frame; tooManySeries marks the
// node's series limit.
func AppendErrorFrame(dst []byte, tooManySeries bool, msg string) []byte {
	code := byte(selectErrOther)
	if tooManySeries {
		code = selectErrTooManySeries
	}
	if len(msg) > maxMessageBytes {
		msg = msg[:maxMessageBytes]
	}
	dst = append(dst, frameError)
	dst = binary.AppendUvarint(dst, uint64(1+len(msg)))
	dst = append(dst, code)
	return append(dst, msg...)
}

// AppendEndFrame appends the frame that ends a complete answer.
func AppendEndFrame(dst []byte) []byte { return append(dst, frameEnd, 0) }

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// NewSelectWriter returns the compressed stream an answer is written to;
// the caller closes it (Close flushes) before the answer ends.
func NewSelectWriter(w io.Writer) *snappy.Writer { return snappy.NewBufferedWriter(w) }

// SelectLimits bound what a SelectDecoder reads, checked before it
// allocates.
type SelectLimits struct {
	MaxFrameBytes int   // one frame's payload
	MaxBytes      int64 // the whole decompressed answer
	MaxSeries     int   // series frames (a split series counts per frame)
	MaxStrings    int   // string frames
	// Shared, when set, is charged every frame too, and the decoder
	// fails once it passes SharedMax: one budget for the answers of all
	// the nodes a read asks at once.
	Shared    *atomic.Int64
	SharedMax int64
}

// SelectDecoder reads an answer of the select endpoint frame by frame.
// It is not safe for concurrent use.
type SelectDecoder struct {
	r      *bufio.Reader
	lim    SelectLimits
	read   int64
	series int
	strs   int
	buf    []byte
	sb     labels.ScratchBuilder
	done   bool
}

// NewSelectDecoder decodes the compressed stream r within lim.
func NewSelectDecoder(r io.Reader, lim SelectLimits) *SelectDecoder {
	return newFrameDecoder(snappy.NewReader(r), lim)
}

func newFrameDecoder(r io.Reader, lim SelectLimits) *SelectDecoder {
	return &SelectDecoder{r: bufio.NewReaderSize(r, 32<<10), lim: lim}
}

// Frame is one decoded frame. Labels, Samples and String are valid
// until the next call of Next; the caller copies what it keeps (Labels
// are its own: they never alias the decoder's buffer).
type Frame struct {
	Kind    byte // 's' series, 'k' chunks, 'v' string, 'e' end (then Next returns io.EOF)
	Labels  labels.Labels
	Samples []Sample
	Chunks  []tsdb.Chunk // their Data alias the decoder's buffer
	String  string
	Digests []SeriesDigest
}

// Next decodes the next frame into f. It returns io.EOF after the end
// frame, an error wrapping ErrBadSelectStream for a malformed or
// truncated stream or one past the limits, and a *SelectError for an
// error frame.
func (d *SelectDecoder) Next(f *Frame) error {
	if d.done {
		return io.EOF
	}
	kind, err := d.r.ReadByte()
	if err != nil {
		return d.streamErr("frame kind", err)
	}
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		return d.streamErr("frame length", err)
	}
	if n > uint64(d.lim.MaxFrameBytes) {
		return fmt.Errorf("%w: frame of %d bytes, more than the limit of %d", ErrBadSelectStream, n, d.lim.MaxFrameBytes)
	}
	if d.read += int64(n) + 2; d.read > d.lim.MaxBytes {
		return fmt.Errorf("%w: answer larger than the limit of %d bytes", ErrBadSelectStream, d.lim.MaxBytes)
	}
	if d.lim.Shared != nil && d.lim.Shared.Add(int64(n)+2) > d.lim.SharedMax {
		return fmt.Errorf("%w: the nodes' answers to one read are larger than the limit of %d bytes", ErrReadTooLarge, d.lim.SharedMax)
	}
	if cap(d.buf) < int(n) {
		d.buf = make([]byte, n)
	}
	d.buf = d.buf[:n]
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		return d.streamErr("frame payload", err)
	}
	*f = Frame{Kind: kind, Samples: f.Samples[:0], Chunks: f.Chunks[:0], Digests: f.Digests[:0]}
	switch kind {
	case frameSeries, frameChunks:
		if d.series++; d.series > d.lim.MaxSeries {
			return fmt.Errorf("%w: more than %d series frames", ErrBadSelectStream, d.lim.MaxSeries)
		}
		if kind == frameChunks {
			f.Labels, f.Chunks, err = decodeChunkSeries(d.buf, &d.sb, f.Chunks)
		} else {
			f.Labels, f.Samples, err = decodeSeries(d.buf, &d.sb, f.Samples)
		}
		return err
	case frameDigests:
		if f.Digests, err = decodeDigests(d.buf, f.Digests); err != nil {
			return err
		}
		if d.series += len(f.Digests); d.series > d.lim.MaxSeries {
			return fmt.Errorf("%w: more than %d series digests", ErrBadSelectStream, d.lim.MaxSeries)
		}
		return nil
	case frameString:
		if d.strs++; d.strs > d.lim.MaxStrings {
			return fmt.Errorf("%w: more than %d strings", ErrBadSelectStream, d.lim.MaxStrings)
		}
		f.String = string(d.buf)
		return nil
	case frameError:
		if len(d.buf) == 0 {
			return fmt.Errorf("%w: empty error frame", ErrBadSelectStream)
		}
		d.done = true
		return &SelectError{TooManySeries: d.buf[0] == selectErrTooManySeries, Message: message(d.buf[1:])}
	case frameEnd:
		if n != 0 {
			return fmt.Errorf("%w: end frame with a payload", ErrBadSelectStream)
		}
		d.done = true
		return io.EOF
	}
	return fmt.Errorf("%w: unknown frame kind %#x", ErrBadSelectStream, kind)
}

func (d *SelectDecoder) streamErr(what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %s: %w", ErrBadSelectStream, what, err)
}

// SelectError is an error frame: the node could not answer.
type SelectError struct {
	TooManySeries bool
	Message       string
}

func (e *SelectError) Error() string { return e.Message }

// decodeSeries decodes a series payload: labels sorted and unique,
// timestamps strictly increasing, every length checked against what is
// left before anything is allocated.
func decodeSeries(b []byte, sb *labels.ScratchBuilder, samples []Sample) (labels.Labels, []Sample, error) {
	bad := func(what string) (labels.Labels, []Sample, error) {
		return labels.EmptyLabels(), samples, fmt.Errorf("%w: series frame: %s", ErrBadSelectStream, what)
	}
	lset, b, err := decodeLabels(b, sb)
	if err != nil {
		return bad(err.Error())
	}
	ns, b, ok := uvarint(b)
	if !ok || ns > uint64(len(b))/9 {
		return bad("sample count")
	}
	if uint64(cap(samples)) < ns {
		samples = make([]Sample, 0, ns)
	}
	samples = samples[:0]
	t := int64(0)
	for i := range ns {
		var n int
		if i == 0 {
			t, n = binary.Varint(b)
		} else {
			var d uint64
			d, n = binary.Uvarint(b)
			if n > 0 && (d == 0 || d > uint64(math.MaxInt64)-uint64(t)) {
				return bad("timestamps not increasing, or past the largest")
			}
			t = int64(uint64(t) + d)
		}
		if n <= 0 || len(b)-n < 8 {
			return bad("sample")
		}
		samples = append(samples, Sample{T: t, V: math.Float64frombits(binary.LittleEndian.Uint64(b[n:]))})
		b = b[n+8:]
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return lset, samples, nil
}

// decodeLabels decodes the label set that starts a series or chunk
// frame: names not empty, sorted and unique. It returns what follows.
func decodeLabels(b []byte, sb *labels.ScratchBuilder) (labels.Labels, []byte, error) {
	nl, b, ok := uvarint(b)
	if !ok || nl > uint64(len(b))/2 {
		return labels.EmptyLabels(), b, errors.New("label count")
	}
	sb.Reset()
	prev := ""
	for i := range nl {
		var name, value string
		if name, b, ok = strAlias(b); !ok {
			return labels.EmptyLabels(), b, errors.New("label name")
		}
		if value, b, ok = strAlias(b); !ok {
			return labels.EmptyLabels(), b, errors.New("label value")
		}
		if name == "" || (i > 0 && name <= prev) {
			return labels.EmptyLabels(), b, errors.New("label names empty, unsorted or repeated")
		}
		prev = name
		sb.Add(name, value)
	}
	return sb.Labels(), b, nil
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

// strAlias reads a length-prefixed string without copying it: it aliases
// b, so it is valid only while b is. decodeSeries hands such strings to a
// ScratchBuilder,
// whose Labels copies them into the label set's own string (the default
// stringlabels build, which etcdgate uses), before the frame buffer is
// reused: a series costs one allocation for its labels, not one per name
// and value.
func strAlias(b []byte) (string, []byte, bool) {
	n, b, ok := uvarint(b)
	if !ok || n > uint64(len(b)) {
		return "", b, false
	}
	if n == 0 {
		return "", b, true
	}
	return unsafe.String(&b[0], int(n)), b[n:], true
}
