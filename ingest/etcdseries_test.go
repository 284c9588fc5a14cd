package ingest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// etcdWriteRequests returns one scrape of clusters×membersPerCluster etcd
// 3.5 members as Prometheus would remote-write it: about 40 metric names,
// roughly 340 series per member in a 3-member cluster, one sample per
// series at ts, batched into requests of at most samplesPerRequest samples.
// Values are pseudo-random but the same on every call.
func etcdWriteRequests(clusters, membersPerCluster int, samplesPerRequest int, ts int64) []*prompb.WriteRequest {
	g := etcdGen{rnd: rand.New(rand.NewPCG(uint64(clusters), uint64(membersPerCluster))), ts: ts}
	for c := range clusters {
		cluster := fmt.Sprintf("etcd-%s-%d", etcdRegions[c%len(etcdRegions)], c)
		for m := range membersPerCluster {
			g.member(cluster, c, m, membersPerCluster)
		}
	}
	var reqs []*prompb.WriteRequest
	for len(g.series) > 0 {
		n := min(samplesPerRequest, len(g.series))
		reqs = append(reqs, &prompb.WriteRequest{Timeseries: g.series[:n:n]})
		g.series = g.series[n:]
	}
	return reqs
}

// marshalSnappy returns wr as a remote-write body: snappy block of the
// protobuf encoding.
func marshalSnappy(wr *prompb.WriteRequest) []byte {
	data, err := wr.Marshal()
	if err != nil {
		panic(fmt.Sprintf("BUG: marshal prompb.WriteRequest: %v", err))
	}
	return snappy.Encode(nil, data)
}

var etcdRegions = []string{"eu-west-1", "us-east-1", "ap-south-1"}

// Exponential buckets etcd uses: disk durations 0.001·2^k (k<14), peer
// round trips 0.0001·2^k (k<14).
var (
	etcdDiskBuckets = expBuckets(0.001, 14)
	etcdPeerBuckets = expBuckets(0.0001, 14)
)

var etcdGRPCMethods = []struct{ service, method, typ string }{
	{"etcdserverpb.KV", "Range", "unary"},
	{"etcdserverpb.KV", "Put", "unary"},
	{"etcdserverpb.KV", "DeleteRange", "unary"},
	{"etcdserverpb.KV", "Txn", "unary"},
	{"etcdserverpb.KV", "Compact", "unary"},
	{"etcdserverpb.Watch", "Watch", "bidi_stream"},
	{"etcdserverpb.Lease", "LeaseGrant", "unary"},
	{"etcdserverpb.Lease", "LeaseKeepAlive", "bidi_stream"},
	{"etcdserverpb.Lease", "LeaseRevoke", "unary"},
	{"etcdserverpb.Cluster", "MemberList", "unary"},
	{"etcdserverpb.Maintenance", "Status", "unary"},
}

// go-grpc-prometheus pre-initialises handled_total for every code.
var grpcCodes = []string{
	"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
	"Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
	"Unauthenticated",
}

var (
	etcdGauges = []string{
		"etcd_server_has_leader", "etcd_server_is_leader", "etcd_server_proposals_pending",
		"etcd_server_quota_backend_bytes", "etcd_mvcc_db_total_size_in_bytes",
		"etcd_mvcc_db_total_size_in_use_in_bytes", "etcd_debugging_mvcc_keys_total",
		"etcd_debugging_store_watchers", "etcd_debugging_mvcc_watcher_total",
		"process_resident_memory_bytes", "process_open_fds", "go_goroutines",
		"go_memstats_heap_inuse_bytes", "go_threads",
	}
	etcdCounters = []string{
		"etcd_server_leader_changes_seen_total", "etcd_server_proposals_committed_total",
		"etcd_server_proposals_applied_total", "etcd_server_proposals_failed_total",
		"etcd_server_slow_apply_total", "etcd_server_heartbeat_send_failures_total",
		"etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_range_total",
		"etcd_mvcc_txn_total", "etcd_debugging_mvcc_db_compaction_keys_total",
		"etcd_network_client_grpc_received_bytes_total",
		"etcd_network_client_grpc_sent_bytes_total", "process_cpu_seconds_total",
	}
)

// etcdGen accumulates the series of one scrape.
type etcdGen struct {
	rnd    *rand.Rand
	ts     int64
	series []prompb.TimeSeries
	base   []prompb.Label // labels every series of the current member has
}

