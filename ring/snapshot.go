package ring

import (
	"cmp"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// Snapshot is an immutable view of the ring: every node by name, and the
// token circle of the ACTIVE ones. It is safe for concurrent use; a change
// of membership builds a new Snapshot. Nodes returned by its methods point
// into it and must not be modified.
type Snapshot struct {
	// nodes holds every node, sorted by name, one per name.
	nodes []Node
	// tokens is the circle: the distinct tokens of ACTIVE nodes, ascending;
	// owner[i] is the index in nodes of the node holding tokens[i].
	tokens []uint32
	owner  []int32
	active int
	// placed is the number of nodes on the circle: ACTIVE nodes holding at
	// least one token there. zones is the number of distinct zones among
	// them when any of them has a zone (an empty zone counts as one), 0
	// otherwise. Owners needs both to know when to stop walking.
	placed, zones int
}

// NewSnapshot builds a Snapshot from node records. The records are trusted
// to be well formed only as far as placement stays deterministic: of two
// records with one name the first in nodes is kept; tokens are taken as
// given (unsorted or repeated ones are sorted and deduplicated), and a token
// claimed by two ACTIVE nodes belongs to the one whose name sorts first, so
// that every node that sees the same records places series alike. The Tokens
// slices are shared with the records, not copied, and must not be modified.
func NewSnapshot(nodes []Node) *Snapshot {
	s := &Snapshot{nodes: make([]Node, 0, len(nodes))}
	seen := make(map[string]struct{}, len(nodes))
	for _, n := range nodes {
		if _, dup := seen[n.Name]; dup {
			continue
		}
		seen[n.Name] = struct{}{}
		s.nodes = append(s.nodes, n)
	}
	slices.SortStableFunc(s.nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })

	type point struct {
		token uint32
		node  int32
	}
	var pts []point
	for i, n := range s.nodes {
		if n.State != StateActive {
			continue
		}
		s.active++
		for _, t := range n.Tokens {
			pts = append(pts, point{t, int32(i)})
		}
	}
	// Node indexes follow name order, so sorting by (token, index) puts the
	// node whose name sorts first ahead of any other claiming the token.
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.token, b.token); c != 0 {
			return c
		}
		return cmp.Compare(a.node, b.node)
	})
	s.tokens = make([]uint32, 0, len(pts))
	s.owner = make([]int32, 0, len(pts))
	for i, p := range pts {
		if i > 0 && pts[i-1].token == p.token {
			continue
		}
		s.tokens = append(s.tokens, p.token)
		s.owner = append(s.owner, p.node)
	}
	// An ACTIVE node without tokens (or whose every token another node
	// won) is not on the circle: it owns nothing and counts for nothing.
	placed := make(map[int32]struct{}, s.active)
	zones := map[string]struct{}{}
	zoned := false
	for _, i := range s.owner {
		placed[i] = struct{}{}
		zones[s.nodes[i].Zone] = struct{}{}
		zoned = zoned || s.nodes[i].Zone != ""
	}
	s.placed = len(placed)
	if zoned {
		s.zones = len(zones)
	}
	return s
}

// Len is the number of nodes in the ring, in any state.
func (s *Snapshot) Len() int { return len(s.nodes) }

// Active is the number of ACTIVE nodes, the ones that own series; one
// without tokens on the circle is counted but owns nothing.
func (s *Snapshot) Active() int { return s.active }

// Nodes returns a copy of the nodes sorted by name (their Tokens are shared).
func (s *Snapshot) Nodes() []Node { return slices.Clone(s.nodes) }

// Lookup returns the node of that name.
func (s *Snapshot) Lookup(name string) (*Node, bool) {
	i, ok := slices.BinarySearchFunc(s.nodes, name, func(n Node, name string) int { return cmp.Compare(n.Name, name) })
	if !ok {
		return nil, false
	}
	return &s.nodes[i], true
}

