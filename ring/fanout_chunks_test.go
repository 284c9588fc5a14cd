package ring

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/etcdgate/etcdgate/tsdb"
)

// TestFanoutChunkCopies: replicas that hold the same samples answer the
// same chunks, which the merge takes once without decoding them; a
// replica with a sample more makes the merge decode and merge the
// copies; either way the samples are the union, within the select's
// range.
func TestFanoutChunkCopies(t *testing.T) {
	tf := newTestFanout(t, 3)
	same := labels.FromStrings("__name__", "m", "i", "same")
	differ := labels.FromStrings("__name__", "m", "i", "differ")
	var ts []int64
	for x := int64(0); x <= 1000; x += 5 {
		ts = append(ts, x)
	}
	for i, h := range tf.heads {
		appendTo(t, h, same, ts...)
		if i == 2 {
			appendTo(t, h, differ, ts...)
		} else {
			appendTo(t, h, differ, ts[:len(ts)-1]...)
		}
	}
	q, err := tf.q.Querier(100, 900)
	if err != nil {
		t.Fatal(err)
	}
	set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	var want []int64
	for _, x := range ts {
		if x >= 100 && x <= 900 {
			want = append(want, x)
		}
	}
	n := 0
	for set.Next() {
		s := set.At().(*mergedSeries)
		n++
		if s.copies != 3 {
			t.Fatalf("%s: %d copies merged, want 3", s.lset, s.copies)
		}
		if isSame := labels.Equal(s.lset, same); isSame != (s.chunks != nil) {
			t.Fatalf("%s: kept as chunks: %v (copies identical: %v)", s.lset, s.chunks != nil, isSame)
		}
		var got []int64
		it := s.Iterator(nil)
		for it.Next() {
			x, v := it.At()
			if v != float64(x) {
				t.Fatalf("%s: value %v at %d", s.lset, v, x)
			}
			got = append(got, x)
		}
		if it.Err() != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: samples %v (err %v), want %v", s.lset, got, it.Err(), want)
		}
	}
	if set.Err() != nil || n != 2 {
		t.Fatalf("%d series, err %v", n, set.Err())
	}
}

func xorChunk(t testing.TB, samples ...Sample) tsdb.Chunk {
	t.Helper()
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		app.Append(0, s.T, s.V)
	}
	return tsdb.Chunk{MinT: samples[0].T, MaxT: samples[len(samples)-1].T, Data: c.Bytes()}
}

func TestChunkIterator(t *testing.T) {
	chunks := []tsdb.Chunk{
		xorChunk(t, Sample{10, 1}, Sample{20, 2}, Sample{30, 3}),
		xorChunk(t, Sample{40, 4}, Sample{50, 5}),
		xorChunk(t, Sample{60, 6}, Sample{70, 7}),
	}
	walk := func(mint, maxt int64, seek ...int64) []int64 {
		it := &chunkIterator{}
		it.reset(chunks, mint, maxt)
		var out []int64
		for _, s := range seek {
			if !it.SeekTo(s) {
				return append(out, -1)
			}
			x, _ := it.At()
			out = append(out, x)
		}
		for it.Next() {
			x, _ := it.At()
			out = append(out, x)
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		return out
	}
	for _, c := range []struct {
		name       string
		mint, maxt int64
		seek       []int64
		want       []int64
	}{
		{"all", math.MinInt64, math.MaxInt64, nil, []int64{10, 20, 30, 40, 50, 60, 70}},
		{"range inside chunks", 20, 50, nil, []int64{20, 30, 40, 50}},
		{"range between samples", 21, 59, nil, []int64{30, 40, 50}},
		{"seek into a later chunk", 0, 100, []int64{45}, []int64{50, 60, 70}},
		{"seek to the current sample stays", 0, 100, []int64{20, 20, 15}, []int64{20, 20, 20, 30, 40, 50, 60, 70}},
		{"seek before the range", 35, 100, []int64{0}, []int64{40, 50, 60, 70}},
		{"seek past the end", 0, 100, []int64{71}, []int64{-1}},
		{"seek past the range", 0, 55, []int64{60}, []int64{-1}},
		{"empty range", 31, 39, nil, nil},
	} {
		if got := walk(c.mint, c.maxt, c.seek...); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestChunkIteratorMalformed: chunks from a peer that do not decode or
// whose samples go back in time end the walk with an error.
func TestChunkIteratorMalformed(t *testing.T) {
	good := xorChunk(t, Sample{10, 1}, Sample{20, 2})
	back := xorChunk(t, Sample{15, 1}, Sample{25, 2})
	back.MinT = 30 // lies about its range: its samples are before good's end
	for _, c := range []struct {
		name   string
		chunks []tsdb.Chunk
	}{
		{"truncated", []tsdb.Chunk{{MinT: 10, MaxT: 20, Data: good.Data[:len(good.Data)-2]}}},
		{"count lies", []tsdb.Chunk{{MinT: 10, MaxT: 20, Data: append([]byte{0, 200}, good.Data[2:]...)}}},
		{"time goes back", []tsdb.Chunk{good, back}},
	} {
		if _, err := chunkSamples(nil, c.chunks, 0, 100); !errors.Is(err, ErrBadSelectStream) {
			t.Errorf("%s: error %v, want ErrBadSelectStream", c.name, err)
		}
	}
}
