package ingest

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/tsdb"
)

// emptySeriesBody is the amplification attack: n empty series, 2 bytes
// each on the wire, 64 in memory once decoded.
func emptySeriesBody(n int) []byte {
	raw := make([]byte, 0, 2*n)
	for range n {
		raw = append(raw, 1<<3|wireBytes, 0)
	}
	return raw
}

// emptyLabelsBody is one series of n empty labels.
func emptyLabelsBody(n int) []byte {
	labels := make([]byte, 0, 2*n)
	for range n {
		labels = append(labels, 1<<3|wireBytes, 0)
	}
	return pbLen(nil, 1, labels)
}

// emptySamplesBody is one series of n empty samples.
func emptySamplesBody(n int) []byte {
	samples := make([]byte, 0, 2*n)
	for range n {
		samples = append(samples, 2<<3|wireBytes, 0)
	}
	return pbLen(nil, 1, samples)
}

// TestUnmarshalLimited: each count limit admits exactly its count and
// refuses one more with ErrRequestTooLarge (not ErrBadProtobuf), before
// growing the buffer past the limit.
func TestUnmarshalLimited(t *testing.T) {
	const n = 1000
	for _, tc := range []struct {
		name string
		body func(int) []byte
		lim  DecodeLimits
		size int // bytes of one entry
		want string
	}{
		{"series", emptySeriesBody, DecodeLimits{MaxSeries: n}, SeriesBytes, "more than 1000 series"},
		{"labels", emptyLabelsBody, DecodeLimits{MaxLabels: n}, LabelBytes, "more than 1000 labels"},
		{"samples", emptySamplesBody, DecodeLimits{MaxSamples: n}, SampleBytes, "more than 1000 samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wr WriteRequest
			if err := wr.UnmarshalLimited(tc.body(n), tc.lim); err != nil {
				t.Fatalf("%d entries at a limit of %d: %v", n, n, err)
			}
			var reserved int
			lim := tc.lim
			lim.Reserve = func(b int) error { reserved += b; return nil }
			var fresh WriteRequest
			err := fresh.UnmarshalLimited(tc.body(100*n), lim)
			if !errors.Is(err, ErrRequestTooLarge) || errors.Is(err, ErrBadProtobuf) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("100x the limit: err %v, want ErrRequestTooLarge %q", err, tc.want)
			}
			// The limited buffer, plus the first buffer of the other kinds.
			if got, bound := fresh.BufferBytes(), n*tc.size+256*(SeriesBytes+LabelBytes+SampleBytes); got > bound {
				t.Fatalf("buffers grew to %d bytes past the limit of %d entries (bound %d bytes)", got, n, bound)
			}
			if reserved < fresh.BufferBytes() {
				t.Fatalf("reserved %d bytes, buffers hold %d", reserved, fresh.BufferBytes())
			}
			if len(fresh.Timeseries) != 0 || fresh.NumSamples() != 0 {
				t.Fatalf("refused request left content: %d series", len(fresh.Timeseries))
			}
			// A pooled request with buffers above a lowered limit obeys it.
			if err := wr.UnmarshalLimited(tc.body(n+1), tc.lim); !errors.Is(err, ErrRequestTooLarge) {
				t.Fatalf("reused request, limit+1 entries: %v", err)
			}
		})
	}
}

// TestUnmarshalLimitedReserve: the decoder charges each buffer before it
// grows, and a refused charge stops decoding with the caller's error.
func TestUnmarshalLimitedReserve(t *testing.T) {
	errBudget := errors.New("budget exhausted")
	var wr WriteRequest
	calls := 0
	err := wr.UnmarshalLimited(emptySeriesBody(10_000), DecodeLimits{Reserve: func(b int) error {
		calls++
		if b > 1024*SeriesBytes {
			return errBudget
		}
		return nil
	}})
	if !errors.Is(err, errBudget) || errors.Is(err, ErrBadProtobuf) {
		t.Fatalf("err %v, want the Reserve error as is", err)
	}
	if got := wr.BufferBytes(); got > 1024*SeriesBytes {
		t.Fatalf("buffers hold %d bytes, more than the %d the budget allowed", got, 1024*SeriesBytes)
	}
	if calls < 2 {
		t.Fatalf("Reserve called %d times", calls)
	}
}