// Owners appends to dst[:0] the rf owners of hash and returns it: walking
// clockwise from the first token >= hash (wrapping past the top of the
// circle), the distinct ACTIVE nodes met first. When nodes have zones, a
// node whose zone already holds an owner is skipped while other zones
// remain, so owners are in distinct zones; with fewer zones than rf the
// rest are the next distinct nodes clockwise. Fewer than rf owners come back
// when fewer nodes are ACTIVE (with tokens), none when the ring is empty or
// rf < 1.
// Owners does not allocate when cap(dst) >= rf.
func (s *Snapshot) Owners(hash uint32, rf int, dst []*Node) []*Node {
	dst = dst[:0]
	rf = min(rf, s.placed)
	if rf <= 0 {
		return dst
	}
	start, _ := slices.BinarySearch(s.tokens, hash) // the first token >= hash
	if s.zones > 0 {
		// One owner per zone first, as long as there are unused zones.
		want := min(rf, s.zones)
		for i := range s.tokens {
			n := &s.nodes[s.owner[(start+i)%len(s.tokens)]]
			if !zoneTaken(dst, n.Zone) {
				dst = append(dst, n)
				if len(dst) == want {
					break
				}
			}
		}
		if len(dst) == rf {
			return dst
		}
	}
	for i := range s.tokens {
		n := &s.nodes[s.owner[(start+i)%len(s.tokens)]]
		if !slices.Contains(dst, n) {
			dst = append(dst, n)
			if len(dst) == rf {
				break
			}
		}
	}
	return dst
}

func zoneTaken(owners []*Node, zone string) bool {
	for _, o := range owners {
		if o.Zone == zone {
			return true
		}
	}
	return false
}

// rangeSize is the number of hashes that reach tokens[i] first walking
// clockwise: those in (tokens[i-1], tokens[i]], wrapping for i = 0.
func (s *Snapshot) rangeSize(i int) uint64 {
	if len(s.tokens) == 1 {
		return 1 << 32
	}
	prev := uint64(s.tokens[(i+len(s.tokens)-1)%len(s.tokens)])
	return (uint64(s.tokens[i]) + 1<<32 - prev) % (1 << 32)
}

// Shares returns each ACTIVE node's primary share of the hash space: the
// fraction of hashes for which it is the first owner. The shares sum to 1
// (to nothing on an empty ring).
func (s *Snapshot) Shares() map[string]float64 {
	out := make(map[string]float64, s.active)
	for i := range s.nodes {
		if s.nodes[i].State == StateActive {
			out[s.nodes[i].Name] = 0
		}
	}
	for i := range s.tokens {
		out[s.nodes[s.owner[i]].Name] += float64(s.rangeSize(i)) / (1 << 32)
	}
	return out
}

// OwnedShare returns, for each ACTIVE node, the fraction of hashes (so of
// series) for which it is one of the rf owners: 0.75 on average for 4 nodes
// and rf = 3. The shares sum to min(rf, nodes with tokens). Its cost is one Owners
// call per token: it is for the status API, not the write path.
func (s *Snapshot) OwnedShare(rf int) map[string]float64 {
	out := make(map[string]float64, s.active)
	for i := range s.nodes {
		if s.nodes[i].State == StateActive {
			out[s.nodes[i].Name] = 0
		}
	}
	owners := make([]*Node, 0, min(max(rf, 0), s.placed))
	for i, t := range s.tokens {
		// Every hash in the range of token i walks from token i, so all of
		// them have the owners of t itself.
		size := float64(s.rangeSize(i)) / (1 << 32)
		for _, n := range s.Owners(t, rf, owners) {
			out[n.Name] += size
		}
	}
	return out
}

// HashSeries places a label set on the circle: xxhash64 over each label's
// name, 0xff, value, 0xff in label order, folded to 32 bits as the high
// half XOR the low half. The byte stream is the one labels.Labels.Hash hashes
// under the slicelabels build, but it is written out here on purpose: Hash's
// input is the in-memory encoding, which differs between build tags and is
// documented as not stable across Prometheus versions, and a placement hash
// must be the same on every node of a fleet in the middle of an upgrade.
// TestHashSeriesGolden pins it. It does not allocate.
func HashSeries(lset labels.Labels) uint32 {
	h := SeriesKey(lset)
	return uint32(h>>32) ^ uint32(h)
}
