package ring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/internal/logthrottle"
)

// MembershipOptions configure one node's membership in the ring.
type MembershipOptions struct {
	// Node is this node's identity: Name, URL, Zone and Tokens are
	// written into its record; State and Heartbeat are set by Membership.
	Node Node
	// Prefix is the etcd key prefix of the ring; it must end in '/'.
	Prefix string
	// TTL is the lease of the node's record: a node whose keepalives stop
	// drops out of every view within it.
	TTL time.Duration
	// MaxRecords bounds how many records a view holds; more are skipped
	// and counted.
	MaxRecords int
	// MaxRecordBytes bounds one record; a larger one is skipped and counted.
	MaxRecordBytes int
	// Logger receives membership events (default: discard).
	Logger *slog.Logger
	// Registerer receives the membership metrics (nil: not registered).
	Registerer prometheus.Registerer
	// OnChange, when set, is called from the watch goroutine with every
	// new view. The slice and its nodes are immutable and shared: the
	// callback must not modify them. It must return quickly: the next
	// view waits for it.
	OnChange func(nodes []Node)
}

// DefaultMembershipOptions returns the defaults: prefix /etcdgate/ring/,
// TTL 10s, at most 10,000 records of at most 64 KiB each.
func DefaultMembershipOptions() MembershipOptions {
	return MembershipOptions{
		Prefix:         "/etcdgate/ring/",
		TTL:            10 * time.Second,
		MaxRecords:     10000,
		MaxRecordBytes: 64 << 10,
	}
}

// Validate checks the options; an error names the config key at fault.
func (o *MembershipOptions) Validate() error {
	if err := validateName(o.Node.Name); err != nil {
		return fmt.Errorf("ring.node_name: %w", err)
	}
	if err := validateURL(o.Node.URL); err != nil {
		return fmt.Errorf("ring.advertise_url: %w", err)
	}
	if err := validateTokens(o.Node.Tokens); err != nil {
		return fmt.Errorf("ring.tokens: %w", err)
	}
	if o.TTL < 2*time.Second {
		return fmt.Errorf("ring.heartbeat_ttl: %s is below the minimum of 2s", o.TTL)
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		return fmt.Errorf("ring.etcd.prefix: %q must end in '/'", o.Prefix)
	}
	if o.MaxRecords < 1 || o.MaxRecordBytes < 1 {
		return errors.New("ring: MaxRecords and MaxRecordBytes must be positive")
	}
	return nil
}

func validateName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("%q contains '/'", name)
	}
	return nil
}

func validateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", s)
	}
	return nil
}

func validateTokens(tokens []uint32) error {
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			return errors.New("not sorted ascending without duplicates")
		}
	}
	return nil
}

