package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

func names(ns []*Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

func node(name, zone string, st State, tokens ...uint32) Node {
	return Node{Name: name, Zone: zone, State: st, Tokens: tokens}
}

// TestOwners checks placement on small hand-made circles.
func TestOwners(t *testing.T) {
	abc := []Node{
		node("c", "", StateActive, 300, 600),
		node("a", "", StateActive, 100, 400),
		node("b", "", StateActive, 200, 500),
	}
	for _, tc := range []struct {
		name  string
		nodes []Node
		hash  uint32
		rf    int
		want  []string
	}{
		{name: "empty ring", nodes: nil, hash: 5, rf: 3, want: []string{}},
		{name: "rf zero", nodes: abc, hash: 5, rf: 0, want: []string{}},
		{name: "rf negative", nodes: abc, hash: 5, rf: -1, want: []string{}},
		{name: "below first token", nodes: abc, hash: 5, rf: 2, want: []string{"a", "b"}},
		{name: "on a token", nodes: abc, hash: 200, rf: 1, want: []string{"b"}},
		{name: "just past a token", nodes: abc, hash: 201, rf: 1, want: []string{"c"}},
		{name: "wraps past the top", nodes: abc, hash: 550, rf: 3, want: []string{"c", "a", "b"}},
		{name: "above the last token", nodes: abc, hash: 601, rf: 2, want: []string{"a", "b"}},
		{name: "rf above nodes gives all", nodes: abc, hash: 350, rf: 5, want: []string{"a", "b", "c"}},
		{name: "distinct nodes, not tokens", nodes: []Node{
			node("a", "", StateActive, 10, 20, 30),
			node("b", "", StateActive, 40),
		}, hash: 0, rf: 2, want: []string{"a", "b"}},
		{name: "joining and leaving own nothing", nodes: []Node{
			node("a", "", StateJoining, 10),
			node("b", "", StateLeaving, 20),
			node("c", "", StateActive, 30),
		}, hash: 0, rf: 3, want: []string{"c"}},
		{name: "no active node", nodes: []Node{
			node("a", "", StateJoining, 10),
			node("b", "", StateLeaving, 20),
		}, hash: 0, rf: 1, want: []string{}},
		{name: "zones: skip a taken zone", nodes: []Node{
			node("a1", "a", StateActive, 10),
			node("a2", "a", StateActive, 20),
			node("b1", "b", StateActive, 30),
			node("c1", "c", StateActive, 40),
		}, hash: 0, rf: 3, want: []string{"a1", "b1", "c1"}},
		{name: "zones: fewer zones than rf", nodes: []Node{
			node("a1", "a", StateActive, 10),
			node("a2", "a", StateActive, 20),
			node("a3", "a", StateActive, 25),
			node("b1", "b", StateActive, 30),
		}, hash: 0, rf: 3, want: []string{"a1", "b1", "a2"}},
		{name: "zones: an empty zone is a zone", nodes: []Node{
			node("a1", "a", StateActive, 10),
			node("a2", "a", StateActive, 20),
			node("x", "", StateActive, 30),
		}, hash: 0, rf: 2, want: []string{"a1", "x"}},
		{name: "zones: inactive zone does not count", nodes: []Node{
			node("a1", "a", StateActive, 10),
			node("a2", "a", StateActive, 20),
			node("b1", "b", StateJoining, 15),
		}, hash: 0, rf: 2, want: []string{"a1", "a2"}},
		{name: "duplicate token: first name wins", nodes: []Node{
			node("z", "", StateActive, 10),
			node("m", "", StateActive, 10, 50),
		}, hash: 0, rf: 1, want: []string{"m"}},
		{name: "duplicate token held by an inactive node", nodes: []Node{
			node("z", "", StateActive, 10),
			node("m", "", StateJoining, 10),
		}, hash: 0, rf: 1, want: []string{"z"}},
		{name: "duplicate name: first record wins", nodes: []Node{
			node("a", "", StateActive, 100),
			node("a", "", StateActive, 10),
			node("b", "", StateActive, 50),
		}, hash: 0, rf: 1, want: []string{"b"}},
		{name: "unsorted and repeated tokens in a record", nodes: []Node{
			node("a", "", StateActive, 90, 30, 30),
			node("b", "", StateActive, 60),
		}, hash: 31, rf: 2, want: []string{"b", "a"}},
		{name: "active node without tokens is not counted", nodes: []Node{
			node("a", "", StateActive),
			node("b", "", StateActive, 20),
		}, hash: 0, rf: 3, want: []string{"b"}},
		{name: "zones: zone of a node without tokens is not counted", nodes: []Node{
			node("a1", "a", StateActive, 10),
			node("a2", "a", StateActive, 20),
			node("b1", "b", StateActive),
		}, hash: 0, rf: 2, want: []string{"a1", "a2"}},
		{name: "zones: zone whose only token was won by another node", nodes: []Node{
			node("a1", "a", StateActive, 10),
			node("a2", "a", StateActive, 20),
			node("b1", "b", StateActive, 10),
		}, hash: 0, rf: 3, want: []string{"a1", "a2"}},
		{name: "top of the circle", nodes: []Node{
			node("a", "", StateActive, 0),
			node("b", "", StateActive, math.MaxUint32),
		}, hash: math.MaxUint32, rf: 2, want: []string{"b", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSnapshot(tc.nodes)
			got := names(s.Owners(tc.hash, tc.rf, nil))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Owners(%d, %d) = %v, want %v", tc.hash, tc.rf, got, tc.want)
			}
		})
	}
}

