package ring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/internal/testnet"
)

// startPeer serves h on a free loopback port as the peer named name.
func startPeer(t testing.TB, name string, h http.Handler) *Node {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return &Node{Name: name, URL: srv.URL, State: StateActive}
}

// writeBody encodes series series of one sample each as a snappy remote
// write 1.0 body, as the ingest side sends them.
func writeBody(t testing.TB, series int) []byte {
	t.Helper()
	req := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, series)}
	for i := range req.Timeseries {
		req.Timeseries[i] = prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "etcd_mvcc_db_total_size_in_bytes"},
				{Name: "cluster", Value: fmt.Sprintf("cluster-%04d", i/3)},
				{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:2379", i/256%256, i%256)},
				{Name: "job", Value: "etcd"},
			},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1_700_000_000_000 + int64(i)}},
		}
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// decodeBody is what a peer does with a forwarded body.
func decodeBody(b []byte) (*prompb.WriteRequest, error) {
	raw, err := snappy.Decode(nil, b)
	if err != nil {
		return nil, err
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, err
	}
	return &req, nil
}

func newTestPeers(t testing.TB, mod func(*PeerOptions)) (*Peers, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := DefaultPeerOptions()
	o.Registerer = reg
	if mod != nil {
		mod(&o)
	}
	p, err := NewPeers(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, reg
}

func requests(p *Peers, peer, result string) float64 {
	return testutil.ToFloat64(p.metrics.requests.WithLabelValues(peer, result))
}

func TestForwardSuccess(t *testing.T) {
	type seen struct {
		method, path, encoding, ctype, version string
		series                                 int
		err                                    error
	}
	got := make(chan seen, 1)
	a := startPeer(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req, err := decodeBody(b)
		s := seen{method: r.Method, path: r.URL.Path, encoding: r.Header.Get("Content-Encoding"),
			ctype: r.Header.Get("Content-Type"), version: r.Header.Get("X-Prometheus-Remote-Write-Version"), err: err}
		if req != nil {
			s.series = len(req.Timeseries)
		}
		got <- s
		w.WriteHeader(http.StatusNoContent)
	}))
	a.URL += "/" // a trailing slash is not doubled
	p, reg := newTestPeers(t, nil)
	body := writeBody(t, 1000)
	if err := p.Forward(context.Background(), a, body, 1000); err != nil {
		t.Fatal(err)
	}
	s := <-got
	want := seen{method: "POST", path: PushPath, encoding: "snappy", ctype: "application/x-protobuf", version: "0.1.0", series: 1000}
	if s != want {
		t.Fatalf("peer saw %+v, want %+v", s, want)
	}
	if v := requests(p, "a", "success"); v != 1 {
		t.Fatalf("success requests %v", v)
	}
	if v := testutil.ToFloat64(p.metrics.samples.WithLabelValues("a")); v != 1000 {
		t.Fatalf("forwarded samples %v", v)
	}
	if v := testutil.ToFloat64(p.metrics.inflightRequests.WithLabelValues("a")) + testutil.ToFloat64(p.metrics.inflightBytes.WithLabelValues("a")); v != 0 {
		t.Fatalf("in flight after return: %v", v)
	}
	if n := testutil.CollectAndCount(reg, "etcdgate_ring_forward_duration_seconds"); n != 1 {
		t.Fatalf("%d duration series", n)
	}
}

// TestForwardAnswers: each class of answer comes back as its error and
// is counted under its result.
func TestForwardAnswers(t *testing.T) {
	for _, tc := range []struct {
		status     int
		result     string
		refusal    bool
		overloaded bool
		samples    float64
	}{
		{status: 200, result: "success", samples: 7},
		{status: 204, result: "success", samples: 7},
		{status: 400, result: "refused", refusal: true, samples: 7},
		{status: 413, result: "error"}, // the peer stored nothing
		{status: 401, result: "error"}, // a wrong credential is no replica
		{status: 403, result: "error"},
		{status: 429, result: "overloaded", overloaded: true},
		{status: 503, result: "overloaded", overloaded: true},
		{status: 500, result: "error"},
		{status: 502, result: "error"},
		{status: 307, result: "error"}, // redirects are not followed
	} {
		t.Run(fmt.Sprintf("status=%d", tc.status), func(t *testing.T) {
			a := startPeer(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if tc.status == 307 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, "  3 samples refused: out of bounds\n")
			}))
			p, _ := newTestPeers(t, nil)
			err := p.Forward(context.Background(), a, writeBody(t, 7), 7)
			ref, isRef := errors.AsType[*PeerRefusal](err)
			switch {
			case tc.result == "success" && err != nil:
				t.Fatalf("err %v", err)
			case tc.result != "success" && err == nil:
				t.Fatal("no error")
			case isRef != tc.refusal:
				t.Fatalf("refusal %v, want %v: %v", isRef, tc.refusal, err)
			case errors.Is(err, ErrPeerOverloaded) != tc.overloaded:
				t.Fatalf("overloaded %v, want %v: %v", errors.Is(err, ErrPeerOverloaded), tc.overloaded, err)
			case err != nil && !strings.Contains(err.Error(), "peer a"):
				t.Fatalf("error does not name the peer: %v", err)
			}
			if isRef && (*ref != PeerRefusal{Peer: "a", Status: tc.status, Message: "3 samples refused: out of bounds"}) {
				t.Fatalf("refusal %+v", *ref)
			}
			if v := requests(p, "a", tc.result); v != 1 {
				t.Fatalf("%s requests %v", tc.result, v)
			}
			if v := testutil.ToFloat64(p.metrics.samples.WithLabelValues("a")); v != tc.samples {
				t.Fatalf("forwarded samples %v, want %v", v, tc.samples)
			}
		})
	}
}

