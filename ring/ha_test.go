package ring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

const haTestPrefix = "/etcdgate/ring/ha/"

// fakeClock is a settable clock for opts.Now.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixMilli())
	return c
}

func (c *fakeClock) Now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *fakeClock) unixMilli() int64    { return c.ms.Load() }
func (c *fakeClock) set(ms int64)        { c.ms.Store(ms) }
func haTestOpts(clock *fakeClock) HAOptions { // FT 10s: the lease (30 s) outlives every test
	o := DefaultHAOptions()
	o.Prefix = haTestPrefix
	o.FailoverTimeout = 10 * time.Second
	o.Registerer = prometheus.NewRegistry()
	o.Now = clock.Now
	return o
}

// startHA starts a tracker on client, closed when the test ends.
func startHA(t *testing.T, c *clientv3.Client, opts HAOptions) *HATracker {
	t.Helper()
	tr, err := NewHATracker(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// accept calls Accept with a 5 s context and fails the test on an error.
func accept(t *testing.T, tr *HATracker, cluster, replica string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok, err := tr.Accept(ctx, cluster, replica, 0)
	if err != nil {
		t.Fatalf("Accept(%q, %q): %v", cluster, replica, err)
	}
	return ok
}

// state returns the tracker's known election of cluster.
func (tr *HATracker) stateOf(cluster string) *haState {
	e := tr.entry(cluster)
	if e == nil {
		return nil
	}
	return e.state.Load()
}

// waitElected waits (generously) until tr knows replica as cluster's
// election in etcd with last_seen lastSeen (0: any).
func waitElected(t *testing.T, tr *HATracker, cluster, replica string, lastSeen int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := tr.stateOf(cluster)
		if st != nil && st.replica == replica && st.modRev != 0 && !st.dirty && (lastSeen == 0 || st.lastSeen == lastSeen) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster %q: state %+v, want %q elected in etcd (last_seen %d)", cluster, st, replica, lastSeen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// record reads cluster's record from etcd.
func record(t *testing.T, c *clientv3.Client, cluster string) (haRecord, bool) {
	t.Helper()
	resp, err := c.Get(context.Background(), haTestPrefix+cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return haRecord{}, false
	}
	var r haRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		t.Fatalf("record of %q: %v", cluster, err)
	}
	if resp.Kvs[0].Lease == 0 {
		t.Fatalf("record of %q has no lease", cluster)
	}
	return r, true
}

func TestHAOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*HAOptions)
		want string // "" for valid
	}{
		{"valid", func(*HAOptions) {}, ""},
		{"prefix", func(o *HAOptions) { o.Prefix = "/ring/ha" }, "ring.etcd.prefix"},
		{"replica label", func(o *HAOptions) { o.ReplicaLabel = "1x" }, "ring.ha_dedup.replica_label"},
		{"replica label dash", func(o *HAOptions) { o.ReplicaLabel = "a-b" }, "ring.ha_dedup.replica_label"},
		{"cluster label", func(o *HAOptions) { o.ClusterLabel = "a b" }, "ring.ha_dedup.cluster_label"},
		{"same labels", func(o *HAOptions) { o.ReplicaLabel = "cluster" }, "ring.ha_dedup.replica_label"},
		{"short failover", func(o *HAOptions) { o.FailoverTimeout = 999 * time.Millisecond }, "ring.ha_dedup.failover_timeout"},
		{"long failover", func(o *HAOptions) { o.FailoverTimeout = 2 * time.Hour }, "ring.ha_dedup.failover_timeout"},
		{"negative failover", func(o *HAOptions) { o.FailoverTimeout = -time.Second }, "ring.ha_dedup.failover_timeout"},
		{"max clusters", func(o *HAOptions) { o.MaxClusters = -1 }, "ring.ha_dedup"},
		{"txn timeout", func(o *HAOptions) { o.TxnTimeout = -1 }, "ring.ha_dedup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultHAOptions()
			tc.edit(&o)
			_, err := NewHATracker(nil, o)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
	tr, err := NewHATracker(nil, HAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := tr.opts
	if o.Prefix != haTestPrefix || o.ReplicaLabel != "__replica__" || o.ClusterLabel != "cluster" ||
		o.FailoverTimeout != 30*time.Second || o.MaxClusters != 100000 || o.MaxCreatesPerSecond != 1000 ||
		o.TxnTimeout != time.Second || o.Now == nil || o.Logger == nil {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if tr.refreshMs != 10000 || tr.failoverMs != 40000 || tr.leaseTTL != 90 {
		t.Fatalf("refresh %d ms, failover %d ms, lease TTL %d s; want 10000, 40000, 90", tr.refreshMs, tr.failoverMs, tr.leaseTTL)
	}
}

// TestHADecide: the decision table, without etcd. FT 30 s: refresh 10 s,
// failover 40 s after last_seen.
func TestHADecide(t *testing.T) {
	tr, err := NewHATracker(nil, HAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const seen = 1_000_000
	fresh := &haState{replica: "a", electedAt: seen, lastSeen: seen, modRev: 5}
	dirty := &haState{replica: "a", electedAt: seen, lastSeen: seen, dirty: true}
	broken := &haState{modRev: 9}
	for _, tc := range []struct {
		name    string
		st      *haState
		replica string
		now, ts int64
		want    haAction
	}{
		{"unknown", nil, "a", seen, 0, haCreate},
		{"elected fresh", fresh, "a", seen + 9_999, 0, haAccept},
		{"elected refresh due", fresh, "a", seen + 10_000, 0, haRefresh},
		{"elected dirty", dirty, "a", seen + 1, 0, haRefresh},
		{"other fresh", fresh, "b", seen + 1, 0, haRefuse},
		{"other before failover", fresh, "b", seen + 39_999, 0, haRefuse},
		{"other at failover", fresh, "b", seen + 40_000, 0, haFailover},
		{"other new sample", fresh, "b", seen + 40_000, seen + 1, haFailover},
		{"other backlog", fresh, "b", seen + 40_000, seen, haRefuse},
		{"other backlog past two periods", fresh, "b", seen + 80_000, seen - 5, haFailover},
		{"clock in the past", fresh, "b", seen - 100_000, 0, haRefuse},
		{"malformed record", broken, "b", seen, seen, haFailover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tr.decide(tc.st, tc.replica, tc.now, tc.ts); got != tc.want {
				t.Fatalf("decide = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestHAElectOnePerCluster: a then b for one cluster → a accepted, b
// refused; clusters are apart; the record is in etcd under a lease.
func TestHAElectOnePerCluster(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	clock := newFakeClock()
	tr := startHA(t, c, haTestOpts(clock))
	if !accept(t, tr, "c1", "a") {
		t.Fatal("a refused on a new cluster")
	}
	for range 3 {
		if accept(t, tr, "c1", "b") {
			t.Fatal("b accepted while a is elected")
		}
		if !accept(t, tr, "c1", "a") {
			t.Fatal("elected a refused")
		}
	}
	if !accept(t, tr, "c2", "b") || accept(t, tr, "c2", "a") {
		t.Fatal("c2: want b elected")
	}
	r, ok := record(t, c, "c1")
	if !ok || r.Replica != "a" || r.ElectedAt != clock.unixMilli() || r.LastSeen != clock.unixMilli() {
		t.Fatalf("record of c1 = %+v (present %v)", r, ok)
	}
	if ok, err := tr.Accept(context.Background(), "", "a", 0); !ok || err != nil {
		t.Fatalf("series without a cluster: %v %v, want accepted", ok, err)
	}
	if ok, err := tr.Accept(context.Background(), "c1", "", 0); !ok || err != nil {
		t.Fatalf("series without a replica: %v %v, want accepted", ok, err)
	}
	if got := testutil.ToFloat64(tr.metrics.writes.WithLabelValues("create")); got != 2 {
		t.Fatalf("create writes = %v, want 2", got)
	}
	if got := testutil.ToFloat64(tr.metrics.clusters); got != 2 {
		t.Fatalf("etcdgate_ring_ha_clusters = %v, want 2", got)
	}
}

// TestHATwoNodesAgree: two trackers on one etcd. The second node refuses
// b whether it learns a's election by the watch or by losing its txn.
func TestHATwoNodesAgree(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 3})
	clock := newFakeClock()
	n1 := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(clock))
	n2 := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(clock))
	for i := range 20 {
		cluster := fmt.Sprintf("c%d", i)
		// Straight after n1's write: n2 often has not had the watch
		// event yet, and its create txn finds the record.
		if !accept(t, n1, cluster, "a") {
			t.Fatalf("%s: a refused on n1", cluster)
		}
		if accept(t, n2, cluster, "b") {
			t.Fatalf("%s: b accepted on n2 while n1 elected a", cluster)
		}
		if !accept(t, n2, cluster, "a") {
			t.Fatalf("%s: a refused on n2", cluster)
		}
	}
	// Both elect at once: exactly one replica wins, on both.
	var wg sync.WaitGroup
	var got [2]bool
	for i, n := range []*HATracker{n1, n2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = n.Accept(context.Background(), "race", []string{"a", "b"}[i], 0)
		}()
	}
	wg.Wait()
	if got[0] == got[1] {
		t.Fatalf("concurrent election: n1 took a: %v, n2 took b: %v; want exactly one", got[0], got[1])
	}
	winner := map[bool]string{true: "a", false: "b"}[got[0]]
	waitElected(t, n1, "race", winner, 0)
	waitElected(t, n2, "race", winner, 0)
	if n1.Clusters() != 21 || n2.Clusters() != 21 {
		t.Fatalf("clusters: n1 %d, n2 %d, want 21", n1.Clusters(), n2.Clusters())
	}
}

// TestHAFailover: a stops; after the failover time b is accepted on both
// nodes and a refused; a coming back stays refused while b is fresh.
func TestHAFailover(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	clock := newFakeClock()
	n1 := startHA(t, c, haTestOpts(clock))
	n2 := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(clock))
	elected := clock.unixMilli()
	if !accept(t, n1, "c", "a") {
		t.Fatal("a refused")
	}
	// a keeps sending through n1 for 20 s: last_seen refreshed every
	// refresh period (FT/3 = 3.333 s), seen by n2.
	for range 20 {
		clock.add(time.Second)
		if !accept(t, n1, "c", "a") || accept(t, n2, "c", "b") {
			t.Fatal("while a sends: want a accepted, b refused")
		}
	}
	r, _ := record(t, c, "c")
	if r.Replica != "a" || r.ElectedAt != elected || r.LastSeen < clock.unixMilli()-n1.refreshMs {
		t.Fatalf("record after 20 s of a: %+v, want a refreshed within %d ms of %d", r, n1.refreshMs, clock.unixMilli())
	}
	last := r.LastSeen
	waitElected(t, n2, "c", "a", last)
	// a stops. b is refused until FT + FT/3 after last_seen.
	clock.set(last + n2.failoverMs - 1)
	if accept(t, n2, "c", "b") {
		t.Fatal("b accepted before the failover time")
	}
	clock.set(last + n2.failoverMs)
	if !accept(t, n2, "c", "b") {
		t.Fatal("b refused after the failover time")
	}
	if got := testutil.ToFloat64(n2.metrics.changes); got != 1 {
		t.Fatalf("n2 elected replica changes = %v, want 1", got)
	}
	waitElected(t, n1, "c", "b", 0)
	if accept(t, n1, "c", "a") || accept(t, n2, "c", "a") || !accept(t, n1, "c", "b") {
		t.Fatal("after failover: want a refused on both nodes, b accepted")
	}
	// a comes back while b keeps sending: a stays refused.
	for range 60 {
		clock.add(time.Second)
		if !accept(t, n1, "c", "b") {
			t.Fatal("b refused while elected")
		}
		if accept(t, n1, "c", "a") || accept(t, n2, "c", "a") {
			t.Fatal("a accepted while b is fresh")
		}
	}
	if got := testutil.ToFloat64(n1.metrics.changes) + testutil.ToFloat64(n2.metrics.changes); got != 1 {
		t.Fatalf("elected replica changes on both nodes = %v, want 1", got)
	}
}

// TestHAWritesBounded: samples of the elected replica arriving at both
// nodes, 10 per second per cluster, write each record once per refresh
// period, not once per sample.
func TestHAWritesBounded(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	clock := newFakeClock()
	n1 := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(clock))
	n2 := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(clock))
	const clusters, seconds = 10, 60
	for s := range seconds * 10 {
		clock.add(100 * time.Millisecond)
		for i := range clusters {
			n := []*HATracker{n1, n2}[(s+i)%2]
			if !accept(t, n, fmt.Sprintf("c%d", i), "a") {
				t.Fatal("elected a refused")
			}
		}
	}
	writes := 0.0
	for _, n := range []*HATracker{n1, n2} {
		writes += testutil.ToFloat64(n.metrics.writes.WithLabelValues("refresh"))
	}
	// One refresh per cluster per refresh period (3.333 s), plus one.
	bound := float64(clusters * (seconds*1000/n1.refreshMs + 1))
	t.Logf("%v refresh writes for %d clusters over %d s (bound %v)", writes, clusters, seconds, bound)
	if writes > bound || writes < float64(clusters*(seconds*1000/n1.refreshMs-2)) {
		t.Fatalf("refresh writes = %v, want about %v", writes, bound)
	}
}

// TestHAMaxClusters: past MaxClusters a new cluster is refused with
// ErrHATooManyClusters and counted; records past it are skipped.
func TestHAMaxClusters(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	clock := newFakeClock()
	o := haTestOpts(clock)
	o.MaxClusters = 5
	tr := startHA(t, c, o)
	for i := range 5 {
		if !accept(t, tr, fmt.Sprintf("c%d", i), "a") {
			t.Fatal("a refused")
		}
	}
	ok, err := tr.Accept(context.Background(), "c5", "a", 0)
	if ok || !errors.Is(err, ErrHATooManyClusters) {
		t.Fatalf("6th cluster: %v %v, want ErrHATooManyClusters", ok, err)
	}
	if _, present := record(t, c, "c5"); present {
		t.Fatal("a refused cluster was written to etcd")
	}
	if !accept(t, tr, "c0", "a") || accept(t, tr, "c0", "b") {
		t.Fatal("known clusters: want dedup as before")
	}
	if got := testutil.ToFloat64(tr.metrics.limitedClusters); got != 1 {
		t.Fatalf("limited{too_many_clusters} = %v, want 1", got)
	}
	// A node with a smaller bound keeps 3 of the 5 records (list), and
	// skips new ones (watch).
	o3 := haTestOpts(clock)
	o3.MaxClusters = 3
	small := startHA(t, newClient(t, cl.Endpoints()), o3)
	if small.Clusters() != 3 || testutil.ToFloat64(small.metrics.limitedClusters) != 2 {
		t.Fatalf("small node: %d clusters, %v limited; want 3, 2", small.Clusters(),
			testutil.ToFloat64(small.metrics.limitedClusters))
	}
	if _, err := c.Put(context.Background(), haTestPrefix+"late", `{"replica":"a","elected_at":1,"last_seen":1}`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for testutil.ToFloat64(small.metrics.limitedClusters) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("a record past MaxClusters arriving by watch was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if small.Clusters() != 3 {
		t.Fatalf("small node follows %d clusters, want 3", small.Clusters())
	}
}

// TestHAHostileValues: long or invalid values are refused before
// anything is stored or written; odd but valid ones work.
func TestHAHostileValues(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	tr := startHA(t, c, haTestOpts(newFakeClock()))
	long := strings.Repeat("x", HAMaxValueBytes+1)
	for _, tc := range []struct{ cluster, replica string }{
		{long, "a"},
		{"c", long},
		{strings.Repeat("x", 1<<20), "a"},
		{"c\xff", "a"},
		{"c", "\xc3"},
	} {
		ok, err := tr.Accept(context.Background(), tc.cluster, tc.replica, 0)
		if ok || !errors.Is(err, ErrHAValue) {
			t.Fatalf("Accept(%.20q, %.20q) = %v %v, want ErrHAValue", tc.cluster, tc.replica, ok, err)
		}
	}
	if tr.Clusters() != 0 {
		t.Fatalf("refused values left %d entries", tr.Clusters())
	}
	resp, err := c.Get(context.Background(), haTestPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("refused values wrote %d records (%v)", resp.Count, err)
	}
	if got := testutil.ToFloat64(tr.metrics.limitedValue); got != 5 {
		t.Fatalf("limited{value} = %v, want 5", got)
	}
	// Values at the bound, with '/', quotes and non-ASCII are fine.
	for _, cluster := range []string{strings.Repeat("y", HAMaxValueBytes), "a/b/../c", `"q"\`, "клáster"} {
		if !accept(t, tr, cluster, strings.Repeat("r", HAMaxValueBytes)) || accept(t, tr, cluster, "b") {
			t.Fatalf("cluster %.20q: want the first replica elected", cluster)
		}
		if r, ok := record(t, c, cluster); !ok || r.Replica != strings.Repeat("r", HAMaxValueBytes) {
			t.Fatalf("record of %.20q: %+v %v", cluster, r, ok)
		}
	}
}

// TestHAAcceptCopiesValues: the caller may reuse the bytes of cluster
// and replica (a decoder's buffer) after Accept returns.
func TestHAAcceptCopiesValues(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	tr := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(newFakeClock()))
	buf := []byte("cluster-1replica-a")
	cluster, replica := unsafeString(buf[:9]), unsafeString(buf[9:])
	if !accept(t, tr, cluster, replica) {
		t.Fatal("refused")
	}
	copy(buf, "XXXXXXXXXXXXXXXXXX")
	if !accept(t, tr, "cluster-1", "replica-a") || accept(t, tr, "cluster-1", "replica-b") {
		t.Fatal("the tracker kept the caller's bytes")
	}
}

// TestHAMalformedRecords: bad records are skipped and counted, at list
// and by watch; a cluster whose record is bad elects its next replica.
func TestHAMalformedRecords(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	ctx := context.Background()
	bad := map[string]string{
		"garbage":                "{not json",
		"array":                  "[]",
		"noreplica":              `{"elected_at":1,"last_seen":1}`,
		"longrepl":               `{"replica":"` + strings.Repeat("r", 300) + `","elected_at":1,"last_seen":1}`,
		"notimes":                `{"replica":"a"}`,
		"negative":               `{"replica":"a","elected_at":-1,"last_seen":5}`,
		"huge":                   `{"replica":"a","elected_at":1,"last_seen":1,"x":"` + strings.Repeat("x", 3<<10) + `"}`,
		strings.Repeat("k", 300): `{"replica":"a","elected_at":1,"last_seen":1}`,
	}
	for k, v := range bad {
		if _, err := c.Put(ctx, haTestPrefix+k, v); err != nil {
			t.Fatal(err)
		}
	}
	clock := newFakeClock()
	now := clock.unixMilli()
	good := fmt.Sprintf(`{"replica":"b","elected_at":%d,"last_seen":%d}`, now, now)
	if _, err := c.Put(ctx, haTestPrefix+"good", good); err != nil {
		t.Fatal(err)
	}
	// A last_seen far in the future counts from now: it cannot hold off
	// a failover.
	future := fmt.Sprintf(`{"replica":"b","elected_at":%d,"last_seen":%d}`, now, now+int64(1e12))
	if _, err := c.Put(ctx, haTestPrefix+"future", future); err != nil {
		t.Fatal(err)
	}
	tr := startHA(t, c, haTestOpts(clock))
	decode := tr.metrics.errors.WithLabelValues("decode")
	if got := testutil.ToFloat64(decode); got != float64(len(bad)) {
		t.Fatalf("decode errors = %v, want %d", got, len(bad))
	}
	if tr.Clusters() != 2 || accept(t, tr, "good", "a") || !accept(t, tr, "good", "b") {
		t.Fatalf("good record not followed (%d clusters)", tr.Clusters())
	}
	if st := tr.stateOf("future"); st == nil || st.lastSeen != now {
		t.Fatalf("future last_seen read as %+v, want %d", st, now)
	}
	// A malformed record is overwritten by the next replica seen.
	if !accept(t, tr, "garbage", "a") || accept(t, tr, "garbage", "b") {
		t.Fatal("cluster with a malformed record: want a elected")
	}
	if r, ok := record(t, c, "garbage"); !ok || r.Replica != "a" {
		t.Fatalf("malformed record not replaced: %+v", r)
	}
	// A good record turned bad by the watch leaves the tracker, counted.
	before := testutil.ToFloat64(decode)
	if _, err := c.Put(ctx, haTestPrefix+"good", `{"replica":""}`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for tr.stateOf("good") != nil || testutil.ToFloat64(decode) != before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("bad watch event: state %+v, decode errors %v (want nil, %v)", tr.stateOf("good"),
				testutil.ToFloat64(decode), before+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A deleted record leaves the tracker too.
	if _, err := c.Delete(ctx, haTestPrefix+"future"); err != nil {
		t.Fatal(err)
	}
	for tr.stateOf("future") != nil {
		if time.Now().After(deadline) {
			t.Fatal("deleted record still followed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHAEtcdOutage: with etcd out of reach Accept keeps answering within
// its ctx: the known elected replica is accepted, a new cluster elects
// locally, a failover happens locally; when etcd is back the local
// decisions are written, and etcd's record wins where it moved.
func TestHAEtcdOutage(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	p := newProxy(t, cl.Members[0].ClientURL)
	clock := newFakeClock()
	n1 := startHA(t, newClient(t, []string{p.url}), haTestOpts(clock))
	direct := newClient(t, cl.Endpoints())
	n2 := startHA(t, direct, haTestOpts(clock))
	if !accept(t, n1, "known", "a") || !accept(t, n1, "moves", "a") {
		t.Fatal("a refused")
	}
	waitElected(t, n2, "moves", "a", 0)
	p.setDown(true)

	// within runs Accept with a 300 ms ctx; a hang (not a slow answer) fails.
	within := func(cluster, replica string) bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		type res struct {
			ok  bool
			err error
		}
		ch := make(chan res, 1)
		go func() { ok, err := n1.Accept(ctx, cluster, replica, 0); ch <- res{ok, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("Accept during outage: %v", r.err)
			}
			return r.ok
		case <-time.After(30 * time.Second):
			t.Fatal("Accept blocked during the etcd outage")
			return false
		}
	}
	clock.add(4 * time.Second) // a refresh of "known" is due: it fails, a stays accepted
	if !within("known", "a") || within("known", "b") {
		t.Fatal("outage: want the known elected a accepted, b refused")
	}
	errs := testutil.ToFloat64(n1.metrics.errors.WithLabelValues("refresh"))
	if errs != 1 {
		t.Fatalf("refresh errors = %v, want 1", errs)
	}
	// Within the back-off no etcd call is made: answers come at once.
	if !within("new", "x") || within("new", "y") || !within("known", "a") {
		t.Fatal("outage: want a new cluster elected locally")
	}
	if got := testutil.ToFloat64(n1.metrics.errors.WithLabelValues("create")); got != 0 {
		t.Fatalf("create errors = %v during the back-off, want 0", got)
	}
	if got := testutil.ToFloat64(n1.metrics.localBackoff); got < 2 {
		t.Fatalf("local decisions = %v, want ≥ 2", got)
	}
	// Meanwhile n2 (still reaching etcd) fails "moves" over to b.
	clock.add(time.Duration(n2.failoverMs) * time.Millisecond)
	if !accept(t, n2, "moves", "b") {
		t.Fatal("n2: b refused after the failover time")
	}
	// n1 fails "known" over to b locally (a not seen for the failover time).
	if !within("known", "b") || within("known", "a") {
		t.Fatal("outage: want a local failover of known to b")
	}

	p.setDown(false)
	clock.add(time.Duration(n1.refreshMs) * time.Millisecond) // past the back-off
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Local decisions are written once etcd answers.
		accept(t, n1, "known", "b")
		accept(t, n1, "new", "x")
		accept(t, n1, "moves", "a")
		rk, _ := record(t, direct, "known")
		rn, _ := record(t, direct, "new")
		if rk.Replica == "b" && rn.Replica == "x" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage: records known=%+v new=%+v, want b and x", rk, rn)
		}
		clock.add(time.Second)
		time.Sleep(50 * time.Millisecond)
	}
	// n1's view of "moves": etcd's b, not its own a.
	waitElected(t, n1, "moves", "b", 0)
	if accept(t, n1, "moves", "a") {
		t.Fatal("after the outage: a accepted on moves, elected b in etcd")
	}
}

// TestHAEtcdStopped: the only etcd member stops for good; Accept keeps
// answering within its ctx (a hang, not a slow answer, fails).
func TestHAEtcdStopped(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	clock := newFakeClock()
	tr := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(clock))
	if !accept(t, tr, "c", "a") {
		t.Fatal("a refused")
	}
	cl.Members[0].Stop()
	clock.add(5 * time.Second) // a refresh of c is due
	done := make(chan [3]bool, 1)
	go func() {
		var got [3]bool
		for i, call := range []struct{ cluster, replica string }{{"c", "a"}, {"c", "b"}, {"new", "x"}} {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			got[i], _ = tr.Accept(ctx, call.cluster, call.replica, 0)
			cancel()
		}
		done <- got
	}()
	select {
	case got := <-done:
		if got != [3]bool{true, false, true} {
			t.Fatalf("with etcd stopped: c/a %v, c/b %v, new/x %v; want true, false, true", got[0], got[1], got[2])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Accept blocked with etcd stopped")
	}
	if st := tr.stateOf("new"); st == nil || !st.dirty || st.replica != "x" {
		t.Fatalf("new cluster state %+v, want x elected locally", st)
	}
}

// TestHACancelledCtx: a caller that gave up gets a local decision; it is
// not taken for an etcd failure, so other clusters are not backed off.
func TestHACancelledCtx(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	tr := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(newFakeClock()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := tr.Accept(ctx, "c1", "a", 0); !ok || err != nil {
		t.Fatalf("cancelled ctx: %v %v, want a local election", ok, err)
	}
	if got := testutil.ToFloat64(tr.metrics.errors.WithLabelValues("create")); got != 0 {
		t.Fatalf("create errors = %v, want 0", got)
	}
	if !accept(t, tr, "c2", "a") || testutil.ToFloat64(tr.metrics.writes.WithLabelValues("create")) != 1 {
		t.Fatal("the next cluster was not written to etcd at once")
	}
	if !accept(t, tr, "c1", "a") || accept(t, tr, "c1", "b") {
		t.Fatal("c1: want a elected")
	}
	waitElected(t, tr, "c1", "a", 0) // written by the sample after the cancelled one
}

// TestHALeaseLost: when the tracker's lease is gone its records go with
// it; a new lease is granted and the next samples write them again.
func TestHALeaseLost(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	clock := newFakeClock()
	tr := startHA(t, c, haTestOpts(clock))
	if !accept(t, tr, "c", "a") {
		t.Fatal("a refused")
	}
	old := tr.lease.Load()
	if _, err := c.Revoke(context.Background(), clientv3.LeaseID(old)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for tr.stateOf("c") != nil { // the watch sees the record go
		if time.Now().After(deadline) {
			t.Fatalf("after revoke: state %+v", tr.stateOf("c"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The next sample finds the lease gone (elected locally meanwhile);
	// a new lease is granted at once, not at the next keepalive (TTL/3).
	for {
		if !accept(t, tr, "c", "a") || accept(t, tr, "c", "b") {
			t.Fatal("after the revoke: want a accepted, b refused")
		}
		if st := tr.stateOf("c"); st != nil && !st.dirty && tr.lease.Load() != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record not written again: state %+v, lease %x (old %x)", tr.stateOf("c"), tr.lease.Load(), old)
		}
		clock.add(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := c.Get(context.Background(), haTestPrefix+"c")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease != tr.lease.Load() {
		t.Fatalf("record not rewritten under the new lease: %v %v", resp, err)
	}
}

// TestHAStartErrors: Start fails when etcd does not answer, and twice.
func TestHAStartErrors(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	p := newProxy(t, cl.Members[0].ClientURL)
	p.setDown(true)
	tr, err := NewHATracker(newClient(t, []string{p.url}), haTestOpts(newFakeClock()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := tr.Start(ctx); err == nil || !strings.Contains(err.Error(), "ha_dedup") {
		t.Fatalf("Start with etcd out of reach: %v, want an error", err)
	}
	// Before a successful Start, Accept decides locally.
	if ok, err := tr.Accept(context.Background(), "c", "a", 0); !ok || err != nil {
		t.Fatalf("Accept before Start: %v %v", ok, err)
	}
	good := startHA(t, newClient(t, cl.Endpoints()), haTestOpts(newFakeClock()))
	if err := good.Start(context.Background()); !errors.Is(err, ErrHAStarted) {
		t.Fatalf("second Start: %v, want ErrHAStarted", err)
	}
}

// TestHASweep: local decisions of clusters that stopped during an outage
// are forgotten after a lease TTL; records and fresh ones stay.
func TestHASweep(t *testing.T) {
	clock := newFakeClock()
	tr, err := NewHATracker(nil, haTestOpts(clock)) // not started: every decision is local
	if err != nil {
		t.Fatal(err)
	}
	if !accept(t, tr, "gone", "a") || !accept(t, tr, "live", "a") {
		t.Fatal("refused")
	}
	tr.mu.Lock()
	tr.applyLocked("etcd", &haState{replica: "a", electedAt: 1, lastSeen: clock.unixMilli(), modRev: 3})
	tr.mu.Unlock()
	tr.addEntry("empty")
	clock.add(time.Duration(tr.leaseTTL)*time.Second + time.Millisecond)
	accept(t, tr, "live", "a")
	tr.sweep(clock.unixMilli())
	if tr.stateOf("gone") != nil || tr.stateOf("live") == nil || tr.stateOf("etcd") == nil || tr.Clusters() != 2 {
		t.Fatalf("after sweep: %d clusters, gone %+v live %+v", tr.Clusters(), tr.stateOf("gone"), tr.stateOf("live"))
	}
}

// TestHACreateRate: new clusters past MaxCreatesPerSecond are elected
// locally, and written to etcd by a later sample.
func TestHACreateRate(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	clock := newFakeClock()
	o := haTestOpts(clock)
	o.MaxCreatesPerSecond = 5
	tr := startHA(t, c, o)
	for i := range 20 {
		if !accept(t, tr, fmt.Sprintf("c%d", i), "a") {
			t.Fatal("refused")
		}
	}
	if got := testutil.ToFloat64(tr.metrics.writes.WithLabelValues("create")); got != 5 {
		t.Fatalf("creates = %v in one instant, want 5 (the burst)", got)
	}
	if got := testutil.ToFloat64(tr.metrics.localCreateRate); got != 15 {
		t.Fatalf("local decisions{create_rate} = %v, want 15", got)
	}
	for range 3 {
		clock.add(time.Second)
		for i := range 20 {
			accept(t, tr, fmt.Sprintf("c%d", i), "a")
		}
	}
	resp, err := c.Get(context.Background(), haTestPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 20 {
		t.Fatalf("%d records after 3 s, want 20 (%v)", resp.Count, err)
	}
}

// TestHAConcurrentAccept: many goroutines on two nodes, two replicas, a
// moving clock. Run with -race. At the end both nodes agree with etcd.
func TestHAConcurrentAccept(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	clock := newFakeClock()
	nodes := []*HATracker{
		startHA(t, newClient(t, cl.Endpoints()), haTestOpts(clock)),
		startHA(t, newClient(t, cl.Endpoints()), haTestOpts(clock)),
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				if g == 0 && i%20 == 0 {
					clock.add(time.Second)
				}
				_, err := nodes[g%2].Accept(context.Background(), fmt.Sprintf("c%d", i%16), []string{"a", "b"}[(g/2)%2], 0)
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range 16 {
		cluster := fmt.Sprintf("c%d", i)
		r, ok := record(t, c, cluster)
		if !ok {
			t.Fatalf("no record of %s", cluster)
		}
		for _, n := range nodes {
			waitElected(t, n, cluster, r.Replica, r.LastSeen)
		}
	}
}

func FuzzHARecord(f *testing.F) {
	f.Add([]byte(`{"replica":"a","elected_at":1,"last_seen":2}`))
	f.Add([]byte(`{"replica":"\u00e9","elected_at":1,"last_seen":99999999999999}`))
	f.Add([]byte(`{"replica":"","elected_at":1}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, val []byte) {
		st, err := decodeRecord("c", val, 7, 1000)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v is not ErrBadRecord", err)
			}
			return
		}
		if checkHAValue(st.replica) != nil || st.electedAt <= 0 || st.lastSeen <= 0 || st.lastSeen > 1000 || st.modRev != 7 {
			t.Fatalf("decoded an invalid state %+v", st)
		}
		// Round trip: what the tracker writes reads back the same.
		b, err := json.Marshal(haRecord{Replica: st.replica, ElectedAt: st.electedAt, LastSeen: st.lastSeen})
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeRecord("c", b, 7, 1000)
		if err != nil || *again != *st {
			t.Fatalf("round trip: %+v %v, want %+v", again, err, st)
		}
	})
}