func TestSnapshotAccessors(t *testing.T) {
	in := []Node{
		node("c", "", StateActive, 3),
		node("a", "", StateJoining, 1),
		node("b", "", StateActive, 2),
		node("a", "", StateActive, 9),
	}
	s := NewSnapshot(in)
	if s.Len() != 3 || s.Active() != 2 {
		t.Fatalf("Len, Active = %d, %d, want 3, 2", s.Len(), s.Active())
	}
	ns := s.Nodes()
	var got []string
	for _, n := range ns {
		got = append(got, n.Name+"/"+n.State.String())
	}
	if want := []string{"a/JOINING", "b/ACTIVE", "c/ACTIVE"}; !slices.Equal(got, want) {
		t.Fatalf("Nodes = %v, want %v", got, want)
	}
	ns[0].Name = "changed"
	if n, ok := s.Lookup("a"); !ok || n.Name != "a" || n.State != StateJoining {
		t.Fatalf("Lookup(a) = %+v, %v after the copy was changed", n, ok)
	}
	if _, ok := s.Lookup("x"); ok {
		t.Fatal("Lookup(x) found a node")
	}
	shares := s.Shares()
	if _, ok := shares["a"]; ok || len(shares) != 2 {
		t.Fatalf("Shares = %v, want b and c only", shares)
	}
}

