package ring

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestHashKeyGolden pins the ownership hash: a change would move every
// rule group and probe target of a fleet in the middle of an upgrade.
func TestHashKeyGolden(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint32
	}{
		{"", 0xbe9e32ae}, // xxhash64("") = 0xef46db3751d8e999,
		{RuleGroupKey("rules.yml", "etcd"), 0xb7a119a3},
		{ProbeTargetKey("cluster-1"), 0xabf1df99},
	} {
		if got := HashKey(tc.key); got != tc.want {
			t.Errorf("HashKey(%q) = %#x, want %#x", tc.key, got, tc.want)
		}
	}
}

func seededRing(seed uint64, states ...State) []Node {
	r := rand.New(rand.NewPCG(seed, seed))
	var out []Node
	taken := map[uint32]struct{}{}
	for i, st := range states {
		toks := generateTokens(r.Uint32, 64, taken)
		for _, tk := range toks {
			taken[tk] = struct{}{}
		}
		out = append(out, Node{Name: fmt.Sprintf("n%d", i), State: st, Tokens: toks})
	}
	return out
}

func ownersOf(s *Snapshot, keys []string) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		if n, ok := s.Owner(k); ok {
			out[k] = n.Name
		}
	}
	return out
}

func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = RuleGroupKey(fmt.Sprintf("rules-%d.yml", i%7), fmt.Sprintf("group-%d", i))
	}
	return keys
}

// TestOwnerStable: every node that sees the same records, in any order,
// names the same owner, and every key has exactly one.
func TestOwnerStable(t *testing.T) {
	nodes := seededRing(1, StateActive, StateActive, StateActive, StateActive)
	keys := testKeys(2000)
	want := ownersOf(NewSnapshot(nodes), keys)
	if len(want) != len(keys) {
		t.Fatalf("%d of %d keys have an owner", len(want), len(keys))
	}
	per := map[string]int{}
	for _, o := range want {
		per[o]++
	}
	for _, n := range nodes {
		// 2000 keys over 4 nodes with 64 tokens each: every node owns a
		// good share (500 on average).
		if per[n.Name] < 250 {
			t.Errorf("node %s owns %d of %d keys: %v", n.Name, per[n.Name], len(keys), per)
		}
	}
	for i := range 5 {
		shuffled := append([]Node(nil), nodes...)
		rand.New(rand.NewPCG(uint64(i), 7)).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		got := ownersOf(NewSnapshot(shuffled), keys)
		for k, o := range want {
			if got[k] != o {
				t.Fatalf("order %d: key %q owned by %s, want %s", i, k, got[k], o)
			}
		}
	}
}

// TestOwnerMovesOnMembershipChange: when a node dies or leaves, exactly
// its keys move (each to a live node); when it comes back it takes them
// back and nothing else moves.
func TestOwnerMovesOnMembershipChange(t *testing.T) {
	nodes := seededRing(2, StateActive, StateActive, StateActive, StateActive)
	keys := testKeys(2000)
	before := ownersOf(NewSnapshot(nodes), keys)
	for _, gone := range []struct {
		name  string
		nodes []Node
	}{
		{"dead", append(append([]Node(nil), nodes[:1]...), nodes[2:]...)},
		{"leaving", func() []Node {
			ns := append([]Node(nil), nodes...)
			ns[1].State = StateLeaving
			return ns
		}()},
		{"joining", func() []Node {
			ns := append([]Node(nil), nodes...)
			ns[1].State = StateJoining
			return ns
		}()},
	} {
		t.Run(gone.name, func(t *testing.T) {
			after := ownersOf(NewSnapshot(gone.nodes), keys)
			moved := 0
			for _, k := range keys {
				switch {
				case after[k] == "" || after[k] == "n1":
					t.Fatalf("key %q owned by %q without n1 ACTIVE", k, after[k])
				case before[k] == "n1":
					moved++
				case after[k] != before[k]:
					t.Fatalf("key %q moved from %s to %s, though its owner stayed", k, before[k], after[k])
				}
			}
			if moved == 0 {
				t.Fatal("n1 owned no key")
			}
			back := ownersOf(NewSnapshot(nodes), keys)
			for _, k := range keys {
				if back[k] != before[k] {
					t.Fatalf("key %q owned by %s after n1 came back, want %s", k, back[k], before[k])
				}
			}
		})
	}
}

// TestOwnerOnlyActive: JOINING and LEAVING nodes own nothing; a ring
// without an ACTIVE node has no owner; Owns agrees with Owner.
func TestOwnerOnlyActive(t *testing.T) {
	keys := testKeys(500)
	s := NewSnapshot(seededRing(3, StateJoining, StateActive, StateLeaving))
	for _, k := range keys {
		n, ok := s.Owner(k)
		if !ok || n.Name != "n1" {
			t.Fatalf("key %q: owner %v, %v; want n1, the only ACTIVE node", k, n, ok)
		}
		if !s.Owns("n1", k) || s.Owns("n0", k) || s.Owns("n2", k) {
			t.Fatalf("key %q: Owns disagrees with Owner", k)
		}
	}
	for _, s := range []*Snapshot{NewSnapshot(nil), NewSnapshot(seededRing(4, StateJoining, StateLeaving))} {
		if n, ok := s.Owner("k"); ok || s.Owns("n0", "k") {
			t.Fatalf("owner %v in a ring without ACTIVE nodes", n)
		}
	}
}

// BenchmarkOwner is the cost of one ownership decision: every rule group
// makes one per round, the probe scheduler one per target per tick.
func BenchmarkOwner(b *testing.B) {
	s := NewSnapshot(seededRing(5, StateActive, StateActive, StateActive, StateActive))
	keys := testKeys(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Owns("n0", keys[i%len(keys)])
		i++
	}
}