// Membership registers one node in etcd under a lease and watches the
// prefix for every node's record. Liveness is the lease alone: the
// record is written on Join, on state changes and after a lease is
// re-granted, never periodically (see membership_doc.go).
//
// Lifecycle: NewMembership starts nothing; Join registers and starts two
// goroutines (keepalive and watch); Leave or Close stops both and waits
// for them. The etcd client belongs to the caller and must outlive them.
type Membership struct {
	client  *clientv3.Client // immutable
	opts    MembershipOptions
	key     string // immutable: Prefix + Node.Name
	metrics *membershipMetrics
	logs    *logthrottle.Throttle

	view atomic.Pointer[[]Node] // the last published view, immutable

	// writeMu serialises writes of this node's record (Join, SetState,
	// Leave, lease re-grant): they are rare and each bounded by its ctx.
	// Nothing on a read or ingest path takes it.
	writeMu sync.Mutex

	mu     sync.Mutex
	state  State            // guarded by mu
	lease  clientv3.LeaseID // guarded by mu; 0 before Join
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// NewMembership validates opts (defaults filled in for zero fields) and
// returns an unjoined membership.
func NewMembership(client *clientv3.Client, opts MembershipOptions) (*Membership, error) {
	def := DefaultMembershipOptions()
	if opts.Prefix == "" {
		opts.Prefix = def.Prefix
	}
	if opts.TTL == 0 {
		opts.TTL = def.TTL
	}
	if opts.MaxRecords == 0 {
		opts.MaxRecords = def.MaxRecords
	}
	if opts.MaxRecordBytes == 0 {
		opts.MaxRecordBytes = def.MaxRecordBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := &Membership{
		client:  client,
		opts:    opts,
		key:     opts.Prefix + opts.Node.Name,
		metrics: newMembershipMetrics(opts.Registerer),
		logs:    logthrottle.New(10*time.Second, 64),
	}
	m.view.Store(&[]Node{})
	return m, nil
}

// Nodes returns the last view of the ring, sorted by name. It is
// immutable and shared: do not modify it. While etcd is unreachable it
// stays the last view etcd gave.
func (m *Membership) Nodes() []Node { return *m.view.Load() }

// State returns this node's own state (0 before Join).
func (m *Membership) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

func (m *Membership) ttlSeconds() int64 { return int64(math.Ceil(m.opts.TTL.Seconds())) }

// record encodes this node's record in state s.
func (m *Membership) record(s State) (string, error) {
	n := m.opts.Node
	n.State, n.Heartbeat = s, time.Now().UTC()
	b, err := json.Marshal(n)
	return string(b), err
}

// Join grants a lease, writes this node's record as JOINING under it
// (refused with ErrNameTaken when a live node already holds the name),
// and starts keeping the lease alive and watching the ring. The caller
// moves the node to ACTIVE with SetState when it is ready for writes.
// A node restarted after a crash finds its old record until the old
// lease expires: the caller retries Join on ErrNameTaken for up to TTL.
func (m *Membership) Join(ctx context.Context) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	joined := m.lease != 0
	m.mu.Unlock()
	if joined {
		return ErrJoined
	}
	lease, err := m.register(ctx, StateJoining, 0)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	m.mu.Lock()
	m.state, m.lease, m.cancel = StateJoining, lease, cancel
	m.done.Add(2) // under mu: stop sees cancel only with the goroutines counted
	m.mu.Unlock()
	go m.keepAlive(runCtx, lease)
	go m.watch(runCtx)
	m.opts.Logger.Info("joined the ring", "node_name", m.opts.Node.Name, "lease", int64(lease))
	return nil
}

// register grants a lease and writes the record in state s under it. The
// write succeeds when no record exists, or when the existing one is held
// by old (this node's previous lease, after a re-grant).
func (m *Membership) register(ctx context.Context, s State, old clientv3.LeaseID) (clientv3.LeaseID, error) {
	val, err := m.record(s)
	if err != nil {
		return 0, err
	}
	g, err := m.client.Grant(ctx, m.ttlSeconds())
	if err != nil {
		m.metrics.errors.WithLabelValues("grant").Inc()
		return 0, fmt.Errorf("ring: grant lease: %w", err)
	}
	lease := g.ID
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(m.key), "=", 0)}
	if old != 0 {
		conds = []clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(m.key), "=", old)}
	}
	put := clientv3.OpPut(m.key, val, clientv3.WithLease(lease))
	resp, err := m.client.Txn(ctx).If(conds...).Then(put).Commit()
	if err == nil && !resp.Succeeded && old != 0 {
		// The old lease's record is gone already: write a new one.
		resp, err = m.client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(m.key), "=", 0)).Then(put).Commit()
	}
	if err != nil || !resp.Succeeded {
		m.revoke(lease)
		if err != nil {
			m.metrics.errors.WithLabelValues("register").Inc()
			return 0, fmt.Errorf("ring: register %s: %w", m.key, err)
		}
		return 0, fmt.Errorf("%w: %q (key %s)", ErrNameTaken, m.opts.Node.Name, m.key)
	}
	return lease, nil
}

// revoke revokes lease, bounded by a TTL of its own.
func (m *Membership) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.TTL)
	defer cancel()
	if _, err := m.client.Revoke(ctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		m.metrics.errors.WithLabelValues("revoke").Inc()
	}
}

