package tsdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// checkXORAgainstChunkenc appends samples with xorState and with
// chunkenc's XOR appender side by side and fails unless the bytes are
// equal after every append. It also restores a writer from the bytes
// after every prefix and checks that it continues with the same bytes.
func checkXORAgainstChunkenc(t testing.TB, samples []sample) {
	t.Helper()
	ref := chunkenc.NewXORChunk()
	app, err := ref.Appender()
	if err != nil {
		t.Fatal(err)
	}
	c, x := newXORChunk(0), newXORState()
	var prevT int64
	var prevV uint64
	prefixes := make([][]byte, 0, len(samples)+1)
	prefixes = append(prefixes, bytes.Clone(c))
	for i, s := range samples {
		app.Append(0, s.t, s.v)
		c = x.append(c, prevT, prevV, s.t, s.v)
		prevT, prevV = s.t, math.Float64bits(s.v)
		if !bytes.Equal(c, ref.Bytes()) {
			t.Fatalf("after sample %d (t=%d v=%x): bytes\n%x, chunkenc\n%x", i, s.t, math.Float64bits(s.v), c, ref.Bytes())
		}
		// It grows a size class at a time (appendChunkByte), not doubling.
		if cap(c) > 32 && cap(c)-len(c) > len(c)/4+16 {
			t.Fatalf("after sample %d: %d bytes in a chunk of capacity %d", i, len(c), cap(c))
		}
		prefixes = append(prefixes, bytes.Clone(c))
	}
	want := ref.Bytes()
	for n, p := range prefixes {
		rc, rx, lastT, lastV, err := restoreXOR(p)
		if err != nil {
			t.Fatalf("restore after %d samples: %v", n, err)
		}
		if !bytes.Equal(rc, p) {
			t.Fatalf("restore after %d samples: bytes\n%x, were\n%x", n, rc, p)
		}
		if n > 0 && (lastT != samples[n-1].t || lastV != math.Float64bits(samples[n-1].v)) {
			t.Fatalf("restore after %d samples: last sample %d %x, want %d %x", n, lastT, lastV, samples[n-1].t, math.Float64bits(samples[n-1].v))
		}
		for _, s := range samples[n:] {
			rc = rx.append(rc, lastT, lastV, s.t, s.v)
			lastT, lastV = s.t, math.Float64bits(s.v)
		}
		if !bytes.Equal(rc, want) {
			t.Fatalf("restored after %d samples and continued: bytes\n%x, chunkenc\n%x", n, rc, want)
		}
	}
	// The chunk reads back with chunkenc's iterator.
	var rd chunkenc.XORChunk
	rd.Reset(c)
	it := rd.Iterator(nil)
	for i := 0; it.Next() == chunkenc.ValFloat; i++ {
		ts, v := it.At()
		if ts != samples[i].t || math.Float64bits(v) != math.Float64bits(samples[i].v) {
			t.Fatalf("sample %d reads back as %d %x, want %d %x", i, ts, math.Float64bits(v), samples[i].t, math.Float64bits(samples[i].v))
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
}

// deltaSamples returns samples whose timestamps follow the deltas and
// whose values are vs, cycled.
func deltaSamples(t0 int64, deltas []int64, vs []float64) []sample {
	out := []sample{{t: t0, v: vs[0]}}
	for i, d := range deltas {
		out = append(out, sample{t: out[len(out)-1].t + d, v: vs[(i+1)%len(vs)]})
	}
	return out
}

func TestXORAppendMatchesChunkenc(t *testing.T) {
	const step = 15000
	staleNaN := math.Float64frombits(0x7ff0000000000002)
	special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), staleNaN, 0, math.Copysign(0, -1),
		1, -1, math.MaxFloat64, math.SmallestNonzeroFloat64, staleNaN, staleNaN, 42}

	tests := map[string][]sample{
		"one sample":            {{t: 1000, v: 1}},
		"two samples":           {{t: 1000, v: 1}, {t: 16000, v: 2}},
		"one negative sample":   {{t: -1, v: -1}},
		"equal deltas":          deltaSamples(0, repeat(step, 239), []float64{1}),
		"negative timestamps":   deltaSamples(-10*step, repeat(step, 30), []float64{1, 2, 3}),
		"minimum timestamp":     deltaSamples(math.MinInt64, []int64{1, 1, math.MaxInt64, 1}, []float64{0}),
		"huge deltas":           deltaSamples(0, []int64{math.MaxInt64, math.MinInt64, math.MaxInt64, 1, -1, math.MinInt64 + 1}, []float64{1}),
		"decreasing timestamps": deltaSamples(0, []int64{-1, -100, 100000, -1 << 40, 1 << 50}, []float64{1, 2}),
		"special values":        deltaSamples(1, repeat(step, len(special)*3), special),
		"stale markers":         deltaSamples(0, repeat(step, 10), []float64{1, staleNaN, staleNaN, 2, staleNaN}),
	}

	// Delta of delta at every bucket boundary and one either side.
	var dods []int64
	for _, n := range []int64{14, 17, 20, 64} {
		for _, b := range []int64{1<<(n-1) - 1, 1 << (n - 1)} {
			dods = append(dods, b-1, b, b+1, -b-1, -b, -b+1)
		}
	}
	dods = append(dods, 0, 1, -1, math.MaxInt64, math.MinInt64)
	for _, dod := range dods {
		deltas := []int64{step, step + dod, step + dod, step, step + dod}
		tests[fmt.Sprintf("dod=%d", dod)] = deltaSamples(1000, deltas, []float64{1, 2})
		tests[fmt.Sprintf("first delta=%d", dod)] = deltaSamples(-5, []int64{dod, dod, 0, dod}, []float64{3})
	}

	// XORs with every count of leading and trailing zeros, after a value
	// that opens a window and in sequences that reuse or widen it.
	for lead := 0; lead < 64; lead++ {
		var seq []float64
		prev := uint64(0x4059000000000000) // 100
		seq = append(seq, math.Float64frombits(prev))
		for trail := 0; lead+trail < 64; trail++ {
			width := 64 - lead - trail
			mask := (uint64(1)<<(width-1) | 1) << trail // top and bottom bit of the window set
			if width == 64 {
				mask = 1<<63 | 1
			}
			prev ^= mask
			seq = append(seq, math.Float64frombits(prev))
		}
		tests[fmt.Sprintf("leading=%d", lead)] = deltaSamples(0, repeat(step, len(seq)-1), seq)
	}
	for trail := 0; trail < 64; trail++ {
		var seq []float64
		prev := uint64(0)
		seq = append(seq, 0)
		for lead := 63 - trail; lead >= 0; lead-- {
			width := 64 - lead - trail
			mask := (uint64(1)<<(width-1) | 1) << trail
			if width == 64 {
				mask = 1<<63 | 1
			}
			prev ^= mask
			seq = append(seq, math.Float64frombits(prev))
		}
		tests[fmt.Sprintf("trailing=%d", trail)] = deltaSamples(0, repeat(step, len(seq)-1), seq)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 240; n += 1 + n/8 {
		var random, walk, counter []sample
		ts, v, cnt := rng.Int64N(1<<42)-1<<41, 0.0, 0.0
		for range n {
			ts += step + rng.Int64N(2001) - 1000
			v += rng.NormFloat64()
			cnt += float64(rng.IntN(10))
			random = append(random, sample{t: ts, v: math.Float64frombits(rng.Uint64())})
			walk = append(walk, sample{t: ts, v: v})
			counter = append(counter, sample{t: ts, v: cnt})
		}
		tests[fmt.Sprintf("random bits n=%d", n)] = random
		tests[fmt.Sprintf("random walk n=%d", n)] = walk
		tests[fmt.Sprintf("counter n=%d", n)] = counter
	}

	for name, samples := range tests {
		t.Run(name, func(t *testing.T) { checkXORAgainstChunkenc(t, samples) })
	}
}

func repeat(d int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestRestoreXORMalformed(t *testing.T) {
	good := newXORChunk(0)
	x := newXORState()
	good = x.append(good, 0, 0, 1000, 1)
	good = x.append(good, 1000, math.Float64bits(1), 16000, 2)
	good = x.append(good, 16000, math.Float64bits(2), 31000, 5)
	tests := map[string][]byte{
		"empty":          {},
		"half a header":  {0},
		"count too high": append([]byte{0, 9}, good[2:]...),
		"truncated":      good[:len(good)-3],
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, _, _, err := restoreXOR(data); err == nil {
				t.Fatalf("restoreXOR(%x) accepted malformed bytes", data)
			}
		})
	}
}

