package evaluator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// testPartial is a partial of 3 steps with states of every kind: not
// seen, a sum with its compensation, an incremental mean, NaN, -0, +Inf,
// a large count.
func testPartial() *PartialAggregate {
	return &PartialAggregate{
		Stats: PartialStats{SamplesLoaded: 123456, SeriesLoaded: 789, QueryableSamples: 1 << 40, SamplesRead: 5},
		groups: []*fusedGroup{
			{metric: labels.FromStrings("cluster", "etcd-eu-west-1-0", "region", "eu-west-1"), steps: []groupState{
				{},
				{seen: true, value: 12.5, c: 1e-17, count: 3},
				{seen: true, value: math.NaN(), count: 1},
			}},
			{metric: labels.EmptyLabels(), steps: []groupState{
				{seen: true, incremental: true, value: math.MaxFloat64, mean: 1e300, c: -3e283, count: 1 << 40},
				{seen: true, value: math.Copysign(0, -1), count: 1},
				{seen: true, value: math.Inf(1), count: 7},
			}},
			{metric: labels.FromStrings("__name__", "x", "a", strings.Repeat("é", 300)), steps: []groupState{{}, {}, {}}},
		},
	}
}

// diffPartials compares two partials field by field, floats by their
// bits.
func diffPartials(a, b *PartialAggregate) string {
	if a.Stats != b.Stats {
		return fmt.Sprintf("stats %+v, %+v", a.Stats, b.Stats)
	}
	if len(a.groups) != len(b.groups) {
		return fmt.Sprintf("%d groups, %d", len(a.groups), len(b.groups))
	}
	for i, ga := range a.groups {
		gb := b.groups[i]
		if !labels.Equal(ga.metric, gb.metric) || len(ga.steps) != len(gb.steps) {
			return fmt.Sprintf("group %d: %s with %d steps, %s with %d", i, ga.metric, len(ga.steps), gb.metric, len(gb.steps))
		}
		for k := range ga.steps {
			x, y := ga.steps[k], gb.steps[k]
			if x.seen != y.seen || x.incremental != y.incremental || x.count != y.count ||
				math.Float64bits(x.value) != math.Float64bits(y.value) || math.Float64bits(x.c) != math.Float64bits(y.c) ||
				math.Float64bits(x.mean) != math.Float64bits(y.mean) {
				return fmt.Sprintf("group %d step %d: %+v, %+v", i, k, x, y)
			}
		}
	}
	return ""
}

func TestPartialAggregateRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     *PartialAggregate
		steps int
	}{
		{"every kind of state", testPartial(), 3},
		{"no groups", &PartialAggregate{Stats: PartialStats{SeriesLoaded: 1}}, 17},
		{"64 steps", &PartialAggregate{groups: []*fusedGroup{{metric: labels.FromStrings("a", "b"), steps: make([]groupState, 64)}}}, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.p.AppendBinary([]byte("prefix"))
			if !strings.HasPrefix(string(b), "prefix") {
				t.Fatal("AppendBinary lost what dst held")
			}
			got, err := DecodePartialAggregate(b[len("prefix"):], tc.steps, len(tc.p.groups))
			if err != nil {
				t.Fatal(err)
			}
			if d := diffPartials(tc.p, got); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestDecodePartialAggregateMalformed checks that every malformed or
// oversized input is refused with ErrBadPartial.
func TestDecodePartialAggregateMalformed(t *testing.T) {
	good := testPartial().AppendBinary(nil)
	for i := range good {
		if _, err := DecodePartialAggregate(good[:i], 3, 10); !errors.Is(err, ErrBadPartial) {
			t.Fatalf("truncated to %d of %d bytes: %v", i, len(good), err)
		}
	}
	uv := binary.AppendUvarint
	// header writes the version, zero stats, steps and the group count.
	header := func(steps, groups uint64) []byte {
		return uv(uv([]byte{partialVersion, 0, 0, 0, 0}, steps), groups)
	}
	oneLabel := func(b []byte, name, value string) []byte {
		b = uv(b, 1)
		return appendString(appendString(b, name), value)
	}
	seen := func(b []byte, flags byte, count uint64) []byte { return uv(append(b, flags), count) }
	for _, tc := range []struct {
		name             string
		b                []byte
		steps, maxGroups int
		want             string
	}{
		{"empty", nil, 3, 10, "truncated at version"},
		{"trailing byte", append(append([]byte(nil), good...), 0), 3, 10, "1 trailing bytes"},
		{"version 2", append([]byte{2}, good[1:]...), 3, 10, "version 2"},
		{"too many groups", good, 3, 2, "3 groups, more than the limit of 2"},
		{"wrong step count", good, 4, 10, "3 steps a group, want 4"},
		{"zero steps asked", good, 0, 10, "0 steps"},
		{"more steps asked than a query may have", good, maxFusedSteps + 1, 10, fmt.Sprintf("%d steps", maxFusedSteps+1)},
		{"huge group count", header(3, 1<<62), 3, math.MaxInt, "cannot fit"},
		{"groups that cannot fit", append(header(3, 5), make([]byte, 10)...), 3, 10, "cannot fit"},
		{"huge label count", append(uv(header(1, 1), 1<<40), make([]byte, 8)...), 1, 10, "label count"},
		{"more labels than the limit", append(uv(header(1, 1), maxPartialLabels+1), make([]byte, 4000)...), 1, 10, "label count"},
		{"huge label length", append(uv(uv(header(1, 1), 1), 1<<62), make([]byte, 8)...), 1, 10, "label name of"},
		{"label longer than the input", append(uv(uv(header(1, 1), 1), 5), 'a', 'b', 0), 1, 10, "label name of 5 bytes"},
		{"empty label name", append(oneLabel(header(1, 1), "", "v"), 0), 1, 10, "label names empty"},
		{"unsorted labels", append(appendString(appendString(appendString(appendString(uv(header(1, 1), 2),
			"b"), "1"), "a"), "2"), 0), 1, 10, "unsorted"},
		{"repeated label", append(appendString(appendString(appendString(appendString(uv(header(1, 1), 2),
			"a"), "1"), "a"), "2"), 0), 1, 10, "repeated"},
		{"unknown flag", append(oneLabel(header(1, 1), "a", "b"), 0x21, 1), 1, 10, "step flags 0x21"},
		{"flags without seen", append(oneLabel(header(1, 1), "a", "b"), stepValue), 1, 10, "step flags 0x4"},
		{"count 0", seen(oneLabel(header(1, 1), "a", "b"), stepSeen, 0), 1, 10, "count 0"},
		{"count past 2^53", seen(oneLabel(header(1, 1), "a", "b"), stepSeen, 1<<53+1), 1, 10, "step count"},
		{"missing value", seen(oneLabel(header(1, 1), "a", "b"), stepSeen|stepValue, 1), 1, 10, "truncated at value"},
		{"missing mean", append(seen(oneLabel(header(1, 1), "a", "b"), stepSeen|stepValue|stepMean, 1), make([]byte, 8)...),
			1, 10, "truncated at mean"},
		{"overlong varint", append([]byte{partialVersion}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
			3, 10, "overlong varint"},
		{"stats past int64", append(uv([]byte{partialVersion}, math.MaxUint64), 0, 0, 0, 0, 0), 3, 10, "stats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodePartialAggregate(tc.b, tc.steps, tc.maxGroups)
			if !errors.Is(err, ErrBadPartial) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error with %q, got %v (%v)", tc.want, err, p)
			}
		})
	}
}

// TestDecodePartialAggregateAllocs checks that a header claiming more
// than the input holds is refused before anything is allocated for it.
func TestDecodePartialAggregateAllocs(t *testing.T) {
	b := binary.AppendUvarint(binary.AppendUvarint([]byte{partialVersion, 0, 0, 0, 0}, 64), 1_000_000)
	b = append(b, make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := DecodePartialAggregate(b, 64, math.MaxInt); err == nil {
			t.Fatal("decoded")
		}
	}
	runtime.ReadMemStats(&after)
	// A million group pointers alone would be 8 MB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 10*4096 {
		t.Fatalf("%d bytes allocated refusing a million groups in 100 bytes, 10 times", n)
	}
}

// FuzzDecodePartialAggregate decodes arbitrary bytes: it must never
// panic, refuse with ErrBadPartial, and what it accepts must survive
// encoding and decoding again unchanged.
func FuzzDecodePartialAggregate(f *testing.F) {
	f.Add(testPartial().AppendBinary(nil), uint8(3), uint16(10))
	f.Add((&PartialAggregate{}).AppendBinary(nil), uint8(1), uint16(0))
	f.Add((&PartialAggregate{groups: []*fusedGroup{{metric: labels.FromStrings("a", "b"), steps: make([]groupState, 2)}}}).AppendBinary(nil),
		uint8(2), uint16(1))
	f.Add([]byte{partialVersion, 0, 0, 0, 0, 1, 1, 1, 1, 'a', 1, 'b', stepSeen | stepValue, 1, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f},
		uint8(1), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, steps uint8, maxGroups uint16) {
		p, err := DecodePartialAggregate(b, int(steps), int(maxGroups))
		if err != nil {
			if !errors.Is(err, ErrBadPartial) {
				t.Fatalf("error without ErrBadPartial: %v", err)
			}
			return
		}
		if p.Groups() > int(maxGroups) {
			t.Fatalf("%d groups past the limit %d", p.Groups(), maxGroups)
		}
		again, err := DecodePartialAggregate(p.AppendBinary(nil), int(steps), int(maxGroups))
		if err != nil {
			t.Fatalf("re-encoded partial refused: %v", err)
		}
		if d := diffPartials(p, again); d != "" {
			t.Fatal(d)
		}
	})
}
