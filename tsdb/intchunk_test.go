package tsdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// readIntChunk decodes an integer chunk with intIterator, failing on an
// error.
func readIntChunk(t testing.TB, c []byte) []sample {
	t.Helper()
	var it intIterator
	var out []sample
	for it.reset(c); it.next(); {
		ts, v := it.at()
		out = append(out, sample{ts, v})
	}
	if it.err != nil {
		t.Fatalf("decode: %v", it.err)
	}
	return out
}

// sameBits fails unless got and want hold the same timestamps and the
// same value bits.
func sameBits(t testing.TB, what string, got, want []sample) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d samples, want %d\n got %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i].t != want[i].t || math.Float64bits(got[i].v) != math.Float64bits(want[i].v) {
			t.Fatalf("%s: sample %d = (%d, %x), want (%d, %x)", what, i, got[i].t, math.Float64bits(got[i].v), want[i].t, math.Float64bits(want[i].v))
		}
	}
}

// checkIntRoundTrip encodes samples as an integer chunk and checks every
// reader of it: intIterator, validIntChunk, the series iterator, the
// sample reader, chunkValueAt and the XOR re-encoding handed to the ring.
func checkIntRoundTrip(t testing.TB, samples []sample) []byte {
	t.Helper()
	var e intEncoder
	c, ok := e.encode(nil, samples)
	if !ok {
		t.Fatalf("integer samples refused: %v", samples)
	}
	if !isIntChunk(c) {
		t.Fatalf("chunk starts %x", c[:1])
	}
	sameBits(t, "intIterator", readIntChunk(t, c), samples)
	mc := memChunk{data: c, minT: samples[0].t, maxT: samples[len(samples)-1].t}
	if err := validIntChunk(mc); err != nil {
		t.Fatalf("validIntChunk: %v", err)
	}
	if err := validChunk(mc); err != nil {
		t.Fatalf("validChunk: %v", err)
	}
	sameBits(t, "chunksIterator", readSamples(t.(*testing.T), seriesSnapshot{chunks: []memChunk{mc}}.iterator(nil, minInt64, maxInt64)), samples)
	sameBits(t, "appendChunkSamples", appendChunkSamples(nil, mc, minInt64, maxInt64), samples)
	for _, s := range []sample{samples[0], samples[len(samples)/2], samples[len(samples)-1]} {
		if v, ok := chunkValueAt(mc, s.t); !ok || math.Float64bits(v) != math.Float64bits(s.v) {
			t.Fatalf("chunkValueAt(%d) = %v %v, want %v", s.t, v, ok, s.v)
		}
	}
	x, err := appendIntAsXOR([]byte{0xaa}, c)
	if err != nil {
		t.Fatal(err)
	}
	if x[0] != 0xaa {
		t.Fatal("appendIntAsXOR overwrote dst")
	}
	var xc chunkenc.XORChunk
	xc.Reset(x[1:])
	xit := xc.Iterator(nil)
	var fromXOR []sample
	for xit.Next() != chunkenc.ValNone {
		ts, v := xit.At()
		fromXOR = append(fromXOR, sample{ts, v})
	}
	if xit.Err() != nil {
		t.Fatal(xit.Err())
	}
	sameBits(t, "re-encoded as XOR", fromXOR, samples)
	return c
}

// regular returns n samples every 15 s from t0, values from f.
func regular(n int, f func(i int) float64) []sample {
	out := make([]sample, n)
	for i := range out {
		out[i] = sample{t: 1_700_000_000_000 + int64(i)*15000, v: f(i)}
	}
	return out
}

func TestIntValue(t *testing.T) {
	for _, tc := range []struct {
		v  float64
		ok bool
	}{
		{0, true}, {1, true}, {-1, true}, {1 << 52, true}, {1<<53 - 1, true}, {-(1<<53 - 1), true},
		{1 << 53, false}, {-(1 << 53), false}, {1 << 60, false},
		{math.Copysign(0, -1), false}, {math.Inf(1), false}, {math.Inf(-1), false},
		{math.NaN(), false}, {math.Float64frombits(value.StaleNaN), false},
		{0.5, false}, {-0.5, false}, {1e-300, false}, {123456.000001, false},
	} {
		iv, ok := intValue(tc.v)
		if ok != tc.ok || (ok && float64(iv) != tc.v) {
			t.Errorf("intValue(%v) = %d %v, want ok %v", tc.v, iv, ok, tc.ok)
		}
	}
}

func TestIntChunkRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	acc := 0.0
	cases := []struct {
		name    string
		samples []sample
	}{
		{"one sample", regular(1, func(int) float64 { return 7 })},
		{"one sample negative", regular(1, func(int) float64 { return -(1<<53 - 1) })},
		{"two samples", regular(2, func(i int) float64 { return float64(i * 1000) })},
		{"counter", regular(480, func(i int) float64 { acc += float64(rng.IntN(300)); return acc })},
		{"histogram bucket", regular(480, func(i int) float64 { acc += float64(rng.IntN(40)); return acc })},
		{"counter at a steady rate", regular(480, func(i int) float64 { return 1e9 + float64(i*150) })},
		{"gauge that holds", regular(480, func(i int) float64 {
			if i%97 == 0 {
				return float64(rng.IntN(1 << 20))
			}
			return acc
		})},
		{"constant", regular(300, func(int) float64 { return 42 })},
		{"zeros", regular(300, func(int) float64 { return 0 })},
		{"resets", regular(480, func(i int) float64 { return float64(i%50) * 1000 })},
		{"negative integers", regular(480, func(i int) float64 { return -float64(i*i) + float64(rng.IntN(5)) })},
		{"2^53 boundary", regular(100, func(i int) float64 {
			if i%2 == 0 {
				return 1<<53 - 1
			}
			return -(1<<53 - 1)
		})},
		{"large jumps", regular(100, func(i int) float64 { return float64(rng.Int64N(1<<54) - 1<<53 + 1) })},
		{"equal-step timestamps far apart", []sample{{-1 << 62, 1}, {0, 2}, {1 << 62, 3}}},
		{"irregular timestamps", func() []sample {
			var out []sample
			ts := int64(-5000)
			for i := range 500 {
				switch i % 5 {
				case 0:
					ts += 1
				case 1:
					ts += 15000 + int64(rng.IntN(200))
				case 2:
					ts += int64(rng.IntN(1 << 19))
				case 3:
					ts += 1 << 40
				default:
					ts += 15000
				}
				out = append(out, sample{ts, float64(i * 3)})
			}
			return out
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acc = 0
			checkIntRoundTrip(t, tc.samples)
		})
	}
	// Equal timestamps (compaction never writes them: the merge keeps
	// one sample a timestamp) still encode and decode.
	equal := []sample{{5, 1}, {5, 2}, {5, 2}, {6, 3}, {6, 0}}
	var e intEncoder
	c, _ := e.encode(nil, equal)
	sameBits(t, "equal timestamps", readIntChunk(t, c), equal)
}

// TestIntChunkRefused: a window with any value that is not an integer
// (intValue) is not integer-encoded, and compaction writes it as XOR,
// its values bit for bit.
func TestIntChunkRefused(t *testing.T) {
	ints := regular(100, func(i int) float64 { return float64(i) })
	for _, tc := range []struct {
		name string
		v    float64
	}{
		{"stale marker", math.Float64frombits(value.StaleNaN)},
		{"NaN", math.NaN()},
		{"negative zero", math.Copysign(0, -1)},
		{"+Inf", math.Inf(1)},
		{"-Inf", math.Inf(-1)},
		{"2^53", 1 << 53},
		{"a float", 50.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			samples := append([]sample(nil), ints...)
			samples[50].v = tc.v
			var e intEncoder
			if _, ok := e.encode(nil, samples); ok {
				t.Fatal("encoded as integers")
			}
			var o compactOutput
			merged := o.encodePieces(samples)
			var got []sample
			for _, c := range merged {
				if isIntChunk(c.data) {
					t.Fatal("compaction wrote an integer chunk")
				}
				got = appendChunkSamples(got, c, minInt64, maxInt64)
			}
			sameBits(t, "compacted", got, samples)
		})
	}
}

