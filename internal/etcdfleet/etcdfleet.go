// Package etcdfleet generates the series of a fleet of etcd clusters as
// Prometheus scrapes them from etcd 3.5 members: about 40 metric names,
// classic histograms with le buckets, peer series per other member, and
// gRPC series per method and code (go-grpc-prometheus pre-creates every
// code), roughly 340 series per member of a 3-member cluster, each with
// about 11 labels. It is the one fleet generator of the tests and
// benchmarks of every package; it imports only Prometheus's labels.
//
// Everything is deterministic: the same options, member and timestamp
// give the same series and values. Counters and histogram counts grow
// with the timestamp, so successive scrapes look like a running member.
package etcdfleet

import (
	"fmt"
	"math/rand/v2"

	"github.com/prometheus/prometheus/model/labels"
)

// Options shape a fleet.
type Options struct {
	// Clusters is the number of clusters Scrape returns.
	Clusters int
	// Members is the number of members of each cluster.
	Members int
	// Regions are given to clusters in turn: cluster c is in
	// Regions[c%len(Regions)] and named etcd-<region>-<c>.
	Regions []string
	// Seed picks the values; the series do not depend on it.
	Seed uint64
	// ClusterLabels, when set, returns name/value pairs added to every
	// series of cluster c (a registry's product, scenario, size); they
	// replace a base label of the same name.
	ClusterLabels func(c int) []string
	// Extensive adds what etcd's --metrics=extensive exposes: a
	// grpc_server_handling_seconds histogram per gRPC method (14 series
	// each, 154 a member).
	Extensive bool
}

// DefaultOptions is one cluster of three members in eu-west-1, us-east-1
// and ap-south-1 in turn.
func DefaultOptions() Options {
	return Options{Clusters: 1, Members: 3, Regions: []string{"eu-west-1", "us-east-1", "ap-south-1"}}
}

// Fleet generates the series of the clusters of its options.
type Fleet struct {
	opts Options // immutable
}

// New returns the fleet of o; zero fields take DefaultOptions' values.
func New(o Options) *Fleet {
	d := DefaultOptions()
	if o.Clusters <= 0 {
		o.Clusters = d.Clusters
	}
	if o.Members <= 0 {
		o.Members = d.Members
	}
	if len(o.Regions) == 0 {
		o.Regions = d.Regions
	}
	return &Fleet{opts: o}
}

// Sample is one series and its value at T (milliseconds since the epoch).
type Sample struct {
	Labels labels.Labels
	T      int64
	V      float64
}

// NumMembers returns the members of the fleet: Clusters × Members.
func (f *Fleet) NumMembers() int { return f.opts.Clusters * f.opts.Members }

// Scrape returns one scrape of every member at ts, member after member.
func (f *Fleet) Scrape(ts int64) []Sample {
	var out []Sample
	for m := range f.NumMembers() {
		out = f.AppendMember(out, m, ts)
	}
	return out
}

// Member returns one scrape of member m at ts. Member m is member
// m%Members of cluster m/Members; m may exceed NumMembers (the clusters
// go on).
func (f *Fleet) Member(m int, ts int64) []Sample { return f.AppendMember(nil, m, ts) }

// LabelSets returns the label sets of member m's series.
func (f *Fleet) LabelSets(m int) []labels.Labels {
	samples := f.Member(m, 0)
	out := make([]labels.Labels, len(samples))
	for i, s := range samples {
		out[i] = s.Labels
	}
	return out
}

// ClusterName returns the name (the cluster label) of cluster c.
func (f *Fleet) ClusterName(c int) string {
	return fmt.Sprintf("etcd-%s-%d", f.opts.Regions[c%len(f.opts.Regions)], c)
}

// AppendMember appends one scrape of member m at ts to dst.
func (f *Fleet) AppendMember(dst []Sample, m int, ts int64) []Sample {
	c, i := m/f.opts.Members, m%f.opts.Members
	cluster := f.ClusterName(c)
	g := gen{out: dst, ts: ts, sec: float64(ts) / 1000, rnd: rand.New(rand.NewPCG(f.opts.Seed, uint64(m)))}
	g.base = []string{
		"cluster", cluster,
		"instance", fmt.Sprintf("10.%d.%d.%d:2379", c/250, c%250, 10+i),
		"job", "etcd",
		"namespace", "kube-system",
		"pod", fmt.Sprintf("%s-%d", cluster, i),
		"product", "control-plane",
		"region", f.opts.Regions[c%len(f.opts.Regions)],
		"team", "platform-storage",
	}
	if f.opts.ClusterLabels != nil {
		g.base = override(g.base, f.opts.ClusterLabels(c))
	}
	g.member(c, i, f.opts.Members)
	if f.opts.Extensive {
		g.handlingHistograms()
	}
	return g.out
}

// override sets the name/value pairs of extra in base, replacing a pair
// of the same name.
func override(base, extra []string) []string {
	out := append([]string(nil), base...)
next:
	for k := 0; k+1 < len(extra); k += 2 {
		for j := 0; j+1 < len(out); j += 2 {
			if out[j] == extra[k] {
				out[j+1] = extra[k+1]
				continue next
			}
		}
		out = append(out, extra[k], extra[k+1])
	}
	return out
}

// Exponential buckets etcd uses: disk durations 0.001·2^k (k<14), peer
// round trips 0.0001·2^k (k<14).
var (
	diskBuckets = expBuckets(0.001, 14)
	peerBuckets = expBuckets(0.0001, 14)
	// client_golang's DefBuckets, without +Inf (histogram adds it).
	defaultBuckets = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"}
)

