package ring

// Membership
//
// Each node registers itself under Prefix+name (default /etcdgate/ring/)
// with a lease of heartbeat_ttl (10 s) that clientv3 keeps alive; the
// record is the node's JSON Node. Every node lists the prefix at one
// revision (paged, at most 10,000 records of at most 64 KiB; a malformed
// or oversized record is skipped, counted in
// etcdgate_ring_membership_errors_total{op="decode"} and logged at most
// once per 10 s) and watches from the next revision; a failed watch lists
// again. While etcd is out of reach the last view stays in force; a lease
// lost to an outage is granted again and the record rewritten when etcd
// answers (etcdgate_ring_lease_regrants_total).
//
// A node whose keepalives stop leaves every view when etcd expires its
// lease: TTL after its last keepalive (clientv3 renews every TTL/3) plus
// up to 0.5 s of etcd's expiry check; measured 2.39 s with TTL 2 s
// (TestMembershipLeaseExpiryDropsNode). Leave revokes at once.
//
// Heartbeat: the lease is the liveness, the record is not rewritten
// periodically. Its Heartbeat field is the time of the last write (join,
// state change, re-grant). Rewriting every TTL/2 would cost a raft write
// and a watch event on every node per node per 5 s (N² events per period,
// 160,000 per 5 s at 400 nodes) and an etcd revision each, and would tell
// nothing the lease does not: a keepalive is not a revision and wakes no
// watcher, and etcd deletes the record itself when the lease expires.
//
// Why clientv3 directly and not github.com/grafana/dskit/ring with its
// etcd KV (evaluated 2026-11-29 against dskit v0.0.0-20260703122047):
//   - weight: in a scratch module, importing dskit/ring + dskit/kv/etcd
//     takes 484 non-stdlib packages against 219 for clientv3 alone, go.sum
//     360 lines against 67, and 96 required modules against 15
//     (`go list -deps . | grep -c ...`, `wc -l go.sum` after go mod tidy);
//   - it does not build as a dependency: dskit's go.mod replaces
//     hashicorp/memberlist with grafana's fork, a replace that does not
//     carry over, so `go build` fails (memberlist.NodeState undefined)
//     unless our go.mod copies that replace and follows it;
//   - its etcd KV keeps the whole ring in one key, changed by CAS loops
//     (get, modify, compare-and-swap on the key's Version, retry), and liveness
//     is each ingester rewriting its heartbeat inside that one key (every
//     5 s by default): every
//     heartbeat of every node is a write of the whole ring and a watch
//     event carrying the whole ring to every node, and the CAS contention
//     grows with the node count. No etcd lease is used, so a dead node
//     stays in the ring until its heartbeat is older than the
//     heartbeat timeout (1 min by default). A key per node under a lease gives failure detection
//     from etcd itself, writes only on change, and no contention.