func TestShares(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []Node
		rf    int
		share map[string]float64
		owned map[string]float64
	}{
		{name: "empty", nodes: nil, rf: 3, share: map[string]float64{}, owned: map[string]float64{}},
		{name: "huge rf", nodes: []Node{node("a", "", StateActive, 7)}, rf: math.MaxInt,
			share: map[string]float64{"a": 1}, owned: map[string]float64{"a": 1}},
		{name: "one token", nodes: []Node{node("a", "", StateActive, 7)}, rf: 3,
			share: map[string]float64{"a": 1}, owned: map[string]float64{"a": 1}},
		{name: "halves", nodes: []Node{
			node("a", "", StateActive, 0),
			node("b", "", StateActive, 1<<31),
		}, rf: 1, share: map[string]float64{"a": 0.5, "b": 0.5}, owned: map[string]float64{"a": 0.5, "b": 0.5}},
		{name: "quarters, rf 3 of 4", nodes: []Node{
			node("a", "", StateActive, 1<<30-1),
			node("b", "", StateActive, 2<<30-1),
			node("c", "", StateActive, 3<<30-1),
			node("d", "", StateActive, 4<<30-1),
			node("j", "", StateJoining, 5),
		}, rf: 3,
			share: map[string]float64{"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25},
			owned: map[string]float64{"a": 0.75, "b": 0.75, "c": 0.75, "d": 0.75}},
		{name: "uneven", nodes: []Node{
			node("a", "", StateActive, 1<<30-1, 3<<30-1),
			node("b", "", StateActive, 2<<30-1),
		}, rf: 1,
			share: map[string]float64{"a": 0.75, "b": 0.25},
			owned: map[string]float64{"a": 0.75, "b": 0.25}},
		{name: "zones put the lone zone in every set", nodes: []Node{
			node("a1", "a", StateActive, 1<<30),
			node("a2", "a", StateActive, 2<<30),
			node("a3", "a", StateActive, 3<<30),
			node("b1", "b", StateActive, 0),
		}, rf: 2,
			share: map[string]float64{"a1": 0.25, "a2": 0.25, "a3": 0.25, "b1": 0.25},
			// b1's range goes on to a1; a1's, a2's and a3's skip zone a up to b1.
			owned: map[string]float64{"a1": 0.5, "a2": 0.25, "a3": 0.25, "b1": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSnapshot(tc.nodes)
			check := func(what string, got, want map[string]float64) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s = %v, want %v", what, got, want)
				}
				for k, w := range want {
					if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
						t.Fatalf("%s = %v, want %v", what, got, want)
					}
				}
			}
			check("Shares", s.Shares(), tc.share)
			check(fmt.Sprintf("OwnedShare(%d)", tc.rf), s.OwnedShare(tc.rf), tc.owned)
		})
	}
}

// TestOwnedShareSums checks on random rings that primary shares sum to 1
// and owned shares to min(rf, active), and that OwnedShare agrees with
// counting Owners over many hashes.
func TestOwnedShareSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewSnapshot(ringOf(rng, 4, 128))
	sum := 0.0
	for _, v := range s.Shares() {
		sum += v
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("primary shares sum to %v", sum)
	}
	for _, rf := range []int{1, 2, 3, 4, 6} {
		owned := s.OwnedShare(rf)
		sum := 0.0
		for _, v := range owned {
			sum += v
		}
		if want := float64(min(rf, 4)); math.Abs(sum-want) > 1e-9 {
			t.Fatalf("rf=%d: owned shares sum to %v, want %v", rf, sum, want)
		}
		const n = 200_000
		count := map[string]int{}
		var dst []*Node
		for range n {
			dst = s.Owners(rng.Uint32(), rf, dst)
			for _, o := range dst {
				count[o.Name]++
			}
		}
		for name, share := range owned {
			if got := float64(count[name]) / n; math.Abs(got-share) > 0.01 {
				t.Fatalf("rf=%d node %s: counted %.4f of hashes, OwnedShare says %.4f", rf, name, got, share)
			}
		}
		if rf == 3 {
			t.Logf("4 nodes × 128 tokens, rf=3: owned shares %v", owned)
		}
	}
}

// series makes n label sets shaped like etcd metrics.
func series(n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings(
			"__name__", "etcd_disk_wal_fsync_duration_seconds_bucket",
			"cluster", fmt.Sprintf("c%05d", i/60),
			"instance", fmt.Sprintf("10.0.%d.%d:2379", i/60%256, i%3),
			"le", fmt.Sprint(i%20),
		)
	}
	return out
}