// TestForwardTimeout: a peer that never answers costs one Timeout.
func TestForwardTimeout(t *testing.T) {
	release := make(chan struct{})
	a := startPeer(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	p, _ := newTestPeers(t, func(o *PeerOptions) { o.Timeout = 100 * time.Millisecond })
	err := p.Forward(context.Background(), a, writeBody(t, 10), 10)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "peer a") {
		t.Fatalf("err %v, want a deadline naming peer a", err)
	}
	if v := requests(p, "a", "error"); v != 1 {
		t.Fatalf("error requests %v", v)
	}
	// The caller's context bounds it too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Forward(ctx, a, writeBody(t, 10), 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
}

// TestForwardMalformed: bad nodes and broken peers give errors naming
// the peer, not panics.
func TestForwardMalformed(t *testing.T) {
	// A listener that answers garbage, or hangs up mid-answer.
	serveRaw := func(answer string) *Node {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					buf := make([]byte, 4096)
					_, _ = c.Read(buf)
					_, _ = io.WriteString(c, answer)
				}()
			}
		}()
		return &Node{Name: "raw", URL: "http://" + l.Addr().String()}
	}
	p, _ := newTestPeers(t, nil)
	body := writeBody(t, 3)
	for _, tc := range []struct {
		name string
		node *Node
	}{
		{"nil node", nil},
		{"no name", &Node{URL: "http://127.0.0.1:1"}},
		{"empty URL", &Node{Name: "e"}},
		{"bad URL", &Node{Name: "bad", URL: "http://[::1"}},
		{"not http", &Node{Name: "ftp", URL: "ftp://127.0.0.1:21"}},
		{"nobody listens", &Node{Name: "gone", URL: fmt.Sprintf("http://127.0.0.1:%d", testnet.FreePort(t))}},
		{"garbage answer", serveRaw("SSH-2.0-OpenSSH\r\n\r\n")},
		{"hang up in headers", serveRaw("HTTP/1.1 200 OK\r\nContent-")},
		{"hang up in body", serveRaw("HTTP/1.1 400 Bad Request\r\nContent-Length: 100\r\n\r\nshort")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Forward(context.Background(), tc.node, body, 3)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.node != nil && tc.node.Name != "" && !strings.Contains(err.Error(), tc.node.Name) {
				t.Fatalf("error does not name the peer: %v", err)
			}
			if tc.name == "hang up in body" {
				// The peer answered 400: the refusal stands with what came.
				if ref, ok := errors.AsType[*PeerRefusal](err); !ok || ref.Message != "short" {
					t.Fatalf("err %v, want a refusal with the partial message", err)
				}
			}
		})
	}
}

