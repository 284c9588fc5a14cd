package bench

import (
	"math"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// TestBatchDecodesWithPrompb: what the pre-encoded batch holds is what
// prompb decodes, value for value, including stale markers, across
// requests split at MaxSamplesPerSend.
func TestBatchDecodesWithPrompb(t *testing.T) {
	l, err := loadLayout(3)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	m := newCluster(l, &o.Fleet, 7, 15*time.Second).members[1]
	r, obs := newRNG(1), make([]float64, len(l.groups))
	m.advance(l, &o.Fleet, 15, r, obs)
	const ts = int64(1_700_000_123_456)

	for _, stale := range []bool{false, true} {
		var b batch
		var got []prompb.TimeSeries
		decode := func() {
			raw, err := snappy.Decode(nil, b.compress())
			if err != nil {
				t.Fatal(err)
			}
			var wr prompb.WriteRequest
			if err := wr.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			if len(wr.Timeseries) != b.samples {
				t.Fatalf("decoded %d series, batch counted %d", len(wr.Timeseries), b.samples)
			}
			got = append(got, wr.Timeseries...)
			b.reset()
		}
		for i := range l.specs {
			v := m.values[i]
			if stale {
				v = math.Float64frombits(staleNaNBits)
			}
			b.appendSample(&l.specs[i], m, v, ts)
			if b.samples == 500 {
				decode()
			}
		}
		decode()
		if len(got) != len(l.specs) {
			t.Fatalf("decoded %d series, want %d", len(got), len(l.specs))
		}
		for i, s := range got {
			want := math.Float64bits(m.values[i])
			if stale {
				want = staleNaNBits
			}
			if len(s.Samples) != 1 || s.Samples[0].Timestamp != ts || math.Float64bits(s.Samples[0].Value) != want {
				t.Fatalf("series %d (%s): samples %v, want value bits %x at %d", i, l.specs[i].t.name, s.Samples, want, ts)
			}
			if s.Labels[0].Name == "__name__" && s.Labels[0].Value != l.specs[i].t.name {
				t.Fatalf("series %d: name %q, want %q", i, s.Labels[0].Value, l.specs[i].t.name)
			}
		}
	}
}

func TestUvarintLen(t *testing.T) {
	for _, x := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<63 - 1, math.MaxUint64} {
		var buf [10]byte
		n := 0
		for v := x; ; v >>= 7 {
			buf[n] = byte(v)
			n++
			if v < 128 {
				break
			}
		}
		if got := uvarintLen(x); got != n {
			t.Errorf("uvarintLen(%d) = %d, want %d", x, got, n)
		}
	}
}
