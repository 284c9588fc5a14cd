package probe

import (
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// TestConsistency checks a consistent cluster, then points one target's
// endpoints at the three members of one cluster and the one member of
// another holding other data: the odd member is reported with its hash
// and key count against the majority.
func TestConsistency(t *testing.T) {
	a := etcdtest.Start(t, etcdtest.Options{Members: 3})
	b := etcdtest.Start(t, etcdtest.Options{Members: 1})
	putKeys(t, a.Client(t), "/registry/pods/a/p", 250)
	// b's revision passes a's, so both are compared at a's revision:
	// all of a's keys, all of b's.
	for range 5 {
		putKeys(t, b.Client(t), "/registry/pods/b/p", 40)
	}
	a.WaitConverged(t)

	rec, _, col := inspect(t, testTarget("etcd-a", a), Consistency{}, 10*time.Second, nil)
	wantRecord(t, rec, StatusSuccess, "total key num is 250, nodeKeyDiff is 0, 3 members compared", "hashes agree")
	wantValue(t, col, 0, "etcdgate_inspection_member_hash_mismatch", "endpoint", a.Members[1].ClientURL, "cluster", "etcd-a")
	wantValue(t, col, 250, "etcdgate_inspection_keys")

	mixed := testTarget("etcd-mixed", a)
	odd := b.Members[0].ClientURL
	mixed.Endpoints = append(mixed.Endpoints, odd)
	rec, _, col = inspect(t, mixed, Consistency{}, 10*time.Second, nil)
	wantRecord(t, rec, StatusWarning, "total key num is 250, nodeKeyDiff is 210, 4 members compared",
		"("+odd+") hash ", "differs from the majority's", "("+odd+") has 40 keys, -210 against the majority")
	wantValue(t, col, 1, "etcdgate_inspection_member_hash_mismatch", "endpoint", odd)
	wantValue(t, col, 0, "etcdgate_inspection_member_hash_mismatch", "endpoint", a.Members[0].ClientURL)
	wantValue(t, col, -210, "etcdgate_inspection_member_key_diff", "endpoint", odd)
	wantValue(t, col, 0, "etcdgate_inspection_member_key_diff", "endpoint", a.Members[2].ClientURL)
	wantValue(t, col, 210, "etcdgate_inspection_key_diff")
}
