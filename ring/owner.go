package ring

import "github.com/cespare/xxhash/v2"

// Ownership of work that must run once in the ring (a rule group, the
// probe of one etcd cluster): each such work item has a key, and its owner
// is the first ACTIVE node met walking clockwise from HashKey(key), the
// node that would be the first owner of a series with that hash. Every
// node that sees the same membership computes the same owner without
// asking anyone; when the owner leaves or dies, the work moves to the next
// node clockwise, and only the work of the node that left moves.

// HashKey places a work item's key on the circle: xxhash64 of the key's
// bytes folded to 32 bits (high half XOR low half), as HashSeries folds a
// series' hash. TestHashKeyGolden pins it: every node of a fleet in the
// middle of an upgrade must agree on owners.
func HashKey(key string) uint32 {
	h := xxhash.Sum64String(key)
	return uint32(h>>32) ^ uint32(h)
}

// Owner returns the node owning key: the first ACTIVE node clockwise from
// HashKey(key). ok is false when no ACTIVE node holds tokens.
func (s *Snapshot) Owner(key string) (n *Node, ok bool) {
	var buf [1]*Node
	owners := s.Owners(HashKey(key), 1, buf[:0])
	if len(owners) == 0 {
		return nil, false
	}
	return owners[0], true
}

// Owns reports whether the node named self owns key.
func (s *Snapshot) Owns(self, key string) bool {
	n, ok := s.Owner(key)
	return ok && n.Name == self
}

// RuleGroupKey is the ownership key of a rule group: its file and name.
func RuleGroupKey(file, group string) string { return file + "\x00" + group }

// ProbeTargetKey is the ownership key of the probe of one etcd cluster.
func ProbeTargetKey(cluster string) string { return "probe\x00" + cluster }

// SLOKey is the ownership key of an SLO, for the node that computes its
// status in /api/v1/slo.
func SLOKey(name string) string { return "slo\x00" + name }
