package tsdb

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestLabelPairsHashIsLabelsHash holds LabelPairsHash to the hash of the built
// label set, over label sets with strings of every length class (empty
// names aside, which the store never holds: up to 254 bytes, 255 and
// more, past 64 KiB).
func TestLabelPairsHashIsLabelsHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lengths := []int{1, 2, 100, 253, 254, 255, 256, 1000, 70_000}
	var buf []byte
	for i := range 2000 {
		b := labels.NewScratchBuilder(8)
		for k := range 1 + rng.IntN(8) {
			name := string(rune('a'+k)) + strings.Repeat("n", lengths[rng.IntN(len(lengths))]-1)
			b.Add(name, strings.Repeat(string(rune('0'+rng.IntN(10))), lengths[rng.IntN(len(lengths))]))
		}
		b.Sort()
		lset := b.Labels()
		var ls []labels.Label
		lset.Range(func(l labels.Label) { ls = append(ls, l) })
		var got uint64
		got, buf = LabelPairsHash(ls, buf)
		if want := lset.Hash(); got != want {
			t.Fatalf("set %d (%d labels): LabelPairsHash %x, labels.Hash %x", i, len(ls), got, want)
		}
	}
}