// FuzzXORAppend checks xorState against chunkenc's XOR appender on
// sample sequences read from the input: per sample a control byte, then a
// timestamp delta of 1, 2 or 8 bytes and a value of 0, 1 or 8 bytes.
func FuzzXORAppend(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x0f, 0x00, 0x0f, 0x00, 0x0f})
	f.Add([]byte{0x0b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xf0, 0, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		var samples []sample
		var ts int64
		var v uint64
		for len(data) > 0 && len(samples) < 300 {
			ctl := data[0]
			data = data[1:]
			switch ctl & 3 {
			case 0:
				ts += 15000
			case 1:
				if len(data) < 1 {
					return
				}
				ts += int64(int8(data[0]))
				data = data[1:]
			case 2:
				if len(data) < 2 {
					return
				}
				ts += int64(int16(binary.BigEndian.Uint16(data)))
				data = data[2:]
			case 3:
				if len(data) < 8 {
					return
				}
				ts += int64(binary.BigEndian.Uint64(data))
				data = data[8:]
			}
			switch ctl >> 2 & 3 {
			case 1:
				if len(data) < 1 {
					return
				}
				v = math.Float64bits(float64(int8(data[0])))
				data = data[1:]
			case 2:
				if len(data) < 8 {
					return
				}
				v ^= binary.BigEndian.Uint64(data)
				data = data[8:]
			case 3:
				if len(data) < 8 {
					return
				}
				v = binary.BigEndian.Uint64(data)
				data = data[8:]
			}
			samples = append(samples, sample{t: ts, v: math.Float64frombits(v)})
		}
		checkXORAgainstChunkenc(t, samples)
	})
}