// TestAddNodeMovesOnlyItsShare hashes 100k series on 4 nodes, adds a fifth,
// and checks that only series that the new node now owns changed owners,
// that each of them lost exactly one old owner, and that the fraction that
// moved is the new node's owned share.
func TestAddNodeMovesOnlyItsShare(t *testing.T) {
	const rf = 3
	rng := rand.New(rand.NewPCG(5, 5))
	nodes := ringOf(rng, 5, 128)
	before, after := NewSnapshot(nodes[:4]), NewSnapshot(nodes)
	newName := nodes[4].Name
	moved := 0
	ss := series(100_000)
	var ob, oa []*Node
	for _, ls := range ss {
		h := HashSeries(ls)
		ob = before.Owners(h, rf, ob)
		oa = after.Owners(h, rf, oa)
		nb, na := names(ob), names(oa)
		slices.Sort(nb)
		slices.Sort(na)
		if slices.Equal(nb, na) {
			continue
		}
		moved++
		if !slices.Contains(na, newName) {
			t.Fatalf("series %s changed owners %v -> %v without the new node", ls, nb, na)
		}
		kept := 0
		for _, n := range na {
			if slices.Contains(nb, n) {
				kept++
			}
		}
		if kept != rf-1 {
			t.Fatalf("series %s: owners %v -> %v: %d kept, want %d", ls, nb, na, kept, rf-1)
		}
	}
	frac := float64(moved) / float64(len(ss))
	share := after.OwnedShare(rf)[newName]
	t.Logf("adding a 5th node moved %.4f of 100k series; its owned share is %.4f (primary %.4f)",
		frac, share, after.Shares()[newName])
	if math.Abs(frac-share) > 0.01 {
		t.Fatalf("moved fraction %.4f, want the new node's owned share %.4f", frac, share)
	}
}

// TestZonesDistinct checks that with 3 zones and rf=3 every series lands in
// 3 zones, and that with 2 zones it lands in both and on 3 distinct nodes.
func TestZonesDistinct(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ss := series(20_000)
	for _, tc := range []struct {
		zones     []string
		nodes     int
		wantZones int
	}{
		{zones: []string{"z1", "z2", "z3"}, nodes: 6, wantZones: 3},
		{zones: []string{"z1", "z2", "z3"}, nodes: 9, wantZones: 3},
		{zones: []string{"z1", "z2"}, nodes: 4, wantZones: 2},
	} {
		t.Run(fmt.Sprintf("zones=%d/nodes=%d", len(tc.zones), tc.nodes), func(t *testing.T) {
			s := NewSnapshot(ringOf(rng, tc.nodes, 128, tc.zones...))
			var dst []*Node
			for _, ls := range ss {
				dst = s.Owners(HashSeries(ls), 3, dst)
				zones := map[string]bool{}
				nodes := map[string]bool{}
				for _, n := range dst {
					zones[n.Zone] = true
					nodes[n.Name] = true
				}
				if len(dst) != 3 || len(nodes) != 3 || len(zones) != tc.wantZones {
					t.Fatalf("series %s: owners %v in %d zones, want 3 distinct nodes in %d zones",
						ls, names(dst), len(zones), tc.wantZones)
				}
			}
		})
	}
}

func TestOwnersNoAlloc(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, zones := range [][]string{nil, {"a", "b", "c"}, {"a", "b"}} {
		s := NewSnapshot(ringOf(rng, 16, 128, zones...))
		dst := make([]*Node, 0, 3)
		h := uint32(0)
		allocs := testing.AllocsPerRun(1000, func() {
			h += 2654435761
			dst = s.Owners(h, 3, dst)
		})
		if allocs != 0 {
			t.Fatalf("zones %v: Owners allocates %v times per call", zones, allocs)
		}
	}
	for _, ls := range []labels.Labels{labels.FromStrings("__name__", "up", "instance", "x"), manyLabels(40)} {
		if allocs := testing.AllocsPerRun(1000, func() { HashSeries(ls) }); allocs != 0 {
			t.Fatalf("HashSeries allocates %v times per call on %d labels", allocs, ls.Len())
		}
	}
}