// TestForwardHugeAnswer: a peer answering an endless body is read only
// up to the bound.
func TestForwardHugeAnswer(t *testing.T) {
	var written atomic.Int64
	done := make(chan struct{})
	a := startPeer(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for written.Load() < 1<<30 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	p, _ := newTestPeers(t, nil)
	err := p.Forward(context.Background(), a, writeBody(t, 3), 3)
	ref, ok := errors.AsType[*PeerRefusal](err)
	if !ok {
		t.Fatalf("err %v, want a refusal", err)
	}
	if len(ref.Message) > maxMessageBytes+len(" …(cut)") || !strings.HasSuffix(ref.Message, "(cut)") {
		t.Fatalf("message of %d bytes", len(ref.Message))
	}
	<-done // the peer's writes fail once the connection is closed
	// What the peer managed to write is the read bound plus the socket
	// buffers, far below the 1 GiB it tried.
	if n := written.Load(); n >= 32<<20 {
		t.Fatalf("peer wrote %d bytes before the connection closed", n)
	}
}

// blockingPeer answers only when released; arrivals are signalled.
type blockingPeer struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

// open lets every request through, now and later.
func (bp *blockingPeer) open() { bp.once.Do(func() { close(bp.release) }) }

func newBlockingPeer(t *testing.T, name string) (*Node, *blockingPeer) {
	bp := &blockingPeer{arrived: make(chan struct{}, 100), release: make(chan struct{})}
	n := startPeer(t, name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		bp.arrived <- struct{}{}
		<-bp.release
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(bp.open) // runs before the server's Close
	return n, bp
}

// forwardAsync starts Forward and returns its result channel.
func forwardAsync(p *Peers, to *Node, body []byte) chan error {
	res := make(chan error, 1)
	go func() { res <- p.Forward(context.Background(), to, body, 1) }()
	return res
}

// result waits for a Forward that must not queue; the bound only turns a
// hang into a failure.
func result(t *testing.T, res chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Forward did not return: it queued behind a blocked peer")
		return nil
	}
}

func TestForwardInflightRequests(t *testing.T) {
	a, bp := newBlockingPeer(t, "a")
	b := startPeer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	p, _ := newTestPeers(t, func(o *PeerOptions) {
		o.MaxInflightRequests = 2
		o.Timeout = 10 * time.Minute
	})
	body := writeBody(t, 10)
	first, second := forwardAsync(p, a, body), forwardAsync(p, a, body)
	<-bp.arrived
	<-bp.arrived
	if v := testutil.ToFloat64(p.metrics.inflightRequests.WithLabelValues("a")); v != 2 {
		t.Fatalf("in-flight requests %v", v)
	}
	if v := testutil.ToFloat64(p.metrics.inflightBytes.WithLabelValues("a")); v != float64(2*len(body)) {
		t.Fatalf("in-flight bytes %v", v)
	}
	if err := result(t, forwardAsync(p, a, body)); !errors.Is(err, ErrPeerOverloaded) || !strings.Contains(err.Error(), "peer a") {
		t.Fatalf("third forward: %v, want overloaded", err)
	}
	if err := result(t, forwardAsync(p, b, body)); err != nil {
		t.Fatalf("another peer: %v", err)
	}
	if v := requests(p, "a", "overloaded"); v != 1 {
		t.Fatalf("overloaded requests %v", v)
	}
	bp.open()
	for _, res := range []chan error{first, second} {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Forward(context.Background(), a, body, 1); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if v := testutil.ToFloat64(p.metrics.inflightRequests.WithLabelValues("a")); v != 0 {
		t.Fatalf("in-flight requests %v after release", v)
	}
}

func TestForwardInflightBytes(t *testing.T) {
	a, bp := newBlockingPeer(t, "a")
	b := startPeer(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	c, cp := newBlockingPeer(t, "c")
	p, _ := newTestPeers(t, func(o *PeerOptions) {
		o.MaxInflightBytes = 1000
		o.Timeout = 10 * time.Minute
	})
	body := bytes.Repeat([]byte{1}, 600)
	first := forwardAsync(p, a, body)
	<-bp.arrived
	if err := result(t, forwardAsync(p, a, body)); !errors.Is(err, ErrPeerOverloaded) {
		t.Fatalf("second body: %v, want overloaded", err)
	}
	fits := forwardAsync(p, a, body[:400]) // 600 + 400 is within the bound
	<-bp.arrived
	if err := result(t, forwardAsync(p, b, body)); err != nil {
		t.Fatalf("another peer: %v", err)
	}
	// A body larger than the bound goes alone, never beside another.
	big := bytes.Repeat([]byte{1}, 1500)
	bigRes := forwardAsync(p, c, big)
	<-cp.arrived
	if err := result(t, forwardAsync(p, c, body[:1])); !errors.Is(err, ErrPeerOverloaded) {
		t.Fatalf("beside an oversized body: %v, want overloaded", err)
	}
	bp.open()
	cp.open()
	for _, res := range []chan error{first, fits, bigRes} {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetain(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	nodes := []Node{*startPeer(t, "a", ok), *startPeer(t, "b", ok), *startPeer(t, "c", ok)}
	p, reg := newTestPeers(t, nil)
	for i := range nodes {
		if err := p.Forward(context.Background(), &nodes[i], []byte("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{
		"etcdgate_ring_forward_requests_total", "etcdgate_ring_forwarded_samples_total",
		"etcdgate_ring_forward_duration_seconds", "etcdgate_ring_forward_inflight_requests",
		"etcdgate_ring_forward_inflight_bytes",
	}
	count := func() int { return testutil.CollectAndCount(reg, names...) }
	if n := count(); n != 3*(4+4) {
		t.Fatalf("%d series for 3 peers", n)
	}
	p.Retain(nodes[:1])
	if n := count(); n != 4+4 {
		t.Fatalf("%d series after keeping a", n)
	}
	if len(p.peers) != 1 {
		t.Fatalf("%d peers kept", len(p.peers))
	}
	// A forward in flight while its peer leaves the ring does not bring
	// its series back.
	d, dp := newBlockingPeer(t, "d")
	res := forwardAsync(p, d, []byte("x"))
	<-dp.arrived
	p.Retain(nil)
	dp.open()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d series after retaining none", n)
	}
}

// TestForwardBasicAuth: the credentials of the caller's client reach the
// peer, and no credential appears in an error or a log line.
func TestForwardBasicAuth(t *testing.T) {
	type creds struct {
		user, pass string
		ok         bool
	}
	got := make(chan creds, 1)
	a := startPeer(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		got <- creds{u, pw, ok}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	client, err := config.NewClientFromConfig(config.HTTPClientConfig{
		BasicAuth: &config.BasicAuth{Username: "ring", Password: "hunter2-secret"},
	}, "ring")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	p, _ := newTestPeers(t, func(o *PeerOptions) {
		o.Client = client
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	err = p.Forward(context.Background(), a, []byte("x"), 1)
	if c := <-got; c != (creds{"ring", "hunter2-secret", true}) {
		t.Fatalf("peer saw %+v", c)
	}
	// Credentials in the advertise URL stay out of errors and logs too.
	withPw := *a
	withPw.URL = strings.Replace(a.URL, "http://", "http://ring:url-secret@", 1)
	p2, _ := newTestPeers(t, func(o *PeerOptions) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	err2 := p2.Forward(context.Background(), &withPw, []byte("x"), 1)
	if c := <-got; c != (creds{"ring", "url-secret", true}) {
		t.Fatalf("peer saw %+v", c)
	}
	for _, s := range []string{err.Error(), err2.Error(), logs.String()} {
		if strings.Contains(s, "secret") {
			t.Fatalf("credential leaked: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "peer=a") {
		t.Fatalf("no log line: %q", logs.String())
	}
}

// TestForwardLogThrottle: one line per peer per 10 s.
func TestForwardLogThrottle(t *testing.T) {
	fail := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	a, b := startPeer(t, "a", fail), startPeer(t, "b", fail)
	var logs bytes.Buffer
	p, _ := newTestPeers(t, func(o *PeerOptions) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	for range 5 {
		_ = p.Forward(context.Background(), a, []byte("x"), 1)
		_ = p.Forward(context.Background(), b, []byte("x"), 1)
	}
	if n := strings.Count(logs.String(), "\n"); n != 2 {
		t.Fatalf("%d log lines:\n%s", n, logs.String())
	}
}

// stashingTransport answers at once without reading the body, keeping
// the request as a transport whose write outlives the answer would.
type stashingTransport struct{ req *http.Request }

func (s *stashingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.req = r
	return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
}

// TestForwardBodyNotRetained: a transport reading the body after Forward
// returned gets an error, not the caller's bytes.
func TestForwardBodyNotRetained(t *testing.T) {
	st := &stashingTransport{}
	p, _ := newTestPeers(t, func(o *PeerOptions) { o.Client = &http.Client{Transport: st} })
	body := []byte("the caller reuses this buffer")
	if err := p.Forward(context.Background(), &Node{Name: "a", URL: "http://127.0.0.1:1"}, body, 1); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(st.req.Body)
	if len(b) != 0 || !errors.Is(err, errBodyReturned) {
		t.Fatalf("read %q, %v after return", b, err)
	}
	again, err := st.req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(again); len(b) != 0 || !errors.Is(err, errBodyReturned) {
		t.Fatalf("GetBody read %q, %v after return", b, err)
	}
}

func TestNewPeersOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*PeerOptions)
		ok   bool
	}{
		{"defaults", func(*PeerOptions) {}, true},
		{"zero fields take defaults", func(o *PeerOptions) { *o = PeerOptions{} }, true},
		{"negative timeout", func(o *PeerOptions) { o.Timeout = -time.Second }, false},
		{"negative requests", func(o *PeerOptions) { o.MaxInflightRequests = -1 }, false},
		{"negative bytes", func(o *PeerOptions) { o.MaxInflightBytes = -1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultPeerOptions()
			tc.mod(&o)
			p, err := NewPeers(o)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if err == nil && (p.opts.Timeout != 5*time.Second || p.opts.MaxInflightRequests != 64 || p.opts.MaxInflightBytes != 64<<20) {
				t.Fatalf("options %+v", p.opts)
			}
		})
	}
}
