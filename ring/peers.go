package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcdgate/etcdgate/internal/logthrottle"
)

// PushPath is the internal endpoint every node serves for writes
// forwarded by its peers: a snappy remote-write 1.0 body of series
// already relabeled, appended locally and never forwarded again.
const PushPath = "/internal/v1/push"

const (
	// maxResponseBytes bounds how much of a peer's answer is read.
	maxResponseBytes = 64 << 10
	// maxMessageBytes bounds the peer's message kept in errors and logs.
	maxMessageBytes = 1 << 10
	// remoteWriteVersion is the X-Prometheus-Remote-Write-Version of a
	// remote-write 1.0 body.
	remoteWriteVersion = "0.1.0"
)

// PeerOptions configure the forwarding of writes to peer nodes.
type PeerOptions struct {
	// Client sends the requests. It is shared and built by the caller from
	// prometheus/common/config.HTTPClientConfig (TLS, basic auth); nil: a
	// default client that does not follow redirects.
	Client *http.Client
	// Timeout bounds one forward request, answer included.
	Timeout time.Duration
	// MaxInflightRequests bounds the requests in flight to one peer.
	MaxInflightRequests int
	// MaxInflightBytes bounds the (compressed) bodies in flight to one
	// peer. A body larger than the bound is sent only when nothing else
	// is in flight to that peer, so that it is not refused forever.
	MaxInflightBytes int64
	// Registerer receives the forwarding metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger receives forwarding errors, at most one line per peer per
	// 10 s (default: discard).
	Logger *slog.Logger
}

// DefaultPeerOptions returns the defaults: 5 s per request, 64 requests
// and 64 MiB in flight per peer.
func DefaultPeerOptions() PeerOptions {
	return PeerOptions{
		Timeout:             5 * time.Second,
		MaxInflightRequests: 64,
		MaxInflightBytes:    64 << 20,
	}
}

// Validate checks the options.
func (o *PeerOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("ring: forward timeout %s must be positive", o.Timeout)
	}
	if o.MaxInflightRequests < 1 {
		return fmt.Errorf("ring: max in-flight requests per peer %d must be at least 1", o.MaxInflightRequests)
	}
	if o.MaxInflightBytes < 1 {
		return fmt.Errorf("ring: max in-flight bytes per peer %d must be at least 1", o.MaxInflightBytes)
	}
	return nil
}

// PeerRefusal is a peer's 4xx answer other than 429: the peer processed
// the request and refused some of its samples (invalid series, too old,
// a limit). The peer was reached: it counts for the quorum, and the
// caller answers the sender as it would a local refusal.
type PeerRefusal struct {
	Peer    string // node name
	Status  int    // HTTP status code
	Message string // the peer's answer, trimmed, at most 1 KiB
}

func (e *PeerRefusal) Error() string {
	return fmt.Sprintf("ring: peer %s refused samples (%d): %s", e.Peer, e.Status, e.Message)
}

// Peers forwards writes to peer nodes, with in-flight bounds per peer.
// It is safe for concurrent use.
type Peers struct {
	client    *http.Client       // immutable
	ownClient bool               // immutable: client was built here, not passed in
	opts      PeerOptions        // immutable
	metrics   *peerMetrics       // immutable
	fanout    *fanoutPeerMetrics // immutable: metrics of Select (select.go)
	logs      *logthrottle.Throttle

	mu    sync.RWMutex
	peers map[string]*peer // guarded by mu; a peer here has its metric series registered
}

// peer is the in-flight state of one peer node, by name.
type peer struct {
	name   string      // immutable
	series *peerSeries // immutable: the peer's metric series

	mu       sync.Mutex
	requests int   // guarded by mu
	bytes    int64 // guarded by mu
}

