package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/probe"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// ringNode is this node's part in a ring (ring.enabled): its membership,
// its clients to the peers, HA dedup, and the current ring snapshot the
// write path places series on. newRingNode builds it without touching
// the network; start joins the ring as JOINING, activate makes the node
// an owner once its store has recovered, leave leaves gracefully.
type ringNode struct {
	cfg     RingConfig
	dataDir string
	reg     prometheus.Registerer
	logger  *slog.Logger
	self    string

	view    atomic.Pointer[ring.Snapshot]
	client  *clientv3.Client
	members *ring.Membership
	peers   *ring.Peers
	ha      *ring.HATracker // nil without ha_dedup
	// reads is the fan-out Queryable, set once the store has recovered
	// (ring_reads.go).
	reads atomic.Pointer[ring.Queryable]
	// local is the local store and aggEngine the engine of the
	// aggregations pushed down to this node (ring_pushdown.go), set with
	// reads; aggEngine is replaced when query settings reload.
	local     tsdb.Queryable
	aggEngine atomic.Pointer[evaluator.Engine]
	// maxGroups bounds the groups of a node's partial aggregate: a group
	// is at most a series, and a node answers for at most
	// query.max_series of them.
	maxGroups atomic.Int64
	// ownedTargets is etcdgate_ring_owned_probe_targets.
	ownedTargets prometheus.Gauge

	// statusMu serialises /api/v1/status/ring, which asks every peer
	// (bounded by the peers' timeout); status is its last answer.
	statusMu sync.Mutex
	status   any       // guarded by statusMu
	statusAt time.Time // guarded by statusMu
}

// Key prefixes under ring.etcd.prefix: node records and HA elections
// never share a prefix, so that neither watch reads the other's records.
const (
	ringNodesPrefix = "nodes/"
	ringHAPrefix    = "ha/"
)

// ringJoinTimeout bounds reaching etcd at start: past it the node stops
// with an error naming ring.etcd.endpoints.
const ringJoinTimeout = 10 * time.Second

func newRingNode(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*ringNode, error) {
	self, err := cfg.Ring.nodeName()
	if err != nil {
		return nil, err
	}
	r := &ringNode{cfg: cfg.Ring, dataDir: cfg.DataDir, reg: reg, logger: logger.With("component", "ring"), self: self}
	r.view.Store(ring.NewSnapshot(nil))
	r.ownedTargets = prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcdgate_ring_owned_probe_targets",
		Help: "The number of probe targets (etcd clusters) this node of the ring owns, and so inspects, as of the last scheduling round."})
	reg.MustRegister(r.ownedTargets)
	client, err := config.NewClientFromConfig(cfg.Ring.PeerClient, "ring")
	if err != nil {
		return nil, fmt.Errorf("ring.peer_client: %w", err)
	}
	po := ring.DefaultPeerOptions()
	po.Client, po.Registerer, po.Logger = client, reg, r.logger
	po.Timeout = time.Duration(cfg.Ring.Forward.Timeout)
	po.MaxInflightRequests, po.MaxInflightBytes = cfg.Ring.Forward.MaxInflightRequests, cfg.Ring.Forward.MaxInflightBytes
	if r.peers, err = ring.NewPeers(po); err != nil {
		return nil, fmt.Errorf("ring.forward: %w", err)
	}
	return r, nil
}

// start connects to etcd, joins the ring as JOINING and starts HA dedup.
// A node restarted after kill -9 finds its old record until the old
// lease expires: Join is retried on ErrNameTaken for up to the TTL.
func (r *ringNode) start(ctx context.Context) error {
	ec := r.cfg.Etcd
	tc, err := ec.TLS.tls().Load()
	if err != nil {
		return fmt.Errorf("ring.etcd.tls: %w", err)
	}
	r.client, err = clientv3.New(clientv3.Config{Endpoints: ec.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: tc, Username: ec.Username, Password: string(ec.Password)})
	if err != nil {
		return fmt.Errorf("ring.etcd.endpoints: %w", err)
	}
	reach, cancel := context.WithTimeout(ctx, ringJoinTimeout)
	defer cancel()
	if _, err := r.client.Get(reach, ec.Prefix, clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("ring.etcd.endpoints: cannot reach etcd at %v within %s: %w", ec.Endpoints, ringJoinTimeout, err)
	}
	tokens, err := loadOrCreateTokens(filepath.Join(r.dataDir, ringTokensFile), r.cfg.Tokens)
	if err != nil {
		return err
	}
	opts, err := r.cfg.membershipOptions(tokens)
	if err != nil {
		return err
	}
	opts.Prefix = ec.Prefix + ringNodesPrefix
	opts.Logger, opts.Registerer = r.logger, r.reg
	opts.OnChange = r.onChange
	if r.members, err = ring.NewMembership(r.client, opts); err != nil {
		return err
	}
	if err := r.join(ctx, time.Duration(r.cfg.HeartbeatTTL)); err != nil {
		return err
	}
	if r.cfg.HADedup.Enabled {
		return r.startHA(ctx)
	}
	return nil
}

