package ring

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestGenerateTokens(t *testing.T) {
	// A source that repeats itself and hits the taken tokens, so that both
	// kinds of collision are exercised.
	seq := func(vals ...uint32) func() uint32 {
		i := 0
		return func() uint32 {
			v := vals[i%len(vals)]
			i++
			return v
		}
	}
	for _, tc := range []struct {
		name  string
		next  func() uint32
		n     int
		taken map[uint32]struct{}
		want  []uint32
	}{
		{name: "zero", next: seq(1), n: 0, want: nil},
		{name: "negative", next: seq(1), n: -3, want: nil},
		{name: "sorted", next: seq(9, 3, 7), n: 3, want: []uint32{3, 7, 9}},
		{name: "own duplicates skipped", next: seq(5, 5, 5, 2, 5, 8), n: 3, want: []uint32{2, 5, 8}},
		{name: "taken skipped", next: seq(1, 2, 3, 4, 5), n: 2, taken: map[uint32]struct{}{1: {}, 2: {}, 4: {}}, want: []uint32{3, 5}},
		{name: "circle ends", next: seq(0, 1<<32-1), n: 2, want: []uint32{0, 1<<32 - 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := generateTokens(tc.next, tc.n, tc.taken)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("generateTokens = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGenerateTokensRandom(t *testing.T) {
	taken := map[uint32]struct{}{}
	for _, tok := range GenerateTokens(512, nil) {
		taken[tok] = struct{}{}
	}
	got := GenerateTokens(128, taken)
	if len(got) != 128 {
		t.Fatalf("got %d tokens, want 128", len(got))
	}
	for i, tok := range got {
		if _, ok := taken[tok]; ok {
			t.Fatalf("token %d is already taken", tok)
		}
		if i > 0 && got[i-1] >= tok {
			t.Fatalf("tokens not strictly ascending at %d: %d, %d", i, got[i-1], tok)
		}
	}
}

// ringOf builds n ACTIVE nodes of k tokens each from a seeded source;
// node names are n00, n01, ...
func ringOf(rng *rand.Rand, n, k int, zones ...string) []Node {
	taken := map[uint32]struct{}{}
	nodes := make([]Node, n)
	for i := range nodes {
		toks := generateTokens(rng.Uint32, k, taken)
		for _, tok := range toks {
			taken[tok] = struct{}{}
		}
		nodes[i] = Node{Name: fmt.Sprintf("n%02d", i), URL: fmt.Sprintf("http://n%02d", i), State: StateActive, Tokens: toks}
		if len(zones) > 0 {
			nodes[i].Zone = zones[i%len(zones)]
		}
	}
	return nodes
}

// balance is the largest primary share over the smallest.
func balance(s *Snapshot) float64 {
	lo, hi := 2.0, 0.0
	for _, sh := range s.Shares() {
		lo, hi = min(lo, sh), max(hi, sh)
	}
	return hi / lo
}

// TestGenerateTokensBalance measures how evenly random tokens split the
// hash space; the figures are quoted in GenerateTokens' comment. The bounds
// are loose (they guard against a broken generator, e.g. tokens clustered
// in one arc, not against bad luck): the source is seeded, so the test is
// deterministic.
func TestGenerateTokensBalance(t *testing.T) {
	const rings = 20
	for _, tc := range []struct {
		nodes, tokens int
		worst         float64
	}{
		{nodes: 4, tokens: 128, worst: 1.6},
		{nodes: 16, tokens: 128, worst: 1.9},
	} {
		t.Run(fmt.Sprintf("nodes=%d/tokens=%d", tc.nodes, tc.tokens), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(13, uint64(tc.nodes)))
			sum, worst, owned := 0.0, 0.0, 0.0
			for range rings {
				s := NewSnapshot(ringOf(rng, tc.nodes, tc.tokens))
				b := balance(s)
				sum += b
				worst = max(worst, b)
				lo, hi := 2.0, 0.0
				for _, sh := range s.OwnedShare(3) {
					lo, hi = min(lo, sh), max(hi, sh)
				}
				owned = max(owned, hi/lo)
			}
			t.Logf("max/min primary share over %d rings: mean %.3f, worst %.3f; worst max/min owned share at rf=3: %.3f",
				rings, sum/rings, worst, owned)
			if worst > tc.worst {
				t.Fatalf("worst max/min share %.3f > %.2f", worst, tc.worst)
			}
		})
	}
}