// TestEncodePiecesChoosesSmaller: compaction writes integer windows as
// integer chunks when smaller, float ones as XOR, and splits a long
// series into pieces each of which takes the smaller form.
func TestEncodePiecesChoosesSmaller(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	acc := 0.0
	counter := regular(120, func(int) float64 { acc += float64(rng.IntN(40)); return acc })
	floats := regular(120, func(i int) float64 { return float64(i) * 0.05 })
	var o compactOutput
	for _, tc := range []struct {
		name    string
		samples []sample
		wantInt bool
	}{
		{"counter", counter, true},
		{"floats", floats, false},
		{"mixed", append(append([]sample(nil), counter[:60]...), floats[60:]...), false},
	} {
		merged := o.encodePieces(tc.samples)
		if len(merged) != 1 {
			t.Fatalf("%s: %d chunks", tc.name, len(merged))
		}
		xor := o.enc.encode(tc.samples)
		if got := isIntChunk(merged[0].data); got != tc.wantInt {
			t.Errorf("%s: integer chunk %v, want %v (%d bytes, XOR %d)", tc.name, got, tc.wantInt, len(merged[0].data), len(xor))
		}
		if len(merged[0].data) > len(xor) {
			t.Errorf("%s: %d bytes, more than XOR's %d", tc.name, len(merged[0].data), len(xor))
		}
		sameBits(t, tc.name, appendChunkSamples(nil, merged[0], minInt64, maxInt64), tc.samples)
	}
	// Long: integer hours then float hours, cut into pieces; the integer
	// ones take the integer form.
	var long []sample
	acc = 0
	for i := range 20000 {
		v := acc
		if i >= 10000 {
			v = float64(i) * 0.37
		}
		acc += float64(rng.IntN(1000))
		long = append(long, sample{t: int64(i) * 15000, v: v})
	}
	merged := o.encodePieces(long)
	var got []sample
	ints, xors := 0, 0
	for i, c := range merged {
		if len(c.data) > mergedChunkBytes {
			t.Fatalf("piece %d: %d bytes", i, len(c.data))
		}
		if i > 0 && c.minT <= merged[i-1].maxT {
			t.Fatalf("pieces %d and %d overlap", i-1, i)
		}
		if isIntChunk(c.data) {
			ints++
		} else {
			xors++
		}
		got = appendChunkSamples(got, c, minInt64, maxInt64)
	}
	sameBits(t, "long", got, long)
	if ints == 0 || xors == 0 {
		t.Fatalf("%d integer pieces and %d XOR, want both", ints, xors)
	}
}

// TestIntChunkMalformed: every truncation and corruption of a chunk
// decodes to an error or to samples, never a panic or a read past its
// bytes; validChunk refuses what does not decode whole.
func TestIntChunkMalformed(t *testing.T) {
	var e intEncoder
	good, _ := e.encode(nil, regular(50, func(i int) float64 { return float64(i * i) }))
	mc := func(c []byte) memChunk {
		return memChunk{data: c, minT: 1_700_000_000_000, maxT: 1_700_000_000_000 + 49*15000}
	}
	for n := 0; n < len(good); n++ {
		if err := validChunk(mc(good[:n:n])); err == nil {
			t.Errorf("truncated to %d bytes: valid", n)
		}
	}
	for _, tc := range []struct {
		name string
		c    []byte
	}{
		{"tag only", []byte{intChunkTag}},
		{"unknown flags", append([]byte{intChunkTag, 0x04}, good[2:]...)},
		{"width 57", append([]byte{intChunkTag, good[1], 57}, good[3:]...)},
		{"count 0", []byte{intChunkTag, 0, 0, 0, 0, 0, 0}},
		{"count past the bits", binary.AppendUvarint([]byte{intChunkTag, 0, 0}, 1<<40)},
		{"count of max uint64", binary.AppendUvarint([]byte{intChunkTag, 0, 0}, math.MaxUint64)},
		{"bad varint", []byte{intChunkTag, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"escape longer than 56 bits", []byte{intChunkTag, 0, 0, 2, 0, 0, 0, 1, 0xff}},
	} {
		if err := validChunk(mc(tc.c)); err == nil {
			t.Errorf("%s: valid", tc.name)
		}
		var it intIterator
		for it.reset(tc.c); it.next(); {
		}
	}
	// Every single-bit flip decodes without panicking.
	for i := range len(good) * 8 {
		c := bytes.Clone(good)
		c[i/8] ^= 1 << (i % 8)
		var it intIterator
		for it.reset(c); it.next(); {
		}
		_ = validChunk(mc(c))
		_, _ = appendIntAsXOR(nil, c)
	}
}

// An XOR chunk never starts with the integer tag: the head cannot be
// configured to write one that holds maxXORSamples+1 samples, and
// xorState refuses to.
func TestXORChunksLeaveTheTagFree(t *testing.T) {
	o := DefaultOptions()
	o.Head.ChunkSamples = maxXORSamples + 1
	if o.Head.Validate() == nil {
		t.Error("ChunkSamples past maxXORSamples valid")
	}
	o = DefaultOptions()
	o.Head.OutOfOrderCapacity = maxXORSamples + 1
	if o.Head.Validate() == nil {
		t.Error("OutOfOrderCapacity past maxXORSamples valid")
	}
	c, x := newXORChunk(0), newXORState()
	for i := range maxXORSamples {
		c = x.append(c, int64(i-1), 0, int64(i), 0)
	}
	if isIntChunk(c) {
		t.Fatalf("an XOR chunk of %d samples starts with the tag", maxXORSamples)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("xorState appended sample maxXORSamples+1")
		}
	}()
	x.append(c, maxXORSamples-1, 0, maxXORSamples, 0)
}