var grpcMethods = []struct{ service, method, typ string }{
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
	gauges = []string{
		"etcd_server_has_leader", "etcd_server_is_leader", "etcd_server_proposals_pending",
		"etcd_server_quota_backend_bytes", "etcd_mvcc_db_total_size_in_bytes",
		"etcd_mvcc_db_total_size_in_use_in_bytes", "etcd_debugging_mvcc_keys_total",
		"etcd_debugging_store_watchers", "etcd_debugging_mvcc_watcher_total",
		"process_resident_memory_bytes", "process_open_fds", "go_goroutines",
		"go_memstats_heap_inuse_bytes", "go_threads",
	}
	counters = []string{
		"etcd_server_leader_changes_seen_total", "etcd_server_proposals_committed_total",
		"etcd_server_proposals_applied_total", "etcd_server_proposals_failed_total",
		"etcd_server_slow_apply_total", "etcd_server_heartbeat_send_failures_total",
		"etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_range_total",
		"etcd_mvcc_txn_total", "etcd_debugging_mvcc_db_compaction_keys_total",
		"etcd_network_client_grpc_received_bytes_total",
		"etcd_network_client_grpc_sent_bytes_total", "process_cpu_seconds_total",
	}
)

// gen accumulates the series of one member's scrape.
type gen struct {
	rnd  *rand.Rand
	ts   int64
	sec  float64  // ts in seconds: counters grow with it
	base []string // name/value pairs every series of the member has
	out  []Sample
	b    labels.ScratchBuilder
}

func (g *gen) member(c, m, members int) {
	for _, name := range gauges {
		g.add(name, g.rnd.Float64()*1e6)
	}
	for _, name := range counters {
		g.add(name, g.counter(1e9, 100))
	}
	g.add("etcd_server_version", 1, "server_version", "3.5.17")
	g.add("etcd_cluster_version", 1, "cluster_version", "3.5")
	g.histogram("etcd_disk_wal_fsync_duration_seconds", diskBuckets)
	g.histogram("etcd_disk_backend_commit_duration_seconds", diskBuckets)
	g.histogram("etcd_snap_db_fsync_duration_seconds", diskBuckets)
	for p := range members {
		if p == m {
			continue
		}
		peer := fmt.Sprintf("%x", 0x8e9e05c52164694d+uint64(c*members+p))
		g.histogram("etcd_network_peer_round_trip_time_seconds", peerBuckets, "To", peer)
		g.add("etcd_network_peer_sent_bytes_total", g.counter(1e12, 1e4), "To", peer)
		g.add("etcd_network_peer_received_bytes_total", g.counter(1e12, 1e4), "From", peer)
	}
	for _, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		g.add("go_gc_duration_seconds", g.rnd.Float64()/100, "quantile", q)
	}
	g.add("go_gc_duration_seconds_sum", g.counter(1000, 0.01))
	g.add("go_gc_duration_seconds_count", g.counter(1e6, 1))
	g.grpc()
}

// counter returns a counter's value: a random start below max that grows
// by up to rate a second.
func (g *gen) counter(max, rate float64) float64 {
	start, r := float64(g.rnd.Int64N(int64(max))), g.rnd.Float64()*rate
	return float64(int64(start + r*g.sec))
}

func (g *gen) grpc() {
	for _, gm := range grpcMethods {
		kv := []string{"grpc_method", gm.method, "grpc_service", gm.service, "grpc_type", gm.typ}
		g.add("grpc_server_started_total", g.counter(1e8, 100), kv...)
		g.add("grpc_server_msg_received_total", g.counter(1e8, 100), kv...)
		g.add("grpc_server_msg_sent_total", g.counter(1e8, 100), kv...)
		for _, code := range grpcCodes {
			v := 0.0
			if code == "OK" || g.rnd.IntN(8) == 0 {
				v = g.counter(1e8, 10)
			}
			g.add("grpc_server_handled_total", v, append([]string{"grpc_code", code}, kv...)...)
		}
	}
}

// handlingHistograms adds grpc_server_handling_seconds per method, with
// client_golang's default buckets, as go-grpc-prometheus does.
func (g *gen) handlingHistograms() {
	for _, gm := range grpcMethods {
		g.histogram("grpc_server_handling_seconds", defaultBuckets,
			"grpc_method", gm.method, "grpc_service", gm.service, "grpc_type", gm.typ)
	}
}

// histogram adds a classic histogram: one series per le bucket (the last
// +Inf), then _sum and _count.
func (g *gen) histogram(name string, buckets []string, kv ...string) {
	count := g.counter(1e7, 10)
	for k, le := range buckets {
		frac := float64(k+1) / float64(len(buckets)+1)
		g.add(name+"_bucket", float64(int64(count*frac)), append([]string{"le", le}, kv...)...)
	}
	g.add(name+"_bucket", count, append([]string{"le", "+Inf"}, kv...)...)
	g.add(name+"_sum", count*g.rnd.Float64()/50, kv...)
	g.add(name+"_count", count, kv...)
}

// add appends one series with the member's labels, __name__ and the extra
// name/value pairs kv.
func (g *gen) add(name string, v float64, kv ...string) {
	g.b.Reset()
	g.b.Add("__name__", name)
	for k := 0; k+1 < len(g.base); k += 2 {
		g.b.Add(g.base[k], g.base[k+1])
	}
	for k := 0; k+1 < len(kv); k += 2 {
		g.b.Add(kv[k], kv[k+1])
	}
	g.b.Sort()
	g.out = append(g.out, Sample{Labels: g.b.Labels(), T: g.ts, V: v})
}

func expBuckets(start float64, n int) []string {
	out := make([]string, n)
	for k := range out {
		out[k] = fmt.Sprint(start * float64(int64(1)<<k))
	}
	return out
}
