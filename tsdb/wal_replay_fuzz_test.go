package tsdb

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// walFuzzSegments writes a WAL of segs segments with perSeg records each
// into dir. Record i of segment s logs series ref s with a sample at t=i,
// and every third also the series' labels, so each record is unique and
// says where it was written. It returns the records by segment.
func walFuzzSegments(t *testing.T, dir string, segs, perSeg int) [][][]byte {
	t.Helper()
	records := make([][][]byte, segs)
	for s := range segs {
		var data []byte
		for i := range perSeg {
			var series []walSeries
			if i%3 == 0 {
				series = []walSeries{{ref: SeriesRef(s + 1), lset: labels.FromStrings("__name__", "m", "seg", string(rune('a'+s)))}}
			}
			rec := appendWALSamples(appendWALSeries(nil, series), []walSample{{ref: SeriesRef(s + 1), t: int64(i), v: float64(s*1000 + i)}})
			records[s] = append(records[s], rec)
			data = appendFrame(data, rec)
		}
		if err := os.WriteFile(walSegmentName(dir, s+1), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return records
}

// FuzzWALReplay writes a WAL of several segments, corrupts it at
// fuzzer-chosen places (each 4 bytes of damage: segment, offset high and
// low byte, XOR mask; mask 0 truncates the segment there), and replays it.
// Replay must not panic, must return only records that were written, each
// in its place, and must keep every record of a segment before the first
// damaged byte of that segment. A second replay (after the first repaired
// the files) returns the same.
func FuzzWALReplay(f *testing.F) {
	f.Add(uint8(3), uint8(5), []byte{})
	f.Add(uint8(3), uint8(5), []byte{1, 0, 40, 0xff})            // a bit flip in the middle segment
	f.Add(uint8(2), uint8(4), []byte{1, 0, 30, 0})               // the last segment torn
	f.Add(uint8(4), uint8(3), []byte{0, 0, 2, 0x80, 2, 0, 0, 1}) // a length field, and a first byte
	f.Fuzz(func(t *testing.T, nSegs, perSeg uint8, damage []byte) {
		segs, per := 1+int(nSegs%5), 1+int(perSeg%12)
		dir := t.TempDir()
		records := walFuzzSegments(t, dir, segs, per)
		firstDamage := make([]int, segs) // offset of the first damaged byte in each segment
		for s := range firstDamage {
			firstDamage[s] = 1 << 30
		}
		for ; len(damage) >= 4; damage = damage[4:] {
			s := int(damage[0]) % segs
			name := walSegmentName(dir, s+1)
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) == 0 {
				continue
			}
			off := (int(damage[1])<<8 | int(damage[2])) % len(data)
			if damage[3] == 0 {
				data = data[:off]
			} else {
				data[off] ^= damage[3]
			}
			firstDamage[s] = min(firstDamage[s], off)
			if err := os.WriteFile(name, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		logger := slog.New(slog.DiscardHandler)
		replay := func() [][]byte {
			var got [][]byte
			err := replayWAL(dir, 0, logger, func(p []byte) error {
				got = append(got, bytes.Clone(p))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		got := replay()
		// Match the replayed records, in order, to the written ones:
		// each segment's replayed records are a prefix of what it held.
		k := 0
		for s := range segs {
			intact, end := 0, 0 // records wholly before the first damage
			for _, rec := range records[s] {
				end += walFrameHeader + len(rec)
				if end > firstDamage[s] {
					break
				}
				intact++
			}
			n := 0
			for n < len(records[s]) && k < len(got) && bytes.Equal(got[k], records[s][n]) {
				n, k = n+1, k+1
			}
			if n < intact {
				t.Fatalf("segment %d: %d records replayed, %d were intact before the damage at %d", s+1, n, intact, firstDamage[s])
			}
		}
		if k != len(got) {
			t.Fatalf("replay returned a record that was not written (record %d of %d: %q)", k, len(got), got[k])
		}
		for _, p := range got { // and what it returns decodes
			var r walRecordReader
			if err := r.decode(p, func(SeriesRef, labels.Labels) error { return nil }, func(walSample) error { return nil }); err != nil {
				t.Fatalf("replayed record does not decode: %v", err)
			}
		}
		again := replay()
		if len(again) != len(got) {
			t.Fatalf("second replay: %d records, first %d", len(again), len(got))
		}
		for i := range got {
			if !bytes.Equal(again[i], got[i]) {
				t.Fatalf("second replay differs at record %d", i)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "00000001")); err != nil {
			t.Fatal("replay removed a segment")
		}
	})
}