// BenchmarkXORAppend writes chunks of 120 samples of a counter scraped
// every 15 s with jitter, with chunkenc's appender and with xorState.
// Short runs suffice: -benchtime 100000x.
func BenchmarkXORAppend(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	samples := make([]sample, 120)
	ts, v := int64(0), 0.0
	for i := range samples {
		ts += 15000 + rng.Int64N(11) - 5
		v += float64(rng.IntN(100))
		samples[i] = sample{t: ts, v: v}
	}
	b.Run("impl=chunkenc", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			c := chunkenc.NewXORChunk()
			app, _ := c.Appender()
			for _, s := range samples {
				app.Append(0, s.t, s.v)
			}
			n += len(samples)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
	})
	b.Run("impl=inline", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			c, x := newXORChunk(0), newXORState()
			var prevT int64
			var prevV uint64
			for _, s := range samples {
				c = x.append(c, prevT, prevV, s.t, s.v)
				prevT, prevV = s.t, math.Float64bits(s.v)
			}
			n += len(samples)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
	})
}

func TestHeadXORPacking(t *testing.T) {
	for _, x := range []xorState{newXORState(), {tDelta: 15000, free: 3, leading: 12, trailing: 40}, {tDelta: math.MaxUint32, free: 7, leading: 63, trailing: 1}} {
		if got := packHeadXOR(x).state(); got != x {
			t.Fatalf("packHeadXOR(%+v).state() = %+v", x, got)
		}
	}
	big := xorState{tDelta: math.MaxUint32 + 1}
	if fitsHeadXOR(big) {
		t.Fatal("a delta of 2^32 fits a headXOR")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("packHeadXOR took a delta of 2^32")
		}
	}()
	packHeadXOR(big)
}
