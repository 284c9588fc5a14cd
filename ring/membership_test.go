package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

const testPrefix = "/etcdgate/ring/"

func testOpts(name string) MembershipOptions {
	o := DefaultMembershipOptions()
	o.Node = Node{Name: name, URL: "http://127.0.0.1:9390", Zone: "z1", Tokens: []uint32{1, 2, 3}}
	o.TTL = 2 * time.Second
	o.Registerer = prometheus.NewRegistry()
	return o
}

func newClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// join starts a member named name on client and moves it to ACTIVE.
func join(t *testing.T, c *clientv3.Client, opts MembershipOptions) *Membership {
	t.Helper()
	m, err := NewMembership(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Join(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if err := m.SetState(ctx, StateActive); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitView waits (generously) until m's view is want: name→state.
func waitView(t *testing.T, m *Membership, want map[string]State) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := map[string]State{}
		for _, n := range m.Nodes() {
			got[n.Name] = n.State
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("view of %s: got %v, want %v", m.opts.Node.Name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMembershipOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*MembershipOptions)
		want string // "" for valid
	}{
		{"valid", func(*MembershipOptions) {}, ""},
		{"empty name", func(o *MembershipOptions) { o.Node.Name = "" }, "ring.node_name"},
		{"slash in name", func(o *MembershipOptions) { o.Node.Name = "a/b" }, "ring.node_name"},
		{"no url", func(o *MembershipOptions) { o.Node.URL = "" }, "ring.advertise_url"},
		{"ftp url", func(o *MembershipOptions) { o.Node.URL = "ftp://h:1" }, "ring.advertise_url"},
		{"bad url", func(o *MembershipOptions) { o.Node.URL = "http://[::1" }, "ring.advertise_url"},
		{"short ttl", func(o *MembershipOptions) { o.TTL = time.Second }, "ring.heartbeat_ttl"},
		{"prefix", func(o *MembershipOptions) { o.Prefix = "/ring" }, "ring.etcd.prefix"},
		{"tokens unsorted", func(o *MembershipOptions) { o.Node.Tokens = []uint32{3, 1} }, "ring.tokens"},
		{"tokens dup", func(o *MembershipOptions) { o.Node.Tokens = []uint32{1, 1} }, "ring.tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOpts("n1")
			tc.edit(&o)
			_, err := NewMembership(nil, o)
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
	m, err := NewMembership(nil, MembershipOptions{Node: Node{Name: "n", URL: "https://h"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.opts.Prefix != testPrefix || m.opts.TTL != 10*time.Second || m.opts.MaxRecords != 10000 || m.opts.MaxRecordBytes != 64<<10 {
		t.Fatalf("defaults not applied: %+v", m.opts)
	}
}

func TestMembershipJoinLeaveDuplicate(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 3})
	a := join(t, newClient(t, cl.Endpoints()), testOpts("a"))
	var mu sync.Mutex
	var views [][]Node
	ob := testOpts("b")
	ob.OnChange = func(n []Node) { mu.Lock(); views = append(views, n); mu.Unlock() }
	b := join(t, newClient(t, cl.Endpoints()), ob)
	want := map[string]State{"a": StateActive, "b": StateActive}
	waitView(t, a, want)
	waitView(t, b, want)
	for _, n := range a.Nodes() {
		if n.Name == "b" && (n.URL != ob.Node.URL || n.Zone != "z1" || fmt.Sprint(n.Tokens) != "[1 2 3]" || n.Heartbeat.IsZero()) {
			t.Fatalf("record of b read back as %+v", n)
		}
	}
	mu.Lock()
	if len(views) == 0 {
		t.Fatal("OnChange never called")
	}
	mu.Unlock()
	if got := testutil.ToFloat64(a.metrics.members.WithLabelValues("ACTIVE")); got != 2 {
		t.Fatalf("etcdgate_ring_members{state=ACTIVE} = %v, want 2", got)
	}

	// A second node named "a" is refused while a lives.
	dup, err := NewMembership(newClient(t, cl.Endpoints()), testOpts("a"))
	if err != nil {
		t.Fatal(err)
	}
	err = dup.Join(context.Background())
	if !errors.Is(err, ErrNameTaken) || !strings.Contains(err.Error(), "ring.node_name") {
		t.Fatalf("duplicate join: got %v, want ErrNameTaken naming ring.node_name", err)
	}
	waitView(t, b, want)

	// Leave takes b out of a's view at once: far sooner than the lease TTL
	// could, which the huge TTL below makes visible.
	if err := b.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitView(t, a, map[string]State{"a": StateActive})

	// Leave is refused when not joined.
	if err := b.Leave(context.Background()); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("second leave: %v", err)
	}
}

func TestMembershipLeaveIsImmediate(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	a := join(t, newClient(t, cl.Endpoints()), testOpts("a"))
	ob := testOpts("b")
	ob.TTL = time.Hour // only Leave's revoke can remove it within the wait
	b := join(t, newClient(t, cl.Endpoints()), ob)
	waitView(t, a, map[string]State{"a": StateActive, "b": StateActive})
	if err := b.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitView(t, a, map[string]State{"a": StateActive})
}

func TestMembershipLeaseExpiryDropsNode(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 3})
	a := join(t, newClient(t, cl.Endpoints()), testOpts("a"))
	bc := newClient(t, cl.Endpoints())
	b := join(t, bc, testOpts("b"))
	waitView(t, a, map[string]State{"a": StateActive, "b": StateActive})
	closed := time.Now()
	bc.Close() // b's keepalives stop, as when its process dies
	b.Close()
	waitView(t, a, map[string]State{"a": StateActive})
	t.Logf("b left a's view %v after its client closed (TTL 2s)", time.Since(closed).Round(time.Millisecond))
}

func TestMembershipBadRecordsSkipped(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	ctx := context.Background()
	// Records already there when a lists, and records arriving by watch.
	bad := map[string]string{
		"garbage":  "{not json",
		"wrongkey": `{"name":"other","advertise_url":"http://h:1","state":"ACTIVE","tokens":[]}`,
		"nostate":  `{"name":"nostate","advertise_url":"http://h:1","tokens":[]}`,
		"badstate": `{"name":"badstate","advertise_url":"http://h:1","state":"BOSS","tokens":[]}`,
		"badurl":   `{"name":"badurl","advertise_url":"gopher://h","state":"ACTIVE","tokens":[]}`,
		"unsorted": `{"name":"unsorted","advertise_url":"http://h:1","state":"ACTIVE","tokens":[5,4]}`,
		"huge":     `{"name":"huge","advertise_url":"http://h:1","state":"ACTIVE","tokens":[],"x":"` + strings.Repeat("x", 70<<10) + `"}`,
	}
	for k, v := range bad {
		if _, err := c.Put(ctx, testPrefix+k, v); err != nil {
			t.Fatal(err)
		}
	}
	good := `{"name":"good","advertise_url":"http://h:1","state":"JOINING","tokens":[7]}`
	if _, err := c.Put(ctx, testPrefix+"good", good); err != nil {
		t.Fatal(err)
	}
	a := join(t, c, testOpts("a"))
	want := map[string]State{"a": StateActive, "good": StateJoining}
	waitView(t, a, want)
	decode := a.metrics.errors.WithLabelValues("decode")
	if got := testutil.ToFloat64(decode); got < float64(len(bad)) {
		t.Fatalf("decode errors = %v, want ≥ %d", got, len(bad))
	}
	before := testutil.ToFloat64(decode)
	// A good record turned bad by the watch leaves the view.
	if _, err := c.Put(ctx, testPrefix+"good", "[]"); err != nil {
		t.Fatal(err)
	}
	waitView(t, a, map[string]State{"a": StateActive})
	if got := testutil.ToFloat64(decode); got != before+1 {
		t.Fatalf("decode errors = %v after a bad watch event, want %v", got, before+1)
	}
}

func TestMembershipMaxRecords(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	for i := range 150 { // more than two list pages
		v := fmt.Sprintf(`{"name":"n%03d","advertise_url":"http://h:1","state":"ACTIVE","tokens":[]}`, i)
		if _, err := c.Put(context.Background(), fmt.Sprintf("%sn%03d", testPrefix, i), v); err != nil {
			t.Fatal(err)
		}
	}
	o := testOpts("zz")
	o.MaxRecords = 100
	a := join(t, c, o)
	deadline := time.Now().Add(15 * time.Second)
	for len(a.Nodes()) != 100 || testutil.ToFloat64(a.metrics.errors.WithLabelValues("decode")) < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("view holds %d nodes, want 100 (MaxRecords)", len(a.Nodes()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	o2 := testOpts("all")
	o2.Registerer = nil
	all := join(t, c, o2)
	deadline = time.Now().Add(15 * time.Second)
	for len(all.Nodes()) != 152 {
		if time.Now().After(deadline) {
			t.Fatalf("paged list saw %d records, want 152", len(all.Nodes()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMembershipSurvivesEtcdMemberStop(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 3})
	a := join(t, newClient(t, cl.Endpoints()), testOpts("a"))
	b := join(t, newClient(t, cl.Endpoints()), testOpts("b"))
	waitView(t, a, map[string]State{"a": StateActive, "b": StateActive})
	stopped := time.Now()
	cl.Members[0].Stop() // embed's Close takes ~6 s here, with open streams
	c := join(t, newClient(t, cl.Endpoints()), testOpts("c"))
	want := map[string]State{"a": StateActive, "b": StateActive, "c": StateActive}
	waitView(t, a, want)
	waitView(t, b, want)
	waitView(t, c, want)
	// Past the 2 s TTL the leases stay alive through the other two.
	if wait := 3*time.Second - time.Since(stopped); wait > 0 {
		time.Sleep(wait)
	}
	waitView(t, a, want)
	if got := testutil.ToFloat64(a.metrics.regrants); got != 0 {
		t.Fatalf("a's lease was re-granted %v times with 2 of 3 etcd members up", got)
	}
	if err := b.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitView(t, a, map[string]State{"a": StateActive, "c": StateActive})
}

// TestMembershipEtcdOutage cuts a's only way to etcd for longer than the
// TTL: a keeps its last view; b sees a drop; when etcd is back a grants a
// new lease, rewrites its record, and both views are whole again.
func TestMembershipEtcdOutage(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	p := newProxy(t, cl.Members[0].ClientURL)
	a := join(t, newClient(t, []string{p.url}), testOpts("a"))
	b := join(t, newClient(t, cl.Endpoints()), testOpts("b"))
	both := map[string]State{"a": StateActive, "b": StateActive}
	waitView(t, a, both)
	waitView(t, b, both)

	p.setDown(true)
	waitView(t, b, map[string]State{"b": StateActive}) // a's lease expired
	waitView(t, a, both)                               // a keeps its last view
	// A write while etcd is out of reach fails within its context.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := a.SetState(ctx, StateActive)
	cancel()
	if err == nil {
		t.Fatal("SetState succeeded with etcd out of reach")
	}
	waitView(t, a, both)

	p.setDown(false)
	waitView(t, b, both)
	waitView(t, a, both)
	// b sees a's new record before a has revoked its old lease and
	// counted the re-grant.
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(a.metrics.regrants) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("lease re-grants = 0, want ≥ 1")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxy forwards TCP to one etcd member and can cut every connection.
type proxy struct {
	url    string
	target string
	ln     net.Listener

	mu    sync.Mutex
	down  bool                  // guarded by mu
	conns map[net.Conn]struct{} // guarded by mu
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{url: "http://" + ln.Addr().String(), target: strings.TrimPrefix(target, "http://"), ln: ln,
		conns: map[net.Conn]struct{}{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done; p.setDown(true) })
	return p
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) serve(c net.Conn) {
	if !p.track(c) {
		return
	}
	u, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(u) {
		c.Close()
		return
	}
	go func() { _, _ = io.Copy(u, c); u.Close() }()
	_, _ = io.Copy(c, u)
	c.Close()
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestMembershipWatchCompacted: a watch from a compacted revision ends
// and is counted, so that the watch loop lists again (follow returns to it).
func TestMembershipWatchCompacted(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Members: 1})
	c := newClient(t, cl.Endpoints())
	ctx := context.Background()
	m, err := NewMembership(c, testOpts("a"))
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := range 5 {
		r, err := c.Put(ctx, testPrefix+"x", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = r.Header.Revision
	}
	if _, err := c.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { m.follow(ctx, map[string]Node{}, 1); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a watch from a compacted revision did not end")
	}
	if got := testutil.ToFloat64(m.metrics.errors.WithLabelValues("watch")); got < 1 {
		t.Fatalf("watch errors = %v, want ≥ 1", got)
	}
}