// fuzzSamples turns bytes into a sorted window of samples: timestamps
// strictly increasing by arbitrary steps, values of every kind.
func fuzzSamples(data []byte) []sample {
	var out []sample
	ts := int64(0)
	v := 0.0
	for len(data) >= 2 && len(out) < 2000 {
		ctl, arg := data[0], data[1]
		data = data[2:]
		switch ctl & 3 {
		case 0:
			ts += 15000
		case 1:
			ts += int64(arg) + 1
		case 2:
			ts += int64(arg)<<(ctl>>2&31) + 1
		case 3:
			ts += 15000 + int64(int8(arg))
		}
		switch ctl >> 2 & 7 {
		case 0, 1:
			v += float64(arg)
		case 2:
			v -= float64(arg) * 1000
		case 3:
			v = float64(int64(arg)<<(ctl>>5)) * float64(int64(ctl)<<40)
		case 4:
			if len(data) >= 8 {
				v = math.Float64frombits(binary.BigEndian.Uint64(data))
				data = data[8:]
			}
		case 5:
			v = 0
		}
		out = append(out, sample{ts, v})
	}
	return out
}

// FuzzIntChunkRoundTrip: a window of integers encodes and decodes bit
// for bit, through every reader; any other window is refused.
func FuzzIntChunkRoundTrip(f *testing.F) {
	f.Add([]byte{0, 5, 0, 7, 1, 3, 2, 200, 3, 0x80})
	f.Add([]byte{0x0c, 1, 0x2c, 0xff, 0x6f, 3, 0x10, 0})
	f.Add([]byte{0x10, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		samples := fuzzSamples(data)
		if len(samples) == 0 {
			return
		}
		allInt := true
		for _, s := range samples {
			_, ok := intValue(s.v)
			allInt = allInt && ok
		}
		var e intEncoder
		if _, ok := e.encode(nil, samples); ok != allInt {
			t.Fatalf("encoded %v, want %v", ok, allInt)
		}
		if allInt {
			checkIntRoundTrip(t, samples)
		}
	})
}

// FuzzIntChunkDecode: arbitrary bytes decode to samples or an error,
// without a panic, a read past them, or work beyond their size.
func FuzzIntChunkDecode(f *testing.F) {
	var e intEncoder
	for _, s := range [][]sample{
		regular(1, func(int) float64 { return 3 }),
		regular(20, func(i int) float64 { return float64(i * 7) }),
		regular(20, func(i int) float64 { return float64(i % 3 * 100000) }),
		{{1, 0}, {2, 1 << 40}, {1 << 30, -(1 << 40)}},
	} {
		c, _ := e.encode(nil, s)
		f.Add(c)
	}
	f.Add([]byte{intChunkTag, 3, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		data = append([]byte{intChunkTag}, data...)
		var it intIterator
		it.reset(data)
		if it.err == nil && it.left > 1+4*len(data) {
			t.Fatalf("%d samples declared in %d bytes accepted", it.left, len(data))
		}
		n := 0
		c := memChunk{data: data}
		for it.next() {
			ts, _ := it.at()
			if n == 0 {
				c.minT = ts
			}
			c.maxT = ts
			n++
			if n > 1+4*len(data) {
				t.Fatalf("%d samples from %d bytes", n, len(data))
			}
		}
		if it.br.i > len(data) {
			t.Fatal("read past the input")
		}
		if err := validChunk(c); err == nil {
			// What validates reads back the same through the XOR form.
			x, err := appendIntAsXOR(nil, data)
			if err != nil {
				t.Fatal(err)
			}
			var xc chunkenc.XORChunk
			xc.Reset(x)
			want := appendChunkSamples(nil, c, minInt64, maxInt64)
			var got []sample
			xit := xc.Iterator(nil)
			for xit.Next() != chunkenc.ValNone {
				ts, v := xit.At()
				got = append(got, sample{ts, v})
			}
			sameBits(t, "XOR form", got, want)
		}
	})
}

