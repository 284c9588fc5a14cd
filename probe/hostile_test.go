package probe

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// fakeInspection does what its function says, without touching etcd.
type fakeInspection struct {
	name string
	fn   func() Result
}

func (f fakeInspection) Name() string { return f.name }
func (f fakeInspection) Inspect(context.Context, *Session, any) (Result, error) {
	return f.fn(), nil
}

// syncBuffer is a log sink safe for the scheduler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPanickingInspectionFailsItsRun schedules an inspection that panics
// beside one that succeeds, on one target: every panic is a failed record
// naming it, counted in etcdgate_probe_panics_total and logged once (the
// throttle holds the rest back), and the scheduler keeps running both.
func TestPanickingInspectionFailsItsRun(t *testing.T) {
	records := NewRecordStore(time.Hour, 1000)
	var logs syncBuffer
	runner := NewRunner(RunnerOptions{Emitter: &collector{}, Records: records,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	opts := DefaultSchedulerOptions()
	opts.Tick, opts.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	closed := etcdtest.FreeURL(t, "http") // dialed lazily: never, by these inspections
	tg := Target{Cluster: "etcd-buggy", Endpoints: []string{closed.String()}}
	opts.Targets = func() []Target { return []Target{tg} }
	panicky := fakeInspection{"panicky", func() Result { panic("boom: a bug in an inspection") }}
	steady := fakeInspection{"steady", func() Result { return Result{Message: "fine"} }}
	opts.Plans = []Plan{{Inspection: panicky, Interval: 5 * time.Millisecond, Timeout: time.Second},
		{Inspection: steady, Interval: 5 * time.Millisecond, Timeout: time.Second}}
	s, err := NewScheduler(opts, runner)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	// Not a timed assertion: wait for enough runs, with a cap so that a
	// scheduler that stopped fails the test instead of hanging it.
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if len(records.List(Filter{Inspection: "panicky"})) >= 3 && len(records.List(Filter{Inspection: "steady"})) >= 3 {
			break
		}
	}
	cancel()
	<-done
	failed, ok := records.List(Filter{Inspection: "panicky"}), records.List(Filter{Inspection: "steady"})
	if len(failed) < 3 || len(ok) < 3 {
		t.Fatalf("scheduler stopped: %d panicky runs, %d steady runs", len(failed), len(ok))
	}
	for _, r := range failed {
		wantRecord(t, r, StatusFailed, "inspection panicked: boom: a bug in an inspection")
	}
	for _, r := range ok {
		wantRecord(t, r, StatusSuccess, "fine")
	}
	if n := testutil.ToFloat64(runner.metrics.panics.WithLabelValues("panicky")); int(n) != len(failed) {
		t.Fatalf("etcdgate_probe_panics_total = %v, want %d", n, len(failed))
	}
	if n := strings.Count(logs.String(), "inspection panicked"); n != 1 || !strings.Contains(logs.String(), "hostile_test.go") {
		t.Fatalf("%d panic log lines (want 1, with the stack): %s", n, logs.String())
	}
}

// TestRunBoundsWhatItPublishes: a run cannot publish an unbounded message
// or unbounded series, whatever an inspection returns.
func TestRunBoundsWhatItPublishes(t *testing.T) {
	huge := fakeInspection{"huge", func() Result {
		fs := make([]Finding, 3*maxFindings)
		for i := range fs {
			fs[i] = Finding{Name: "etcdgate_inspection_x", Value: float64(i)}
		}
		return Result{Message: strings.Repeat("é", 1<<20), Findings: fs}
	}}
	col := &collector{}
	rec, _ := NewRunner(RunnerOptions{Emitter: col}).Run(context.Background(), Target{Cluster: "c",
		Endpoints: []string{"http://127.0.0.1:1"}}, huge, time.Second, nil)
	if len(rec.Message) > maxMessage+len("…") || !strings.HasSuffix(rec.Message, "…") {
		t.Fatalf("message of %d bytes", len(rec.Message))
	}
	if len(col.series) != maxFindings+2 {
		t.Fatalf("%d series emitted, want %d", len(col.series), maxFindings+2)
	}
}

// fakeMember is an etcd member speaking the gRPC API but answering what
// no real member does. With noHeader its answers lack the response
// header; otherwise they have one but leave other fields empty, and its
// watch sends events without their key-value.
type fakeMember struct {
	pb.UnimplementedKVServer
	pb.UnimplementedMaintenanceServer
	pb.UnimplementedClusterServer
	pb.UnimplementedWatchServer
	noHeader bool
}

func (f *fakeMember) header() *pb.ResponseHeader {
	if f.noHeader {
		return nil
	}
	return &pb.ResponseHeader{Revision: 5, MemberId: 1, RaftTerm: 2}
}

func (f *fakeMember) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	resp := &pb.RangeResponse{Header: f.header(), Count: 3}
	if !r.CountOnly {
		resp.Kvs = []*mvccpb.KeyValue{{Key: []byte("/a/1"), Value: []byte("v")}}
	}
	return resp, nil
}

func (f *fakeMember) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	errs := make([]string, 2*maxMemberErrors)
	for i := range errs {
		errs[i] = strings.Repeat("e", 1<<16)
	}
	return &pb.StatusResponse{Header: f.header(), Errors: errs}, nil
}

