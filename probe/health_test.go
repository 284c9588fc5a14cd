package probe

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// TestHealthMemberStopped checks a healthy cluster, then stops a follower
// mid-test and checks that the next run names it, while the two others
// still report a leader.
func TestHealthMemberStopped(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 3, QuotaBackendBytes: 64 << 20})
	tg := testTarget("etcd-health", c)
	rec, state, col := inspect(t, tg, DefaultHealth(), 10*time.Second, nil)
	wantRecord(t, rec, StatusSuccess, "3 of 3 members answered")
	wantValue(t, col, 1, "etcdgate_inspection_has_leader", "cluster", "etcd-health", "inspection", "health")
	wantValue(t, col, 3, "etcdgate_inspection_members")
	wantValue(t, col, 64<<20, "etcdgate_inspection_member_db_quota_bytes", "endpoint", c.Members[0].ClientURL)
	if _, ok := col.value("etcdgate_inspection_member_info", "endpoint", c.Members[0].ClientURL, "version", "3.7.3"); !ok {
		t.Fatal("no version of member 0")
	}

	var follower *etcdtest.Member
	for _, m := range c.Members {
		if m.Etcd.Server.Leader() != m.Etcd.Server.MemberID() {
			follower = m
		}
	}
	follower.Stop()
	rec, _, col = inspect(t, tg, DefaultHealth(), 10*time.Second, state)
	wantRecord(t, rec, StatusWarning, "2 of 3 members answered", "member "+follower.ClientURL+" unreachable")
	wantValue(t, col, 0, "etcdgate_inspection_member_up", "endpoint", follower.ClientURL)
	wantValue(t, col, 1, "etcdgate_inspection_members_unreachable")
	wantValue(t, col, 1, "etcdgate_inspection_has_leader")
	wantValue(t, col, 0, "etcdgate_inspection_member_list_changes")
}

// TestHealthProblems checks the thresholds on member statuses.
func TestHealthProblems(t *testing.T) {
	h := DefaultHealth()
	st := memberStatus{Endpoint: "http://m0:2379", Resp: &clientv3.StatusResponse{DbSize: 90, DbSizeQuota: 100, RaftIndex: 5000, RaftAppliedIndex: 1000,
		Errors: []string{"NOSPACE"}}}
	got := h.memberProblems(st)
	want := []string{
		"member http://m0:2379 db size 90 is 90% of its quota 100",
		"member http://m0:2379 applies 4000 raft entries behind its commit index",
		"member http://m0:2379 reports: NOSPACE",
	}
	if len(got) != len(want) {
		t.Fatalf("problems %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d: %q, want %q", i, got[i], want[i])
		}
	}
}