// NewPeers validates opts (defaults filled in for zero fields) and
// returns the forwarder. It starts no goroutine.
func NewPeers(opts PeerOptions) (*Peers, error) {
	def := DefaultPeerOptions()
	if opts.Timeout == 0 {
		opts.Timeout = def.Timeout
	}
	if opts.MaxInflightRequests == 0 {
		opts.MaxInflightRequests = def.MaxInflightRequests
	}
	if opts.MaxInflightBytes == 0 {
		opts.MaxInflightBytes = def.MaxInflightBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	client := opts.Client
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 0 // no total bound: peers × MaxIdleConnsPerHost bounds it
		t.MaxIdleConnsPerHost = opts.MaxInflightRequests
		client = &http.Client{
			Transport:     t,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Peers{
		client:    client,
		ownClient: opts.Client == nil,
		opts:      opts,
		metrics:   newPeerMetrics(opts.Registerer),
		fanout:    newFanoutPeerMetrics(opts.Registerer),
		logs:      logthrottle.New(10*time.Second, 1024),
		peers:     map[string]*peer{},
	}, nil
}

// Close closes the idle connections of the client NewPeers built; a
// client passed in the options belongs to the caller. Forward still works
// after Close (it dials again).
func (p *Peers) Close() {
	if p.ownClient {
		p.client.CloseIdleConnections()
	}
}

// Forward POSTs body (snappy remote write 1.0) holding samples samples to
// to.URL+PushPath and waits for the answer, for at most the Timeout.
//
// It never queues: when the peer is at its bound of in-flight requests
// or bytes it returns an error wrapping ErrPeerOverloaded at once, so a
// slow peer can neither grow this node's memory nor stall anyone. A 429
// or 503 answer also wraps ErrPeerOverloaded; a 400 returns a
// *PeerRefusal (the peer stored the valid samples and refused the
// others); any other answer (401, 403, 413, a 5xx), a timeout or a
// connection error returns an error naming the peer: the peer stored
// nothing, so a wrong credential cannot count as a replica. At most 64 KiB of
// the answer is read.
//
// body is not retained after Forward returns: the request reads it
// through a guard that Forward closes before it returns, so a transport
// still holding the request (its write of the body may outlive the
// answer) reads an error, not the caller's buffer.
func (p *Peers) Forward(ctx context.Context, to *Node, body []byte, samples int) error {
	if to == nil || to.Name == "" {
		return errors.New("ring: forward: no peer named")
	}
	pr := p.peer(to.Name)
	n := int64(len(body))
	if reqs, bytes, ok := pr.acquire(n, p.opts.MaxInflightRequests, p.opts.MaxInflightBytes); !ok {
		pr.series.overloaded.Inc()
		err := fmt.Errorf("%w: peer %s has %d requests and %d bytes in flight (bounds %d, %d)",
			ErrPeerOverloaded, to.Name, reqs, bytes, p.opts.MaxInflightRequests, p.opts.MaxInflightBytes)
		p.logError(to.Name, err)
		return err
	}
	defer pr.release(n)

	start := time.Now()
	status, msg, err := p.send(ctx, to, body)
	pr.series.duration.Observe(time.Since(start).Seconds())
	switch {
	case err != nil:
		err = fmt.Errorf("ring: forward to peer %s (%s): %w", to.Name, redactURL(to.URL), err)
	case status/100 == 2:
		pr.series.success.Inc()
		pr.series.samples.Add(float64(max(samples, 0)))
		return nil
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		pr.series.overloaded.Inc()
		err = fmt.Errorf("%w: peer %s answered %d: %s", ErrPeerOverloaded, to.Name, status, msg)
		p.logError(to.Name, err)
		return err
	case status == http.StatusBadRequest:
		// The peer stored the valid samples and refused the others
		// (validation, out of order): reached, not failed. Any other 4xx
		// (401, 403, 404, 408, 413, 415) means it stored nothing.
		pr.series.refused.Inc()
		pr.series.samples.Add(float64(max(samples, 0)))
		ref := &PeerRefusal{Peer: to.Name, Status: status, Message: msg}
		p.logError(to.Name, ref)
		return ref
	default:
		err = fmt.Errorf("ring: forward to peer %s (%s): answer %d: %s", to.Name, redactURL(to.URL), status, msg)
	}
	pr.series.failed.Inc()
	p.logError(to.Name, err)
	return err
}

// send makes the request and returns the answer's status and message.
func (p *Peers) send(ctx context.Context, to *Node, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	lent := &lentBody{b: body}
	defer lent.end()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(to.URL, "/")+PushPath, http.NoBody)
	if err != nil {
		return 0, "", stripURLError(err)
	}
	if len(body) > 0 {
		req.Body = &lentReader{lent: lent}
		req.GetBody = func() (io.ReadCloser, error) { return &lentReader{lent: lent}, nil }
		req.ContentLength = int64(len(body))
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", remoteWriteVersion)
	req.Header.Set("User-Agent", "etcdgate-ring")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", stripURLError(err)
	}
	defer resp.Body.Close()
	// Read the answer, bounded, so that a small one leaves the connection
	// reusable; a larger one is cut and its connection closed.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	return resp.StatusCode, message(b), nil
}

// message is a peer's answer as kept in errors: trimmed, valid UTF-8, at
// most maxMessageBytes.
func message(b []byte) string {
	cut := len(b) > maxMessageBytes
	if cut {
		b = b[:maxMessageBytes]
	}
	s := strings.ToValidUTF8(strings.TrimSpace(string(b)), "\uFFFD")
	if cut {
		s += " …(cut)"
	}
	return s
}

// stripURLError drops the *url.Error wrapper: Forward names the peer and
// its redacted URL itself.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL returns u with any password replaced, for errors and logs.
func redactURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return pu.Redacted()
}

// Retain drops the state and the metric series of the peers not in
// nodes. It is called on every ring change. A Forward to a dropped peer
// that is still in flight ends normally; its metrics are not brought
// back.
func (p *Peers) Retain(nodes []Node) {
	keep := make(map[string]struct{}, len(nodes))
	for i := range nodes {
		keep[nodes[i].Name] = struct{}{}
	}
	p.fanout.retain(keep)
	p.mu.Lock()
	defer p.mu.Unlock()
	for name := range p.peers {
		if _, ok := keep[name]; !ok {
			delete(p.peers, name)
			p.metrics.delete(name)
		}
	}
}