// TestWriteAmplification: the attack body of empty series is refused by
// the per-request limit, in bounded memory, through Write.
func TestWriteAmplification(t *testing.T) {
	lim := DefaultLimits()
	in, _, _ := newTestIngester(t, lim)
	raw := emptySeriesBody(lim.MaxDecompressedBodyBytes / 2)
	body := snappy.Encode(nil, raw)
	t.Logf("%d bytes compressed, %d decompressed", len(body), len(raw))
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, err := in.Write(body)
	runtime.ReadMemStats(&ms1)
	if !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("err %v, want ErrRequestTooLarge", err)
	}
	// The decompressed body plus the series buffers that double up to the
	// limit (the last clamped to it): under 3 times the limit's.
	bound := uint64(len(raw) + 3*lim.MaxSeriesPerRequest*SeriesBytes + 1<<20)
	if got := ms1.TotalAlloc - ms0.TotalAlloc; got > bound {
		t.Fatalf("allocated %d bytes, bound %d", got, bound)
	}
	requireIdle(t, in)
}

// requireIdle checks that no request holds a slot or bytes.
func requireIdle(t *testing.T, in *Ingester) {
	t.Helper()
	if r, b := in.inflight.requests.Load(), in.inflight.bytes.Load(); r != 0 || b != 0 {
		t.Fatalf("%d requests and %d bytes still in flight", r, b)
	}
}

