// Package ring makes a set of etcdgate nodes one store: membership in
// etcd (a lease per node, a watch on the prefix), tokens on a 32-bit hash
// circle, and the placement of each series on replication_factor owners.
//
// Placement: each node holds random tokens on the circle (GenerateTokens).
// A series is hashed to a point of the circle (HashSeries: xxhash64 of its
// final label set, folded to 32 bits); its owners are the first
// replication_factor distinct ACTIVE nodes met walking clockwise from that
// point, in distinct zones while zones remain (Snapshot.Owners). JOINING
// and LEAVING nodes own nothing. Since a node's tokens only take over the
// arcs just before them, adding a node moves only the series it now owns,
// and each of them keeps all but one of its old owners. A Snapshot is an
// immutable view built from the node records; a membership change builds a
// new one, so placement never takes a lock on the write path.
//
// Reads: Queryable asks every ACTIVE node for the series of a selector
// (Peers.Select on SelectPath) and merges their replicas (fanout.go);
// PushAggregate evaluates an aggregation on the nodes that hold its
// series instead, exactly, in two rounds (pushdown.go).
package ring
