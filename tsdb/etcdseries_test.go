package tsdb

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
)

// etcdLabelSets returns label sets shaped like one etcd member's series:
// about 40 metric names, classic histograms with le buckets, gRPC series
// per method and code, each with about 11 labels. member makes them
// distinct across members.
func etcdLabelSets(member int) []labels.Labels {
	base := []string{
		"cluster", fmt.Sprintf("etcd-%d", member/3),
		"instance", fmt.Sprintf("10.0.%d.%d:2379", member/250, member%250),
		"job", "etcd",
		"namespace", "kube-system",
		"pod", fmt.Sprintf("etcd-%d-%d", member/3, member%3),
		"region", "eu-west-1",
		"team", "platform-storage",
	}
	var out []labels.Labels
	add := func(name string, kv ...string) {
		b := labels.NewScratchBuilder(12)
		b.Add("__name__", name)
		for i := 0; i+1 < len(base); i += 2 {
			b.Add(base[i], base[i+1])
		}
		for i := 0; i+1 < len(kv); i += 2 {
			b.Add(kv[i], kv[i+1])
		}
		b.Sort()
		out = append(out, b.Labels())
	}
	for _, g := range []string{"etcd_server_has_leader", "etcd_server_is_leader", "etcd_server_proposals_pending",
		"etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes", "etcd_debugging_mvcc_keys_total",
		"etcd_server_leader_changes_seen_total", "etcd_server_proposals_committed_total", "etcd_server_proposals_applied_total",
		"etcd_server_proposals_failed_total", "etcd_mvcc_put_total", "etcd_mvcc_range_total", "etcd_mvcc_txn_total",
		"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines", "process_open_fds"} {
		add(g)
	}
	for _, h := range []string{"etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds",
		"etcd_snap_db_fsync_duration_seconds", "etcd_network_peer_round_trip_time_seconds"} {
		for k := range 14 {
			add(h+"_bucket", "le", fmt.Sprint(0.001*float64(int(1)<<k)))
		}
		add(h+"_bucket", "le", "+Inf")
		add(h + "_sum")
		add(h + "_count")
	}
	for _, m := range []string{"Range", "Put", "DeleteRange", "Txn", "LeaseGrant", "Watch"} {
		add("grpc_server_started_total", "grpc_method", m, "grpc_service", "etcdserverpb.KV", "grpc_type", "unary")
		for _, code := range []string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
			"ResourceExhausted", "FailedPrecondition", "Unavailable", "Internal"} {
			add("grpc_server_handled_total", "grpc_code", code, "grpc_method", m, "grpc_service", "etcdserverpb.KV", "grpc_type", "unary")
		}
	}
	return out
}