func TestAdmit(t *testing.T) {
	body := marshalSnappy(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: testNow.UnixMilli()}},
	}}})
	t.Run("requests", func(t *testing.T) {
		lim := DefaultLimits()
		lim.MaxInflightWriteRequests = 3
		in, _, _ := newTestIngester(t, lim)
		var held []Admission
		for range 3 {
			a, err := in.Admit(100)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, a)
		}
		_, err := in.Admit(100)
		requireOverload(t, err, "requests")
		if _, err := in.Write(body); !errors.Is(err, ErrOverloaded) {
			t.Fatalf("Write with every slot taken: %v", err)
		}
		held[0].Release()
		held[0].Release() // idempotent
		if res, err := held[1].Write(body); err != nil || res.Accepted != 1 {
			t.Fatalf("admitted write: %+v %v", res, err)
		}
		if _, err := in.Write(body); err != nil {
			t.Fatalf("Write after a release: %v", err)
		}
		held[1].Release()
		held[2].Release()
		requireIdle(t, in)
	})
	t.Run("bytes", func(t *testing.T) {
		lim := DefaultLimits()
		lim.MaxCompressedBodyBytes = 1 << 20
		lim.MaxDecompressedBodyBytes = 1 << 20
		lim.MaxInflightWriteBytes = 2 << 20
		in, _, _ := newTestIngester(t, lim)
		if _, err := in.Admit(3 << 19); !errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("body over its limit: %v", err)
		}
		a, err := in.Admit(-1) // unknown length: the largest body is reserved
		if err != nil {
			t.Fatal(err)
		}
		b, err := in.Admit(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		_, err = in.Admit(1)
		requireOverload(t, err, "bytes")
		b.Release()
		// The real body is small: the unknown-length reservation shrinks to it.
		if _, err := a.Write(body); err != nil {
			t.Fatal(err)
		}
		if got := in.inflight.bytes.Load(); got >= 1<<20 {
			t.Fatalf("after the write %d bytes are charged", got)
		}
		a.Release()
		requireIdle(t, in)
	})
	t.Run("larger than the budget", func(t *testing.T) {
		lim := DefaultLimits()
		lim.MaxCompressedBodyBytes = 1 << 20
		lim.MaxInflightWriteBytes = 1 << 20
		in, _, _ := newTestIngester(t, lim)
		// 200k empty series decode into 12.8 MB: never admissible, so
		// 413, not an endless 429.
		_, err := in.Write(snappy.Encode(nil, emptySeriesBody(200_000)))
		if !errors.Is(err, ErrRequestTooLarge) || errors.Is(err, ErrOverloaded) {
			t.Fatalf("err %v, want ErrRequestTooLarge", err)
		}
		requireIdle(t, in)
	})
	t.Run("memory", func(t *testing.T) {
		head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
		if err != nil {
			t.Fatal(err)
		}
		in, err := New(head, Options{Limits: DefaultLimits(), MemoryLimit: 1 << 10, Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC() // so that the live heap has been measured
		_, err = in.Write(body)
		requireOverload(t, err, "memory")
		requireIdle(t, in)
		var oe *OverloadError
		if errors.As(err, &oe); oe.RetryAfter != memoryRetryAfter {
			t.Fatalf("retry after %s", oe.RetryAfter)
		}
	})
	t.Run("errors release", func(t *testing.T) {
		in, _, _ := newTestIngester(t, DefaultLimits())
		for _, b := range [][]byte{[]byte("not snappy"), snappy.Encode(nil, []byte{0xff})} {
			if _, err := in.Write(b); err == nil {
				t.Fatalf("%q accepted", b)
			}
			requireIdle(t, in)
		}
	})
}

func requireOverload(t *testing.T, err error, reason string) {
	t.Helper()
	var oe *OverloadError
	if !errors.Is(err, ErrOverloaded) || !errors.As(err, &oe) || oe.Reason != reason || oe.RetryAfter <= 0 {
		t.Fatalf("err %v, want an overload of %s", err, reason)
	}
}

// TestPoolDropsLargeScratch: a request's buffers past the pool's caps are
// not kept for the next request.
func TestPoolDropsLargeScratch(t *testing.T) {
	in, _, _ := newTestIngester(t, DefaultLimits())
	for _, grow := range []func(sc *writeScratch){
		func(sc *writeScratch) { sc.raw = make([]byte, maxPooledRawBytes+1) },
		func(sc *writeScratch) { sc.hashBuf = make([]byte, maxPooledHashBytes+1) },
		func(sc *writeScratch) {
			if err := sc.wr.Unmarshal(emptySeriesBody(maxPooledDecodedBytes/SeriesBytes + 1)); err != nil {
				t.Fatal(err)
			}
		},
	} {
		sc := in.getScratch()
		grow(sc)
		in.putScratch(sc)
		for range 10 {
			if got := in.getScratch(); got == sc {
				t.Fatal("pool kept an oversized scratch")
			}
		}
	}
}

// TestUnmarshalLimitedZeroAllocs: the limits and the budget hook cost no
// allocation once the buffers are warm.
func TestUnmarshalLimitedZeroAllocs(t *testing.T) {
	data, err := etcdWriteRequests(2, 3, 2000, testTS)[0].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var wr WriteRequest
	reserved := 0
	lim := DecodeLimits{MaxSeries: 10_000, MaxLabels: 100_000, MaxSamples: 10_000, Reserve: func(n int) error { reserved += n; return nil }}
	if err := wr.UnmarshalLimited(data, lim); err != nil {
		t.Fatal(err)
	}
	if reserved < wr.BufferBytes() {
		t.Fatalf("reserved %d, buffers %d", reserved, wr.BufferBytes())
	}
	if a := testing.AllocsPerRun(20, func() { _ = wr.UnmarshalLimited(data, lim) }); a != 0 {
		t.Fatalf("%v allocations per request", a)
	}
}

// TestMemWatchPacing: the heap is read at most once per interval, and a
// reading below the threshold lifts the refusal.
func TestMemWatchPacing(t *testing.T) {
	runtime.GC()
	m := newMemWatch(1<<10, DefaultMemoryWatermark)
	t0 := time.Unix(1000, 0)
	if err := m.check(t0); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("live heap over a 1 KiB limit: %v", err)
	}
	m.threshold = 1 << 62 // as if the heap had shrunk far below it
	if err := m.check(t0.Add(memCheckInterval / 2)); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("within the interval the last reading holds: %v", err)
	}
	if err := m.check(t0.Add(memCheckInterval)); err != nil {
		t.Fatalf("a new reading under the threshold: %v", err)
	}
	if err := newMemWatch(0, DefaultMemoryWatermark).check(t0); err != nil {
		t.Fatalf("no limit, no check: %v", err)
	}
}
