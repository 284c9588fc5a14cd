package tsdb

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// FuzzWALRecord decodes arbitrary bytes as a WAL record (it must fail
// cleanly, never panic) and checks that what decodes re-encodes to a
// record that decodes to the same entries.
func FuzzWALRecord(f *testing.F) {
	f.Add(appendWALSamples(appendWALSeries(nil, []walSeries{
		{ref: 1, lset: labels.FromStrings("__name__", "etcd_server_has_leader", "cluster", "a")},
	}), []walSample{{ref: 1, t: 1700000000000, v: 1}, {ref: 1, t: 1700000015000, v: math.NaN()}}))
	f.Add(appendWALSamples(nil, []walSample{{ref: 1 << 40, t: -5, v: -0.5}}))
	f.Add([]byte{walSeriesSection, 1, 1, 1, 3, 'a'})
	f.Add([]byte{walSamplesSection, 200})
	f.Add([]byte{7, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var r walRecordReader
		var series []walSeries
		var samples []walSample
		err := r.decode(rec, func(ref SeriesRef, lset labels.Labels) error {
			series = append(series, walSeries{ref: ref, lset: lset.Copy()})
			return nil
		}, func(s walSample) error {
			samples = append(samples, s)
			return nil
		})
		if err != nil {
			return
		}
		again := appendWALSamples(appendWALSeries(nil, series), samples)
		var series2 []walSeries
		var samples2 []walSample
		if err := r.decode(again, func(ref SeriesRef, lset labels.Labels) error {
			series2 = append(series2, walSeries{ref: ref, lset: lset.Copy()})
			return nil
		}, func(s walSample) error {
			samples2 = append(samples2, s)
			return nil
		}); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if len(series2) != len(series) || len(samples2) != len(samples) {
			t.Fatalf("round trip: %d/%d series, %d/%d samples", len(series2), len(series), len(samples2), len(samples))
		}
		for i := range series {
			if series[i].ref != series2[i].ref || !labels.Equal(series[i].lset, series2[i].lset) {
				t.Fatalf("series %d: %v != %v", i, series[i], series2[i])
			}
		}
		for i := range samples {
			a, b := samples[i], samples2[i]
			if a.ref != b.ref || a.t != b.t || math.Float64bits(a.v) != math.Float64bits(b.v) {
				t.Fatalf("sample %d: %v != %v", i, a, b)
			}
		}
	})
}
