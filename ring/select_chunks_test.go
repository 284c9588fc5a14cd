package ring

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

func TestChunkFramesRoundTrip(t *testing.T) {
	a := labels.FromStrings("__name__", "up", "job", "etcd")
	var long []tsdb.Chunk // more than one frame's worth of chunk data
	for i := range 3 * maxFrameChunkBytes / 4096 {
		c := xorChunk(t, samplesFrom(i*1_000_000, 2)...)
		c.Data = append(c.Data, make([]byte, 4096-len(c.Data))...) // padding the decoder passes on
		long = append(long, c)
	}
	b := labels.FromStrings("__name__", "long")
	frames := AppendChunkSeriesFrames(nil, a, []tsdb.Chunk{xorChunk(t, Sample{-5, 1}, Sample{7, 2})})
	frames = AppendChunkSeriesFrames(frames, b, long)
	frames = AppendSeriesFrames(frames, labels.FromStrings("__name__", "samples"), samplesFrom(0, 2))
	res, err := decodeAll(compressed(t, AppendEndFrame(frames)), testSelectLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 3 {
		t.Fatalf("%d series, want 3 (the long one's frames joined)", len(res.Series))
	}
	if got := res.Series[0]; !labels.Equal(got.Labels, a) || len(got.Chunks) != 1 || got.Chunks[0].MinT != -5 || got.Chunks[0].MaxT != 7 {
		t.Fatalf("first series: %+v", got)
	}
	got := res.Series[1]
	if !labels.Equal(got.Labels, b) || !sameChunks(got.Chunks, long) {
		t.Fatalf("long series: %d chunks, want the %d sent", len(got.Chunks), len(long))
	}
	if got := res.Series[2]; got.Chunks != nil || len(got.Samples) != 2 {
		t.Fatalf("sample series: %+v", got)
	}
}

func TestChunkFramesMalformed(t *testing.T) {
	c := xorChunk(t, Sample{10, 1}, Sample{20, 2})
	chunkFrame := func(payload []byte) []byte {
		return AppendEndFrame(append(append([]byte{frameChunks}, byte(len(payload))), payload...))
	}
	one := func(mint, span, size byte, data []byte) []byte {
		return append([]byte{1, 1, 'a', 0, 1, mint, span, size}, data...)
	}
	for _, tc := range []struct {
		name   string
		frames []byte
	}{
		{"chunk count lies", chunkFrame([]byte{1, 1, 'a', 0, 50, 2, 2, 2, 0, 0})},
		{"chunk size past the frame", chunkFrame(one(20, 20, 100, c.Data))},
		{"chunk too short", chunkFrame(one(20, 20, 1, []byte{0}))},
		{"span overflows", chunkFrame(append([]byte{1, 1, 'a', 0, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2}, 0, 0))},
		{"trailing bytes", chunkFrame(append(one(20, 20, byte(len(c.Data)), c.Data), 9))},
		{"labels unsorted", chunkFrame([]byte{2, 1, 'b', 0, 1, 'a', 0, 0})},
		{"chunks overlapping", chunkFrame(append(append([]byte{1, 1, 'a', 0, 2, 20, 20, byte(len(c.Data))}, c.Data...),
			append([]byte{40, 20, byte(len(c.Data))}, c.Data...)...))},
		{"frames of a series going back", AppendEndFrame(AppendChunkSeriesFrames(AppendChunkSeriesFrames(nil,
			labels.FromStrings("a", "b"), []tsdb.Chunk{{MinT: 100, MaxT: 200, Data: c.Data}}),
			labels.FromStrings("a", "b"), []tsdb.Chunk{{MinT: 10, MaxT: 20, Data: c.Data}}))},
	} {
		if _, err := decodeAll(compressed(t, tc.frames), testSelectLimits); !errors.Is(err, ErrBadSelectStream) {
			t.Errorf("%s: error %v, want ErrBadSelectStream", tc.name, err)
		}
	}
}

// FuzzChunkFrames feeds arbitrary chunk frames to the decoder and walks
// what it accepts: no panic, and a series it accepts re-encodes to the
// same series.
func FuzzChunkFrames(f *testing.F) {
	c := xorChunk(f, Sample{10, 1}, Sample{20, 2}, Sample{35, -1})
	f.Add(AppendEndFrame(AppendChunkSeriesFrames(nil, labels.FromStrings("__name__", "up"), []tsdb.Chunk{c})))
	f.Add(AppendChunkSeriesFrames(nil, labels.FromStrings("a", "b"), []tsdb.Chunk{c, {MinT: 40, MaxT: 41, Data: []byte{0, 1, 2}}}))
	f.Add([]byte{frameChunks, 8, 1, 1, 'a', 0, 1, 20, 20, 2, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := newFrameDecoder(bytes.NewReader(in), SelectLimits{MaxFrameBytes: 1 << 16, MaxBytes: 1 << 20, MaxSeries: 100})
		var fr Frame
		for d.Next(&fr) == nil {
			if fr.Kind != frameChunks {
				continue
			}
			if _, err := chunkSamples(nil, fr.Chunks, -1<<62, 1<<62); err != nil && !errors.Is(err, ErrBadSelectStream) {
				t.Fatalf("chunk walk: unexpected error class: %v", err)
			}
			again := newFrameDecoder(bytes.NewReader(AppendEndFrame(AppendChunkSeriesFrames(nil, fr.Labels, fr.Chunks))), testSelectLimits)
			var g Frame
			if err := again.Next(&g); err != nil {
				t.Fatalf("re-encoded chunk series does not decode: %v", err)
			}
			if !labels.Equal(fr.Labels, g.Labels) || !slices.EqualFunc(fr.Chunks, g.Chunks, func(a, b tsdb.Chunk) bool {
				return a.MinT == b.MinT && a.MaxT == b.MaxT && bytes.Equal(a.Data, b.Data)
			}) {
				t.Fatalf("round trip changed the series")
			}
		}
	})
}

// TestChunkTrimmer: a chunk mostly outside the select's range is
// re-encoded with only its samples in range (the same bytes for the
// same samples), one mostly inside is passed on as it is, one with no
// sample in range is dropped.
func TestChunkTrimmer(t *testing.T) {
	var ss []Sample
	for x := int64(0); x <= 1000; x += 10 {
		ss = append(ss, Sample{x, float64(x)})
	}
	whole := xorChunk(t, ss...)
	for _, c := range []struct {
		name       string
		mint, maxt int64
		want       []int64 // the samples passed on; nil: none
		asIs       bool
	}{
		{"inside", -5, 2000, nil, true},
		{"mostly inside", 300, 2000, nil, true},
		{"a sixth inside: cheaper as it is", 800, 966, nil, true},
		{"instant window", 700, 750, []int64{700, 710, 720, 730, 740, 750}, false},
		{"between samples", 701, 709, nil, false},
	} {
		tr := &chunkTrimmer{mint: c.mint, maxt: c.maxt}
		out, err := tr.trim([]tsdb.Chunk{whole})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c.asIs:
			if len(out) != 1 || !bytes.Equal(out[0].Data, whole.Data) {
				t.Errorf("%s: chunk not passed on as it is", c.name)
			}
		case c.want == nil:
			if len(out) != 0 {
				t.Errorf("%s: %d chunks, want none", c.name, len(out))
			}
		default:
			got, err := chunkSamples(nil, out, math.MinInt64, math.MaxInt64)
			var ts []int64
			for _, s := range got {
				ts = append(ts, s.T)
			}
			if err != nil || len(out) != 1 || !slices.Equal(ts, c.want) || out[0].MinT != c.want[0] || out[0].MaxT != c.want[len(c.want)-1] {
				t.Errorf("%s: %v (%v), want %v", c.name, ts, err, c.want)
			}
			again, _ := (&chunkTrimmer{mint: c.mint, maxt: c.maxt}).trim([]tsdb.Chunk{whole})
			if !bytes.Equal(again[0].Data, out[0].Data) {
				t.Errorf("%s: the same samples trimmed to different bytes", c.name)
			}
		}
	}
}