func (f *fakeMember) HashKV(context.Context, *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	return &pb.HashKVResponse{Header: f.header()}, nil
}

func (f *fakeMember) Alarm(context.Context, *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{Header: f.header()}, nil
}

func (f *fakeMember) MemberList(context.Context, *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{Header: f.header()}, nil
}

func (f *fakeMember) Watch(stream pb.Watch_WatchServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&pb.WatchResponse{Header: f.header(), Created: true}); err != nil {
		return err
	}
	if err := stream.Send(&pb.WatchResponse{Header: f.header(), Events: []*mvccpb.Event{{Type: mvccpb.Event_PUT}}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// startFake serves f on a loopback port and returns its URL.
func startFake(t *testing.T, f *fakeMember) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterKVServer(srv, f)
	pb.RegisterMaintenanceServer(srv, f)
	pb.RegisterClusterServer(srv, f)
	pb.RegisterWatchServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return "http://" + l.Addr().String()
}

// TestHostileMember runs every inspection against fake members: one whose
// answers lack the response header fails every record saying so (not by
// a recovered panic), one whose answers leave fields empty gives no
// panic either, and its watch events without key-values (which clientv3
// would dereference in a goroutine of its own) fail hot_keys.
func TestHostileMember(t *testing.T) {
	settings := DefaultSettings()
	settings.HotKeys.Window = 100 * time.Millisecond
	for _, tc := range []struct {
		name     string
		noHeader bool
		want     func(in string) (Status, string)
	}{
		{"no-header", true, func(string) (Status, string) { return StatusFailed, ErrNoHeader.Error() }},
		{"empty-fields", false, func(in string) (Status, string) {
			switch in {
			case "health":
				return StatusWarning, "more errors" // no leader, and the member's errors, bounded
			case "hot_keys":
				return StatusFailed, ErrNoKeyValue.Error()
			}
			return StatusSuccess, ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := Target{Cluster: "etcd-fake", Endpoints: []string{startFake(t, &fakeMember{noHeader: tc.noHeader})}}
			for _, in := range settings.All() {
				rec, _, _ := inspect(t, tg, in, 5*time.Second, nil)
				if strings.Contains(rec.Message, ErrPanic.Error()) {
					t.Fatalf("%s: %s", in.Name(), rec.Message)
				}
				status, msg := tc.want(in.Name())
				wantRecord(t, rec, status, msg)
				if len(rec.Message) > maxMessage+len("…") {
					t.Fatalf("%s: message of %d bytes", in.Name(), len(rec.Message))
				}
			}
		})
	}
}

// TestBigValuesUnderSmallBound fills a real cluster with values that do
// not fit a page under a 1 MiB answer bound: the scan shrinks its pages
// and still reports every big value, no answer it receives passes the
// bound, a value larger than the bound fails the run saying so, and a
// scan past max_keys fails rather than report a partial count.
func TestBigValuesUnderSmallBound(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 1})
	kv := c.Client(t)
	ctx := context.Background()
	const n, size = 40, 200 << 10 // 8 MB of values: 500-key pages would be 8 MB answers
	for i := range n {
		if _, err := kv.Put(ctx, fmt.Sprintf("/registry/configmaps/ns/big%02d", i), strings.Repeat("x", size)); err != nil {
			t.Fatal(err)
		}
	}
	tg := testTarget("etcd-big", c)
	b := DefaultBigValues()

	s, err := Dial(tg, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seen := 0
	st, err := b.Paging.scan(ctx, s, false, func(kv *mvccpb.KeyValue) { seen++ })
	if err != nil || seen != n || st.Keys != n {
		t.Fatalf("scan under 1 MiB: %d keys seen, %+v, %v", seen, st, err)
	}
	if s.Largest() > 1<<20 || st.Pages < n*size/(1<<20) {
		t.Fatalf("largest answer %d bytes (bound 1 MiB), %d pages", s.Largest(), st.Pages)
	}

	run := func(maxResp int, b BigValues) Record {
		r := NewRunner(RunnerOptions{MaxResponseBytes: maxResp})
		rec, _ := r.Run(ctx, tg, b, 30*time.Second, nil)
		t.Logf("%s: %s (%d requests, %d bytes)", rec.Status, rec.Message, rec.Requests, rec.BytesRead)
		return rec
	}
	wantRecord(t, run(1<<20, b), StatusWarning, fmt.Sprintf("%d of %d keys have values of", n, n))
	wantRecord(t, run(128<<10, b), StatusFailed, ErrResponseTooLarge.Error())
	few := b
	few.Paging.MaxKeys = 10
	wantRecord(t, run(1<<20, few), StatusFailed, ErrTooManyKeys.Error())
}

// TestCountInBoundsGroups: past its limit, new groups count as other.
func TestCountInBoundsGroups(t *testing.T) {
	counts := map[string]int64{}
	for i := range 1000 {
		countIn(counts, fmt.Sprintf("/p%d/", i), 1, 10)
	}
	if len(counts) != 11 || counts[otherPrefix] != 990 {
		t.Fatalf("%d groups, other %d", len(counts), counts[otherPrefix])
	}
}