// exactTestSeries are series whose values an integer chunk must keep
// bit for bit, by name: integers, values that are not (stale markers,
// -0, ±Inf, fractions) among them, and the 2^53 boundary.
func exactTestSeries() map[string]func(i int64) float64 {
	stale := math.Float64frombits(value.StaleNaN)
	return map[string]func(i int64) float64{
		"counter": func(i int64) float64 { return float64(i*37 + i%5) },
		"bucket":  func(i int64) float64 { return float64(i * i % 1000 * 3) },
		"special": func(i int64) float64 {
			switch i {
			case 30:
				return stale
			case 100:
				return math.Copysign(0, -1)
			case 170:
				return math.Inf(1)
			case 171:
				return math.Inf(-1)
			}
			return float64(i % 4)
		},
		"huge": func(i int64) float64 {
			if i == 200 {
				return 1 << 53
			}
			return float64((1<<53 - 1) - i%2*(1<<54-2))
		},
		"float": func(i int64) float64 { return float64(i) * 0.1 },
	}
}

// appendExactSeries appends 300 samples a second apart to each of
// exactTestSeries, checkpointing after every n and at the end, and
// returns the samples by name.
func appendExactSeries(t *testing.T, db *DB, n int64) map[string][]sample {
	t.Helper()
	const sec = 1000
	want := map[string][]sample{}
	for i := int64(0); i < 300; i++ {
		for name, f := range exactTestSeries() {
			appendAt(t, db, labels.FromStrings("__name__", name), i*sec, f(i))
			want[name] = append(want[name], sample{i * sec, f(i)})
		}
		if i%n == n-1 {
			checkpoint(t, db)
		}
	}
	checkpoint(t, db)
	return want
}

// TestCompactIntChunksExact: a query over compacted buckets returns
// exactly the samples written, value bits included (stale markers, -0,
// ±Inf, the 2^53 boundary), before and after a restart, through the
// series iterator, a seek into the middle and the chunks handed to the
// ring; the integer windows are integer chunks, the others XOR.
func TestCompactIntChunksExact(t *testing.T) {
	const sec = 1000
	dir := t.TempDir()
	db := openTestDB(t, dir, compactTestOptions())
	defer func() { db.Close() }()
	want := appendExactSeries(t, db, 20)
	compactAll(t, db)
	last, _ := db.compactBefore()
	ints, xors := compactedEncodings(t, db, last)
	if ints == 0 || xors == 0 {
		t.Fatalf("compacted buckets hold %d integer and %d XOR chunks, want both", ints, xors)
	}
	maxt := (last+1)*60*sec - 1 // the compacted range
	checkExactSeries(t, db, "compacted", want, maxt)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir, compactTestOptions())
	checkExactSeries(t, db, "after a restart", want, maxt)
}

// checkExactSeries checks that db returns exactly the samples of want,
// through the series iterator, a seek to the sample at 76 s, and the
// chunks handed to the ring (XOR only) in [0, maxt].
func checkExactSeries(t *testing.T, db *DB, what string, want map[string][]sample, maxt int64) {
	t.Helper()
	const sec = 1000
	got := dbSelect(t, db, minInt64, maxInt64, matchAll)
	for name, w := range want {
		sameBits(t, what+" "+name, got[`{__name__="`+name+`"}`], w)
		chunks, ok, _ := chunkSeriesOf(t, db, name, 0, maxt)
		if !ok {
			t.Fatalf("%s %s: no chunks", what, name)
		}
		sameBits(t, what+" chunks of "+name, decodeChunks(t, chunks, 0, maxt), w[:maxt/sec+1])
		q, err := db.Querier(minInt64, maxInt64)
		if err != nil {
			t.Fatal(err)
		}
		set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
		if !set.Next() {
			t.Fatal(set.Err())
		}
		it := set.At().Iterator(nil)
		if !it.SeekTo(75*sec + 1) {
			t.Fatalf("%s %s: seek: %v", what, name, it.Err())
		}
		ts, v := it.At()
		sameBits(t, what+" seek in "+name, []sample{{ts, v}}, w[76:77])
		q.Close()
	}
}