// TestHashSeriesGolden pins the placement hash: a change would move series
// between nodes of different versions.
func TestHashSeriesGolden(t *testing.T) {
	for _, tc := range []struct {
		lset labels.Labels
		want uint32
	}{
		{lset: labels.EmptyLabels(), want: 0xbe9e32ae},
		{lset: labels.FromStrings("__name__", "up"), want: 0x30ecb753},
		{lset: labels.FromStrings("__name__", "etcd_server_has_leader", "cluster", "c1", "instance", "10.0.0.1:2379"), want: 0x60a8cd4e},
		// Longer than HashSeries' buffer: one long value, then many labels.
		{lset: labels.FromStrings("__name__", "x", "long", strings.Repeat("v", 600), "z", "1"), want: 0x0f3e3002},
		{lset: manyLabels(40), want: 0x626142f8},
	} {
		t.Run(fmt.Sprintf("len=%d", len(tc.lset.String())), func(t *testing.T) {
			if want := referenceHash(tc.lset); HashSeries(tc.lset) != want {
				t.Fatalf("HashSeries = %#x, want %#x (xxhash of the byte stream, folded)", HashSeries(tc.lset), want)
			}
			if got := HashSeries(tc.lset); got != tc.want {
				t.Fatalf("HashSeries = %#x, golden %#x", got, tc.want)
			}
		})
	}
}

func manyLabels(n int) labels.Labels {
	b := labels.NewScratchBuilder(n)
	for i := range n {
		b.Add(fmt.Sprintf("label_%02d", i), fmt.Sprintf("value_%02d", i))
	}
	b.Sort()
	return b.Labels()
}

// referenceHash is HashSeries written the obvious way.
func referenceHash(lset labels.Labels) uint32 {
	var b []byte
	lset.Range(func(l labels.Label) {
		b = append(b, l.Name...)
		b = append(b, 0xff)
		b = append(b, l.Value...)
		b = append(b, 0xff)
	})
	h := xxhash.Sum64(b)
	return uint32(h>>32) ^ uint32(h)
}

// FuzzHashSeries checks HashSeries against referenceHash on label sets of
// any length, across its buffer boundary.
func FuzzHashSeries(f *testing.F) {
	f.Add("__name__", "up", "job", "etcd", 0)
	f.Add("a", strings.Repeat("x", 500), "b", "y", 3)
	f.Add("a", "", "b", strings.Repeat("y", 1000), 40)
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string, extra int) {
		b := labels.NewScratchBuilder(4)
		b.Add(n1, v1)
		b.Add(n2, v2)
		for i := range extra % 64 {
			b.Add(fmt.Sprintf("l%02d", i), v1)
		}
		b.Sort()
		ls := b.Labels()
		if got, want := HashSeries(ls), referenceHash(ls); got != want {
			t.Fatalf("HashSeries(%s) = %#x, reference %#x", ls, got, want)
		}
	})
}

func BenchmarkOwners(b *testing.B) {
	for _, n := range []int{4, 16, 64} {
		for _, zones := range [][]string{nil, {"a", "b", "c"}} {
			rng := rand.New(rand.NewPCG(9, uint64(n)))
			s := NewSnapshot(ringOf(rng, n, 128, zones...))
			b.Run(fmt.Sprintf("nodes=%d/tokens=128/zones=%d", n, len(zones)), func(b *testing.B) {
				b.ReportAllocs()
				dst := make([]*Node, 0, 3)
				h := uint32(0)
				for b.Loop() {
					h += 2654435761
					dst = s.Owners(h, 3, dst)
				}
			})
		}
	}
}

// BenchmarkHashSeries compares HashSeries with labels.Labels.Hash, which
// hashes the in-memory encoding in one call but is not stable across builds.
func BenchmarkHashSeries(b *testing.B) {
	ls := series(1)[0]
	b.Run("impl=HashSeries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			HashSeries(ls)
		}
	})
	b.Run("impl=labels.Hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ls.Hash()
		}
	})
}
