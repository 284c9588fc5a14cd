package probe

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// silentEndpoint is a TCP listener that accepts connections and never
// answers: a cluster too slow to answer at all.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return "http://" + l.Addr().String()
}

// failingTargets are an unreachable cluster, a TLS cluster probed with
// the wrong CA and a cluster that never answers, each with the message
// its failed record must carry.
func failingTargets(t *testing.T) map[string]struct {
	target Target
	want   string
} {
	certs, other := etcdtest.NewCerts(t), etcdtest.NewCerts(t)
	tlsCluster := etcdtest.Start(t, etcdtest.Options{Members: 1, TLS: certs})
	closed := etcdtest.FreeURL(t, "http")
	return map[string]struct {
		target Target
		want   string
	}{
		"unreachable": {Target{Cluster: "etcd-gone", Endpoints: []string{closed.String()}}, "connect: connection refused"},
		"wrong-ca": {Target{Cluster: "etcd-wrong-ca", Endpoints: tlsCluster.Endpoints(),
			TLS: TLSConfig{CAFile: other.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}},
			"certificate signed by unknown authority"},
		"slow": {Target{Cluster: "etcd-slow", Endpoints: []string{silentEndpoint(t)}}, "no answer within"},
	}
}

// TestFailedRecords checks that each kind of broken cluster gives a
// failed record whose message says what is wrong, for every inspection.
func TestFailedRecords(t *testing.T) {
	for name, tc := range failingTargets(t) {
		t.Run(name, func(t *testing.T) {
			for _, in := range DefaultSettings().All() {
				rec, state, col := inspect(t, tc.target, in, time.Second, nil)
				wantRecord(t, rec, StatusFailed, tc.want)
				wantValue(t, col, 0, "etcdgate_inspection_success", "cluster", tc.target.Cluster, "inspection", in.Name())
				if state != nil {
					t.Fatalf("%s: a failed run returned state", in.Name())
				}
			}
		})
	}
}

// TestTLS probes a TLS-only cluster with a client certificate made in
// the test, and checks that without one it is refused.
func TestTLS(t *testing.T) {
	certs := etcdtest.NewCerts(t)
	c := etcdtest.Start(t, etcdtest.Options{Members: 3, TLS: certs})
	putKeys(t, c.Client(t), "/registry/secrets/ns/s", 30)
	c.WaitConverged(t)
	tg := testTarget("etcd-tls", c)
	tg.TLS = TLSConfig{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}
	for _, in := range []Inspection{DefaultHealth(), Consistency{}, DefaultKeyCount()} {
		rec, _, _ := inspect(t, tg, in, 10*time.Second, nil)
		if rec.Status != StatusSuccess {
			t.Fatalf("%s over TLS: %s: %s", in.Name(), rec.Status, rec.Message)
		}
	}
	rec, _, _ := inspect(t, tg, Consistency{}, 10*time.Second, nil)
	wantRecord(t, rec, StatusSuccess, "total key num is 30")

	tg.TLS.CertFile, tg.TLS.KeyFile = "", ""
	rec, _, _ = inspect(t, tg, DefaultHealth(), 2*time.Second, nil)
	wantRecord(t, rec, StatusFailed, "certificate required")
}

// TestSchedulerIsolatesFailures runs a healthy cluster beside the broken
// ones, with two runs at a time, and checks that the healthy one keeps
// being inspected while every broken one gets failed records. Counts are
// loose lower bounds: a loaded machine runs fewer rounds, not none.
func TestSchedulerIsolatesFailures(t *testing.T) {
	good := etcdtest.Start(t, etcdtest.Options{Members: 3})
	targets := []Target{testTarget("etcd-good", good)}
	want := map[string]string{}
	for _, tc := range failingTargets(t) {
		targets = append(targets, tc.target)
		want[tc.target.Cluster] = tc.want
	}
	records := NewRecordStore(time.Hour, 1000)
	reg := prometheus.NewRegistry()
	runner := NewRunner(RunnerOptions{Emitter: &collector{}, Records: records, Registerer: reg})
	opts := DefaultSchedulerOptions()
	opts.Concurrency, opts.Tick, opts.MaxBackoff = 2, 20*time.Millisecond, 2*time.Second
	opts.Targets = func() []Target { return targets }
	opts.Plans = []Plan{
		{Inspection: DefaultHealth(), Interval: 100 * time.Millisecond, Timeout: 2 * time.Second},
		{Inspection: Consistency{}, Interval: 100 * time.Millisecond, Timeout: 2 * time.Second},
	}
	s, err := NewScheduler(opts, runner)
	if err != nil {
		t.Fatal(err)
	}
	// Stopped by cancellation, as serve stops it: runs in progress are
	// interrupted, not failed.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(4*time.Second, cancel)
	s.Run(ctx)

	goodRuns := records.List(Filter{Cluster: "etcd-good"})
	for _, r := range goodRuns {
		if r.Status != StatusSuccess {
			t.Fatalf("healthy cluster: %s %s: %s", r.Inspection, r.Status, r.Message)
		}
	}
	if len(records.List(Filter{Cluster: "etcd-good", Inspection: "health"})) < 3 ||
		len(records.List(Filter{Cluster: "etcd-good", Inspection: "consistency"})) < 3 {
		t.Fatalf("healthy cluster inspected only %d times in 4s", len(goodRuns))
	}
	for cluster, msg := range want {
		failed := records.List(Filter{Cluster: cluster, Status: StatusFailed})
		if len(failed) == 0 || !strings.Contains(failed[0].Message, msg) {
			t.Fatalf("%s: failed records %v, want a message with %q", cluster, failed, msg)
		}
		// Without back-off two inspections every 100 ms make 80 runs;
		// doubling intervals make about 14.
		if n := len(records.List(Filter{Cluster: cluster})); n > 20 {
			t.Errorf("%s: %d runs in 4s despite back-off", cluster, n)
		}
	}
	if n := testutil.ToFloat64(runner.metrics.runs.WithLabelValues("health", "success")); int(n) != len(records.List(Filter{Cluster: "etcd-good", Inspection: "health"})) {
		t.Fatalf("etcdgate_probe_runs_total{health,success} = %v", n)
	}
}

// TestInterruptedRunIsNotPublished stops a run mid-way, as a shutdown
// does: no record, no series.
func TestInterruptedRunIsNotPublished(t *testing.T) {
	records, col := NewRecordStore(time.Hour, 10), &collector{}
	r := NewRunner(RunnerOptions{Emitter: col, Records: records})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	tg := Target{Cluster: "etcd-slow", Endpoints: []string{silentEndpoint(t)}}
	rec, _ := r.Run(ctx, tg, DefaultHealth(), 10*time.Second, nil)
	if !strings.HasPrefix(rec.Message, "interrupted: ") || len(records.List(Filter{})) != 0 || len(col.series) != 0 {
		t.Fatalf("%+v; %d records, %d series", rec, len(records.List(Filter{})), len(col.series))
	}
}