// peer returns the state of the peer named name, created on first use.
func (p *Peers) peer(name string) *peer {
	p.mu.RLock()
	pr, ok := p.peers[name]
	p.mu.RUnlock()
	if ok {
		return pr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.peers[name]; ok {
		return pr
	}
	pr = &peer{name: name, series: p.metrics.forPeer(name)}
	p.peers[name] = pr
	return pr
}

// acquire reserves one request of n bytes within the bounds; when it
// cannot, it returns false and what is in flight.
func (pr *peer) acquire(n int64, maxRequests int, maxBytes int64) (int, int64, bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.requests >= maxRequests || (pr.bytes > 0 && pr.bytes+n > maxBytes) {
		return pr.requests, pr.bytes, false
	}
	pr.requests++
	pr.bytes += n
	pr.series.inflightRequests.Set(float64(pr.requests))
	pr.series.inflightBytes.Set(float64(pr.bytes))
	return pr.requests, pr.bytes, true
}

func (pr *peer) release(n int64) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.requests--
	pr.bytes -= n
	pr.series.inflightRequests.Set(float64(pr.requests))
	pr.series.inflightBytes.Set(float64(pr.bytes))
}

// logError logs err for peer at most once per 10 s per peer. Errors name
// the peer by its node name and redacted URL, never a credential.
func (p *Peers) logError(peer string, err error) {
	if ok, held := p.logs.Allow(peer, time.Now()); ok {
		p.opts.Logger.Warn("ring forward failed", "peer", peer, "err", err, "suppressed", held)
	}
}

// errBodyReturned is what a transport reads from a forward body after
// Forward returned.
var errBodyReturned = errors.New("ring: forward body read after Forward returned")

// lentBody lends Forward's body to the HTTP transport until end is
// called. The transport may read the request body after Client.Do
// returned (its write loop can outlive an early answer, see
// http.RoundTripper), so Forward's promise not to retain the body needs
// this guard rather than a bytes.Reader.
type lentBody struct {
	mu sync.Mutex
	b  []byte // guarded by mu; nil after end
}

func (l *lentBody) end() {
	l.mu.Lock()
	l.b = nil
	l.mu.Unlock()
}

// lentReader is one reading of a lentBody (the transport may start again
// through GetBody).
type lentReader struct {
	lent *lentBody
	off  int
}

func (r *lentReader) Read(p []byte) (int, error) {
	r.lent.mu.Lock()
	defer r.lent.mu.Unlock()
	if r.lent.b == nil {
		return 0, errBodyReturned
	}
	if r.off >= len(r.lent.b) {
		return 0, io.EOF
	}
	n := copy(p, r.lent.b[r.off:])
	r.off += n
	return n, nil
}

func (r *lentReader) Close() error { return nil }

// peerMetrics are the forwarding metrics, with a series per peer.
type peerMetrics struct {
	requests         *prometheus.CounterVec
	samples          *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	inflightRequests *prometheus.GaugeVec
	inflightBytes    *prometheus.GaugeVec
}

// peerSeries are one peer's metric series, looked up once.
type peerSeries struct {
	success, refused, overloaded, failed prometheus.Counter
	samples                              prometheus.Counter
	duration                             prometheus.Observer
	inflightRequests, inflightBytes      prometheus.Gauge
}

func newPeerMetrics(reg prometheus.Registerer) *peerMetrics {
	m := &peerMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_forward_requests_total",
			Help: "Writes forwarded to peers, by result: success, refused (a 400: the valid samples stored, others refused), overloaded (in-flight bound, 429 or 503), error.",
		}, []string{"peer", "result"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_forwarded_samples_total",
			Help: "Samples of the forwarded writes the peer processed (success or refused).",
		}, []string{"peer"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcdgate_ring_forward_duration_seconds",
			Help:    "Time of a forward request to a peer, answer included.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 10, 14),
		}, []string{"peer"}),
		inflightRequests: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "etcdgate_ring_forward_inflight_requests",
			Help: "Forward requests in flight to a peer.",
		}, []string{"peer"}),
		inflightBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "etcdgate_ring_forward_inflight_bytes",
			Help: "Bytes of forward bodies in flight to a peer.",
		}, []string{"peer"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.samples, m.duration, m.inflightRequests, m.inflightBytes)
	}
	return m
}

func (m *peerMetrics) forPeer(name string) *peerSeries {
	return &peerSeries{
		success:          m.requests.WithLabelValues(name, "success"),
		refused:          m.requests.WithLabelValues(name, "refused"),
		overloaded:       m.requests.WithLabelValues(name, "overloaded"),
		failed:           m.requests.WithLabelValues(name, "error"),
		samples:          m.samples.WithLabelValues(name),
		duration:         m.duration.WithLabelValues(name),
		inflightRequests: m.inflightRequests.WithLabelValues(name),
		inflightBytes:    m.inflightBytes.WithLabelValues(name),
	}
}

func (m *peerMetrics) delete(name string) {
	l := prometheus.Labels{"peer": name}
	m.requests.DeletePartialMatch(l)
	m.samples.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.inflightRequests.DeletePartialMatch(l)
	m.inflightBytes.DeletePartialMatch(l)
}
