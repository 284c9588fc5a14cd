package ring

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

var testSelectLimits = SelectLimits{MaxFrameBytes: 4 << 20, MaxBytes: 64 << 20, MaxSeries: 1000, MaxStrings: 1000}

func samplesFrom(t0, n int) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = Sample{T: int64(t0 + i*15000), V: float64(i) / 3}
	}
	return out
}

// decodeAll decodes a compressed stream into a result.
func decodeAll(b []byte, lim SelectLimits) (*SelectResult, error) {
	res := &SelectResult{}
	return res, decodeSelect(NewSelectDecoder(bytes.NewReader(b), lim), res)
}

// compressed frames: the stream an endpoint writes.
func compressed(t testing.TB, frames []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewSelectWriter(&buf)
	if _, err := w.Write(frames); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSelectCodecRoundTrip(t *testing.T) {
	series := []SelectedSeries{
		{Labels: labels.FromStrings("__name__", "up", "job", "etcd"), Samples: samplesFrom(-30000, 3)},
		{Labels: labels.FromStrings("__name__", "up", "job", "k8s", "x", "ünïcode\x00"), Samples: nil},
		{Labels: labels.FromStrings("a", ""), Samples: []Sample{{T: math.MinInt64, V: math.NaN()}, {T: 0, V: math.Inf(-1)}, {T: math.MaxInt64, V: -0}}},
		// Longer than one frame: comes back as several entries.
		{Labels: labels.FromStrings("__name__", "long"), Samples: samplesFrom(0, maxFrameSamples*2+5)},
	}
	var frames []byte
	for _, s := range series {
		frames = AppendSeriesFrames(frames, s.Labels, s.Samples)
	}
	frames = AppendStringFrame(frames, "value-1")
	frames = AppendStringFrame(frames, "")
	frames = AppendEndFrame(frames)
	res, err := decodeAll(compressed(t, frames), testSelectLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 6 {
		t.Fatalf("%d series entries, want 6 (the long series in 3 frames)", len(res.Series))
	}
	merged, err := mergeSeries([]*SelectResult{res}, 0, true, math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(series, func(a, b SelectedSeries) int { return labels.Compare(a.Labels, b.Labels) })
	if len(merged) != len(series) {
		t.Fatalf("%d series after merge, want %d", len(merged), len(series))
	}
	for i, s := range series {
		if !labels.Equal(merged[i].lset, s.Labels) {
			t.Fatalf("series %d: labels %s, want %s", i, merged[i].lset, s.Labels)
		}
		if !sameSamples(merged[i].samples, s.Samples) {
			t.Fatalf("series %s: %d samples differ from the %d sent", s.Labels, len(merged[i].samples), len(s.Samples))
		}
	}
	if !slices.Equal(res.Strings, []string{"value-1", ""}) {
		t.Fatalf("strings %q", res.Strings)
	}
}

// sameSamples compares bit for bit (NaN equal to NaN).
func sameSamples(a, b []Sample) bool {
	return slices.EqualFunc(a, b, func(x, y Sample) bool {
		return x.T == y.T && math.Float64bits(x.V) == math.Float64bits(y.V)
	})
}

func TestSelectDecoderMalformed(t *testing.T) {
	good := AppendSeriesFrames(nil, labels.FromStrings("a", "b"), samplesFrom(0, 2))
	seriesFrame := func(payload []byte) []byte {
		return append(append([]byte{frameSeries}, byte(len(payload))), payload...)
	}
	for _, c := range []struct {
		name   string
		frames []byte // compressed before decoding
		raw    []byte // decoded as is (not a snappy stream)
		lim    SelectLimits
		want   error
	}{
		{name: "no end frame", frames: good, want: ErrBadSelectStream},
		{name: "empty", frames: []byte{}, want: ErrBadSelectStream},
		{name: "cut in a frame", frames: good[:len(good)-3], want: ErrBadSelectStream},
		{name: "not snappy", raw: []byte("this is no snappy stream"), want: ErrBadSelectStream},
		{name: "frame over limit", frames: AppendEndFrame(good), lim: SelectLimits{MaxFrameBytes: 8, MaxBytes: 1 << 20, MaxSeries: 10}, want: ErrBadSelectStream},
		{name: "answer over limit", frames: AppendEndFrame(append(slices.Clone(good), good...)), lim: SelectLimits{MaxFrameBytes: 1 << 20, MaxBytes: int64(len(good)) + 4, MaxSeries: 10}, want: ErrBadSelectStream},
		{name: "too many series", frames: AppendEndFrame(append(slices.Clone(good), good...)), lim: SelectLimits{MaxFrameBytes: 1 << 20, MaxBytes: 1 << 20, MaxSeries: 1}, want: ErrBadSelectStream},
		{name: "too many strings", frames: AppendEndFrame(AppendStringFrame(AppendStringFrame(nil, "a"), "b")), lim: SelectLimits{MaxFrameBytes: 1 << 20, MaxBytes: 1 << 20, MaxStrings: 1}, want: ErrBadSelectStream},
		{name: "unknown kind", frames: AppendEndFrame([]byte{'z', 0}), want: ErrBadSelectStream},
		{name: "end with payload", frames: []byte{frameEnd, 1, 0}, want: ErrBadSelectStream},
		{name: "label count lies", frames: AppendEndFrame(seriesFrame([]byte{100, 1, 'a', 1, 'b', 0})), want: ErrBadSelectStream},
		{name: "labels unsorted", frames: AppendEndFrame(seriesFrame([]byte{2, 1, 'b', 0, 1, 'a', 0, 0})), want: ErrBadSelectStream},
		{name: "label repeated", frames: AppendEndFrame(seriesFrame([]byte{2, 1, 'a', 0, 1, 'a', 0, 0})), want: ErrBadSelectStream},
		{name: "empty label name", frames: AppendEndFrame(seriesFrame([]byte{1, 0, 1, 'v', 0})), want: ErrBadSelectStream},
		{name: "string longer than frame", frames: AppendEndFrame(seriesFrame([]byte{1, 9, 'a'})), want: ErrBadSelectStream},
		{name: "sample count lies", frames: AppendEndFrame(seriesFrame([]byte{1, 1, 'a', 0, 200, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0})), want: ErrBadSelectStream},
		{name: "timestamps not increasing", frames: AppendEndFrame(seriesFrame([]byte{1, 1, 'a', 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})), want: ErrBadSelectStream},
		{name: "trailing bytes", frames: AppendEndFrame(seriesFrame([]byte{1, 1, 'a', 0, 0, 7})), want: ErrBadSelectStream},
		{name: "empty error frame", frames: []byte{frameError, 0}, want: ErrBadSelectStream},
	} {
		t.Run(c.name, func(t *testing.T) {
			lim := c.lim
			if lim.MaxFrameBytes == 0 {
				lim = testSelectLimits
			}
			b := c.raw
			if b == nil {
				b = compressed(t, c.frames)
			}
			_, err := decodeAll(b, lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}

func TestSelectErrorFrame(t *testing.T) {
	frames := AppendErrorFrame(AppendSeriesFrames(nil, labels.FromStrings("a", "b"), nil), true, "the selector matches more than 10 series")
	_, err := decodeAll(compressed(t, frames), testSelectLimits)
	var se *SelectError
	if !errors.As(err, &se) || !se.TooManySeries || se.Message != "the selector matches more than 10 series" {
		t.Fatalf("error %v, want the too-many-series error frame", err)
	}
}

// FuzzSelectDecoder feeds arbitrary frames to the decoder: it must not
// panic or allocate past its limits, and whatever series it accepts
// encode back to frames that decode to the same series.
func FuzzSelectDecoder(f *testing.F) {
	f.Add(AppendEndFrame(AppendSeriesFrames(nil, labels.FromStrings("__name__", "up", "job", "etcd"), samplesFrom(0, 5))))
	f.Add(AppendEndFrame(AppendStringFrame(AppendStringFrame(nil, "a"), "b")))
	f.Add(AppendErrorFrame(nil, true, "limit"))
	f.Add(AppendSeriesFrames(nil, labels.FromStrings("a", "b"), []Sample{{T: -5, V: 1}, {T: 1 << 40, V: 2}}))
	f.Add([]byte{frameSeries, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{frameSeries, 3, 1, 1, 'a'})
	f.Add(AppendEndFrame(appendDigestFrame(nil, []SeriesDigest{{Key: 1, Digest: 2}, {Key: math.MaxUint64, Digest: 0}})))
	f.Add([]byte{frameDigests, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Fuzz(func(t *testing.T, in []byte) {
		lim := SelectLimits{MaxFrameBytes: 1 << 16, MaxBytes: 1 << 20, MaxSeries: 100, MaxStrings: 100}
		d := newFrameDecoder(bytes.NewReader(in), lim)
		var f Frame
		for {
			err := d.Next(&f)
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrBadSelectStream) {
					var se *SelectError
					if !errors.As(err, &se) {
						t.Fatalf("unexpected error class: %v", err)
					}
				}
				return
			}
			if f.Kind == frameDigests {
				if len(f.Digests) == 0 {
					t.Fatal("a digest frame decoded to no digests")
				}
				var g Frame
				again := newFrameDecoder(bytes.NewReader(appendDigestFrame(nil, f.Digests)), testSelectLimits)
				if err := again.Next(&g); err != nil || !slices.Equal(g.Digests, f.Digests) {
					t.Fatalf("digests round trip: %v, %v → %v", err, f.Digests, g.Digests)
				}
				continue
			}
			if f.Kind != frameSeries {
				continue
			}
			again := newFrameDecoder(bytes.NewReader(AppendEndFrame(AppendSeriesFrames(nil, f.Labels, f.Samples))), testSelectLimits)
			var g Frame
			if err := again.Next(&g); err != nil {
				t.Fatalf("re-encoded series does not decode: %v", err)
			}
			if !labels.Equal(f.Labels, g.Labels) || !sameSamples(f.Samples, g.Samples) {
				t.Fatalf("round trip changed the series: %s %v → %s %v", f.Labels, f.Samples, g.Labels, g.Samples)
			}
		}
	})
}