func (r *ringNode) join(ctx context.Context, ttl time.Duration) error {
	deadline := time.Now().Add(ttl + 2*time.Second)
	waited := false
	for {
		attempt, cancel := context.WithTimeout(ctx, ringJoinTimeout)
		err := r.members.Join(attempt)
		cancel()
		if err == nil {
			return nil
		}
		if !errors.Is(err, ring.ErrNameTaken) || time.Now().After(deadline) {
			return fmt.Errorf("ring: join as %q: %w", r.self, err)
		}
		if !waited {
			r.logger.Info("ring.node_name is still held, probably by this node before a crash; waiting up to the TTL for its lease to expire", "node_name", r.self)
			waited = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (r *ringNode) startHA(ctx context.Context) error {
	hc := r.cfg.HADedup
	t, err := ring.NewHATracker(r.client, ring.HAOptions{
		Prefix: r.cfg.Etcd.Prefix + ringHAPrefix, ReplicaLabel: hc.ReplicaLabel, ClusterLabel: hc.ClusterLabel,
		FailoverTimeout: time.Duration(hc.FailoverTimeout), Logger: r.logger, Registerer: r.reg,
	})
	if err != nil {
		return fmt.Errorf("ring.ha_dedup: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, ringJoinTimeout)
	defer cancel()
	if err := t.Start(startCtx); err != nil {
		return fmt.Errorf("ring.ha_dedup: %w", err)
	}
	r.ha = t
	return nil
}

// onChange installs a new view: a new snapshot for the write path, and
// the peers' state trimmed to the nodes still there.
func (r *ringNode) onChange(nodes []ring.Node) {
	r.view.Store(ring.NewSnapshot(nodes))
	r.peers.Retain(nodes)
}

// activate makes the node an owner of series: called once its store has
// recovered, so that it never owns series it cannot store yet.
func (r *ringNode) activate(ctx context.Context) error {
	for {
		attempt, cancel := context.WithTimeout(ctx, ringJoinTimeout)
		err := r.members.SetState(attempt, ring.StateActive)
		cancel()
		if err == nil {
			r.logger.Info("ring: node is ACTIVE", "node_name", r.self)
			return nil
		}
		r.logger.Warn("ring: cannot become ACTIVE yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// leave marks the node LEAVING and revokes its lease, so that peers stop
// sending it writes at once rather than after the TTL.
func (r *ringNode) leave() {
	if r.members != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.members.Leave(ctx); err != nil && !errors.Is(err, ring.ErrNotJoined) {
			r.logger.Warn("ring: leave", "err", err)
		}
		cancel()
	}
	if r.ha != nil {
		r.ha.Close()
	}
	if r.client != nil {
		r.client.Close()
	}
}

// ingestOptions is the write path's view of the ring.
func (r *ringNode) ingestOptions() *ingest.RingOptions {
	o := &ingest.RingOptions{
		Self: r.self, ReplicationFactor: r.cfg.ReplicationFactor,
		View: r.view.Load, Forwarder: r.peers,
	}
	if r.ha != nil {
		o.HA, o.HAClusterLabel, o.HAReplicaLabel = r.ha, r.cfg.HADedup.ClusterLabel, r.cfg.HADedup.ReplicaLabel
	}
	return o
}

// ringTokensFile keeps the node's tokens in its data dir: a restarted
// node takes back the series it owned.
const ringTokensFile = "ring-tokens.json"

type tokensFile struct {
	Tokens []uint32 `json:"tokens"`
}

// loadOrCreateTokens reads the node's tokens, or generates n and writes
// them. A file with another count is kept: changing ring.tokens would
// move series, which a restart must not do silently.
func loadOrCreateTokens(path string, n int) ([]uint32, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		var f tokensFile
		if err := json.Unmarshal(b, &f); err != nil || len(f.Tokens) == 0 {
			return nil, fmt.Errorf("ring: %s is not a token file (%v); remove it to draw new tokens", path, err)
		}
		return f.Tokens, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ring: %w", err)
	}
	f := tokensFile{Tokens: ring.GenerateTokens(n, nil)}
	b, _ = json.Marshal(f)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return nil, fmt.Errorf("ring: write tokens: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("ring: write tokens: %w", err)
	}
	return f.Tokens, nil
}

// ringStatusNode is one node of /api/v1/status/ring.
type ringStatusNode struct {
	Name       string     `json:"name"`
	URL        string     `json:"advertise_url"`
	Zone       string     `json:"zone,omitempty"`
	State      ring.State `json:"state"`
	Tokens     int        `json:"tokens"`
	TokenShare float64    `json:"token_share"`
	OwnedShare float64    `json:"owned_share"`
	Heartbeat  time.Time  `json:"last_heartbeat"`
	HeadSeries *int64     `json:"head_series"`
	Error      string     `json:"error,omitempty"`
}

// ringStatusMaxAge is how long an answer of /api/v1/status/ring is
// served again: one status request asks every node of the ring, so a
// reader polling it must not multiply the requests peers get.
const ringStatusMaxAge = time.Second

// RingStatus serves /api/v1/status/ring (api.RingStatus): the ring as
// this node sees it, with each node's head series asked of the node. One
// request at a time builds it; the others wait and share the answer,
// which is reused for ringStatusMaxAge.
func (r *ringNode) RingStatus(ctx context.Context) any {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	if time.Since(r.statusAt) < ringStatusMaxAge && r.status != nil {
		return r.status
	}
	r.status, r.statusAt = r.buildStatus(ctx), time.Now()
	return r.status
}

func (r *ringNode) buildStatus(ctx context.Context) any {
	snap := r.view.Load()
	nodes := snap.Nodes()
	tokenShare, owned := snap.Shares(), snap.OwnedShare(r.cfg.ReplicationFactor)
	out := make([]ringStatusNode, len(nodes))
	var wg sync.WaitGroup
	for i := range nodes {
		n := &nodes[i]
		out[i] = ringStatusNode{Name: n.Name, URL: n.URL, Zone: n.Zone, State: n.State, Tokens: len(n.Tokens),
			TokenShare: tokenShare[n.Name], OwnedShare: owned[n.Name], Heartbeat: n.Heartbeat}
		wg.Go(func() {
			st, err := r.peers.Stats(ctx, n)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].HeadSeries = &st.HeadSeries
		})
	}
	wg.Wait()
	return map[string]any{"self": r.self, "replication_factor": r.cfg.ReplicationFactor, "nodes": out}
}

// owns reports whether this node owns the work of key (ring.RuleGroupKey,
// ring.ProbeTargetKey) on the current snapshot: one ACTIVE node owns each
// key, and a node that is not ACTIVE owns nothing.
func (r *ringNode) owns(key string) bool { return r.view.Load().Owns(r.self, key) }

// ownsRuleGroup is rules.Options.Owns.
func (r *ringNode) ownsRuleGroup(file, group string) bool {
	return r.owns(ring.RuleGroupKey(file, group))
}

// ownedProbeTargets keeps the targets this node owns and sets the
// owned-targets gauge. The scheduler asks for its targets every tick, so
// a target moves within a tick of the membership change that moves it.
func (r *ringNode) ownedProbeTargets(targets []probe.Target) []probe.Target {
	snap := r.view.Load()
	out := make([]probe.Target, 0, len(targets))
	for _, t := range targets {
		if snap.Owns(r.self, ring.ProbeTargetKey(t.Cluster)) {
			out = append(out, t)
		}
	}
	r.ownedTargets.Set(float64(len(out)))
	return out
}

// Self implements api.RingParts.
func (r *ringNode) Self() string { return r.self }

// Parts implements api.RingParts: pathQuery of every ACTIVE node but this
// one, asked concurrently with the peers' client, bounded by ctx.
func (r *ringNode) Parts(ctx context.Context, pathQuery string) []api.RingPart {
	snap := r.view.Load()
	nodes := snap.Nodes()
	var out []api.RingPart
	for i := range nodes {
		if nodes[i].State == ring.StateActive && nodes[i].Name != r.self {
			out = append(out, api.RingPart{Node: nodes[i].Name})
		}
	}
	var wg sync.WaitGroup
	for i := range out {
		n, _ := snap.Lookup(out[i].Node)
		wg.Go(func() { out[i].Data, out[i].Err = r.peers.Part(ctx, n, pathQuery) })
	}
	wg.Wait()
	return out
}