// SetState rewrites this node's record in state s, under its lease.
func (m *Membership) SetState(ctx context.Context, s State) error {
	if _, ok := stateNames[s]; !ok {
		return fmt.Errorf("ring: unknown state %d", uint8(s))
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	lease := m.lease
	m.mu.Unlock()
	if lease == 0 {
		return ErrNotJoined
	}
	val, err := m.record(s)
	if err != nil {
		return err
	}
	resp, err := m.client.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(m.key), "=", lease)).
		Then(clientv3.OpPut(m.key, val, clientv3.WithLease(lease))).Commit()
	if err != nil {
		m.metrics.errors.WithLabelValues("set_state").Inc()
		return fmt.Errorf("ring: set state %s: %w", s, err)
	}
	m.mu.Lock()
	m.state = s
	m.mu.Unlock()
	if !resp.Succeeded {
		// The lease was lost; the re-grant writes the new state.
		m.metrics.errors.WithLabelValues("set_state").Inc()
		return fmt.Errorf("ring: set state %s: lease %d lost, the record is rewritten on re-grant", s, lease)
	}
	return nil
}

// Leave writes LEAVING, stops the keepalive and the watch, and revokes
// the lease: the record disappears from every view at once.
func (m *Membership) Leave(ctx context.Context) error {
	err := m.SetState(ctx, StateLeaving)
	m.stop()
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	lease := m.lease
	m.lease = 0
	m.mu.Unlock()
	if lease == 0 {
		return ErrNotJoined
	}
	if _, rerr := m.client.Revoke(ctx, lease); rerr != nil {
		m.metrics.errors.WithLabelValues("revoke").Inc()
		return errors.Join(err, fmt.Errorf("ring: revoke lease: %w", rerr))
	}
	return err
}

// Close stops the keepalive and the watch without leaving: the record
// stays until its lease expires, as after a crash.
func (m *Membership) Close() { m.stop() }

func (m *Membership) stop() {
	m.mu.Lock()
	cancel := m.cancel
	m.cancel = nil
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		m.done.Wait()
	}
}

// keepAlive keeps the lease alive until ctx ends. When the keepalive
// channel closes (the lease expired, etcd out of reach past the TTL) it
// grants a new lease and rewrites the record in the current state,
// retrying with back-off until etcd answers.
func (m *Membership) keepAlive(ctx context.Context, lease clientv3.LeaseID) {
	defer m.done.Done()
	for {
		ch, err := m.client.KeepAlive(ctx, lease)
		if err == nil {
			for range ch { // drain the answers until the channel closes
			}
		}
		if ctx.Err() != nil {
			return
		}
		m.metrics.errors.WithLabelValues("keepalive").Inc()
		m.logError("keepalive", fmt.Errorf("lease %d lost", lease))
		lease = m.regrant(ctx, lease)
		if lease == 0 {
			return
		}
	}
}

// regrant registers again under a new lease, retrying until it works or
// ctx ends (then it returns 0).
func (m *Membership) regrant(ctx context.Context, old clientv3.LeaseID) clientv3.LeaseID {
	backoff := 100 * time.Millisecond
	for {
		m.writeMu.Lock()
		m.mu.Lock()
		s := m.state
		m.mu.Unlock()
		attempt, cancel := context.WithTimeout(ctx, m.opts.TTL)
		lease, err := m.register(attempt, s, old)
		cancel()
		if err == nil {
			m.mu.Lock()
			m.lease = lease
			m.mu.Unlock()
		}
		m.writeMu.Unlock()
		if err == nil {
			// The old lease may still live (the keepalive stream broke,
			// not the lease): end it rather than wait for its expiry.
			m.revoke(old)
			m.metrics.regrants.Inc()
			m.opts.Logger.Info("ring lease re-granted", "node_name", m.opts.Node.Name, "lease", int64(lease))
			return lease
		}
		m.logError("regrant", err)
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, m.opts.TTL/2)
	}
}

// logError logs err for op at most once per 10 s per op.
func (m *Membership) logError(op string, err error) {
	if ok, held := m.logs.Allow(op, time.Now()); ok {
		m.opts.Logger.Warn("ring membership error", "op", op, "err", err, "suppressed", held)
	}
}

// sortedNodes returns the nodes of recs sorted by name.
func sortedNodes(recs map[string]Node) []Node {
	nodes := make([]Node, 0, len(recs))
	for _, n := range recs {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes
}