func (g *etcdGen) member(cluster string, c, m, members int) {
	pod := fmt.Sprintf("%s-%d", cluster, m)
	g.base = []prompb.Label{
		{Name: "cluster", Value: cluster},
		{Name: "instance", Value: fmt.Sprintf("10.%d.%d.%d:2379", c/250, c%250, 10+m)},
		{Name: "job", Value: "etcd"},
		{Name: "namespace", Value: "kube-system"},
		{Name: "pod", Value: pod},
		{Name: "product", Value: "control-plane"},
		{Name: "region", Value: etcdRegions[c%len(etcdRegions)]},
		{Name: "team", Value: "platform-storage"},
	}
	for _, name := range etcdGauges {
		g.add(name, g.rnd.Float64()*1e6)
	}
	for _, name := range etcdCounters {
		g.add(name, float64(g.rnd.Int64N(1e9)))
	}
	g.add("etcd_server_version", 1, "server_version", "3.5.17")
	g.add("etcd_cluster_version", 1, "cluster_version", "3.5")
	g.histogram("etcd_disk_wal_fsync_duration_seconds", etcdDiskBuckets)
	g.histogram("etcd_disk_backend_commit_duration_seconds", etcdDiskBuckets)
	g.histogram("etcd_snap_db_fsync_duration_seconds", etcdDiskBuckets)
	for p := range members {
		if p == m {
			continue
		}
		peer := fmt.Sprintf("%x", 0x8e9e05c52164694d+uint64(c*members+p))
		g.histogram("etcd_network_peer_round_trip_time_seconds", etcdPeerBuckets, "To", peer)
		g.add("etcd_network_peer_sent_bytes_total", float64(g.rnd.Int64N(1e12)), "To", peer)
		g.add("etcd_network_peer_received_bytes_total", float64(g.rnd.Int64N(1e12)), "From", peer)
	}
	for _, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		g.add("go_gc_duration_seconds", g.rnd.Float64()/100, "quantile", q)
	}
	g.add("go_gc_duration_seconds_sum", g.rnd.Float64()*1000)
	g.add("go_gc_duration_seconds_count", float64(g.rnd.Int64N(1e6)))
	g.grpc()
}

func (g *etcdGen) grpc() {
	for _, gm := range etcdGRPCMethods {
		kv := []string{"grpc_method", gm.method, "grpc_service", gm.service, "grpc_type", gm.typ}
		g.add("grpc_server_started_total", float64(g.rnd.Int64N(1e8)), kv...)
		g.add("grpc_server_msg_received_total", float64(g.rnd.Int64N(1e8)), kv...)
		g.add("grpc_server_msg_sent_total", float64(g.rnd.Int64N(1e8)), kv...)
		for _, code := range grpcCodes {
			v := 0.0
			if code == "OK" || g.rnd.IntN(8) == 0 {
				v = float64(g.rnd.Int64N(1e8))
			}
			g.add("grpc_server_handled_total", v, append([]string{"grpc_code", code}, kv...)...)
		}
	}
}

// histogram adds a classic histogram: one series per le bucket (the last
// +Inf), then _sum and _count.
func (g *etcdGen) histogram(name string, buckets []string, kv ...string) {
	count := float64(g.rnd.Int64N(1e7))
	for k, le := range buckets {
		frac := float64(k+1) / float64(len(buckets)+1)
		g.add(name+"_bucket", float64(int64(count*frac)), append([]string{"le", le}, kv...)...)
	}
	g.add(name+"_bucket", count, append([]string{"le", "+Inf"}, kv...)...)
	g.add(name+"_sum", count*g.rnd.Float64()/50, kv...)
	g.add(name+"_count", count, kv...)
}

// add appends one series with the member's labels, __name__ and the extra
// name/value pairs kv, sorted by name as Prometheus sends them.
func (g *etcdGen) add(name string, v float64, kv ...string) {
	lbls := make([]prompb.Label, 0, len(g.base)+1+len(kv)/2)
	lbls = append(lbls, prompb.Label{Name: "__name__", Value: name})
	lbls = append(lbls, g.base...)
	for k := 0; k+1 < len(kv); k += 2 {
		lbls = append(lbls, prompb.Label{Name: kv[k], Value: kv[k+1]})
	}
	slices.SortFunc(lbls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	g.series = append(g.series, prompb.TimeSeries{
		Labels:  lbls,
		Samples: []prompb.Sample{{Value: v, Timestamp: g.ts}},
	})
}

func expBuckets(start float64, n int) []string {
	out := make([]string, n)
	for k := range out {
		out[k] = fmt.Sprint(start * float64(int64(1)<<k))
	}
	return out
}
