package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/internal/logthrottle"
)

// HAMaxValueBytes bounds a cluster or a replica label value seen by the
// tracker: a longer one is refused with ErrHAValue before anything is
// stored or written (a cluster value is part of an etcd key).
const HAMaxValueBytes = 256

// HAOptions configure the HA-pair dedup tracker (ring.ha_dedup).
type HAOptions struct {
	// Prefix is the etcd prefix of the election records, e.g.
	// "/etcdgate/ring/ha/"; it must end in '/'. A cluster's record is
	// Prefix + the cluster label value.
	Prefix string
	// ReplicaLabel names the replica label (default "__replica__"); the
	// caller drops it from the series it accepts.
	ReplicaLabel string
	// ClusterLabel names the label that groups a pair (default "cluster").
	ClusterLabel string
	// FailoverTimeout: when the elected replica of a cluster has not been
	// seen for this long, the next replica seen is elected (default 30s,
	// between 1s and 1h).
	FailoverTimeout time.Duration
	// MaxClusters bounds the clusters the tracker follows (default
	// 100,000). A new cluster past it is refused (ErrHATooManyClusters,
	// counted in etcdgate_ring_ha_limited_total{reason="too_many_clusters"});
	// records in etcd past it are skipped.
	MaxClusters int
	// MaxCreatesPerSecond bounds the new clusters this node writes to
	// etcd per second (default 1,000): a sender inventing cluster values
	// cannot turn its requests into etcd writes. A new cluster past it is
	// elected locally and written to etcd by a later sample.
	MaxCreatesPerSecond int
	// TxnTimeout bounds one etcd call made by Accept (default 1s); the
	// ctx given to Accept may bound it further.
	TxnTimeout time.Duration
	// Logger receives tracker events (default: discard).
	Logger *slog.Logger
	// Registerer receives the etcdgate_ring_ha_* metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock of last_seen and failover (default time.Now).
	Now func() time.Time
}

// DefaultHAOptions returns the defaults of ring.ha_dedup.
func DefaultHAOptions() HAOptions {
	return HAOptions{
		Prefix:              "/etcdgate/ring/ha/",
		ReplicaLabel:        "__replica__",
		ClusterLabel:        "cluster",
		FailoverTimeout:     30 * time.Second,
		MaxClusters:         100000,
		MaxCreatesPerSecond: 1000,
		TxnTimeout:          time.Second,
	}
}

// Validate checks the options; an error names the config key at fault.
func (o *HAOptions) Validate() error {
	if !strings.HasSuffix(o.Prefix, "/") {
		return fmt.Errorf("ring.etcd.prefix: ha_dedup prefix %q must end in '/'", o.Prefix)
	}
	if !isLabelName(o.ReplicaLabel) {
		return fmt.Errorf("ring.ha_dedup.replica_label: %q is not a label name", o.ReplicaLabel)
	}
	if !isLabelName(o.ClusterLabel) {
		return fmt.Errorf("ring.ha_dedup.cluster_label: %q is not a label name", o.ClusterLabel)
	}
	if o.ReplicaLabel == o.ClusterLabel {
		return fmt.Errorf("ring.ha_dedup.replica_label: %q is also the cluster label", o.ReplicaLabel)
	}
	if o.FailoverTimeout < time.Second || o.FailoverTimeout > time.Hour {
		return fmt.Errorf("ring.ha_dedup.failover_timeout: %s is outside [1s, 1h]", o.FailoverTimeout)
	}
	if o.MaxClusters < 1 || o.MaxCreatesPerSecond < 1 || o.TxnTimeout <= 0 {
		return fmt.Errorf("ring.ha_dedup: MaxClusters, MaxCreatesPerSecond and TxnTimeout must be positive")
	}
	return nil
}

// isLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func isLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range []byte(s) {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// HATracker elects one replica per cluster of HA scraper pairs and says
// which samples to store. The elections live in etcd, so every node
// agrees; see ha_doc.go for the protocol.
//
// Lifecycle: NewHATracker starts nothing; Start lists the records and
// starts three goroutines (lease keepalive, watch, sweep); Close stops
// them and waits. The etcd client belongs to the caller and must outlive
// them. Accept may be called before Start and after Close: it then
// decides locally.
type HATracker struct {
	client     *clientv3.Client // immutable
	opts       HAOptions        // immutable after NewHATracker
	refreshMs  int64            // immutable: last_seen is rewritten at most this often (FailoverTimeout/3)
	failoverMs int64            // immutable: a replica unseen this long is replaced (FailoverTimeout + refreshMs)
	leaseTTL   int64            // immutable: seconds, max(3 × FailoverTimeout, 10 s)
	metrics    *haMetrics
	logs       *logthrottle.Throttle
	creates    tokenBucket

	lease       atomic.Int64  // the tracker's lease; 0 before Start and while lost
	etcdRetryAt atomic.Int64  // unix ms: before it Accept makes no etcd call (after an error)
	etcdBackoff atomic.Int64  // ms: the current back-off after errors; 0 after a success
	leaseLost   chan struct{} // immutable; a write that found the lease gone wakes keepAlive

	// entries maps a cluster to its *haEntry. A sync.Map because the fast
	// path reads it on every series: its loads take no lock and write no
	// shared memory (BenchmarkHAAcceptFastPath, one cluster, 2 cores:
	// 10 ns/op in parallel against 43 ns/op with a read-locked map, whose
	// reader count every core writes). Entries change their state
	// atomically.
	entries sync.Map
	// mu serialises adding and removing entries and guards count.
	mu    sync.Mutex
	count int // guarded by mu: len(entries)

	runMu   sync.Mutex
	started bool               // guarded by runMu
	cancel  context.CancelFunc // guarded by runMu
	done    sync.WaitGroup
}

// haEntry is one tracked cluster.
type haEntry struct {
	// state is the last known election: from etcd, or decided locally
	// (dirty). nil while unknown. A stored state is immutable.
	state atomic.Pointer[haState]
	// sem has one slot, held by the goroutine that writes this cluster's
	// record or decides it locally, so that one txn per cluster and node
	// is in flight.
	sem chan struct{}
}

// haState is one election, immutable once stored.
type haState struct {
	replica   string // "" for a malformed record (overwritten by the next replica seen)
	electedAt int64  // unix ms
	lastSeen  int64  // unix ms: when a node last saw the replica, as written in etcd
	modRev    int64  // mod revision of the record in etcd; 0: not in etcd
	dirty     bool   // decided or refreshed locally, not yet written to etcd
}

// NewHATracker validates opts (defaults filled in for zero fields) and
// returns a tracker that is not started.
func NewHATracker(client *clientv3.Client, opts HAOptions) (*HATracker, error) {
	def := DefaultHAOptions()
	if opts.Prefix == "" {
		opts.Prefix = def.Prefix
	}
	if opts.ReplicaLabel == "" {
		opts.ReplicaLabel = def.ReplicaLabel
	}
	if opts.ClusterLabel == "" {
		opts.ClusterLabel = def.ClusterLabel
	}
	if opts.FailoverTimeout == 0 {
		opts.FailoverTimeout = def.FailoverTimeout
	}
	if opts.MaxClusters == 0 {
		opts.MaxClusters = def.MaxClusters
	}
	if opts.MaxCreatesPerSecond == 0 {
		opts.MaxCreatesPerSecond = def.MaxCreatesPerSecond
	}
	if opts.TxnTimeout == 0 {
		opts.TxnTimeout = def.TxnTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	refresh := opts.FailoverTimeout / 3
	t := &HATracker{
		client:     client,
		opts:       opts,
		refreshMs:  refresh.Milliseconds(),
		failoverMs: (opts.FailoverTimeout + refresh).Milliseconds(),
		leaseTTL:   int64(math.Ceil(max(3*opts.FailoverTimeout, 10*time.Second).Seconds())),
		metrics:    newHAMetrics(opts.Registerer),
		logs:       logthrottle.New(10*time.Second, 64),
		creates:    tokenBucket{rate: float64(opts.MaxCreatesPerSecond), burst: float64(opts.MaxCreatesPerSecond)},
		leaseLost:  make(chan struct{}, 1),
	}
	return t, nil
}

// Accept says whether samples of cluster sent by replica are to be
// stored; ts is the newest sample timestamp of the series (unix ms; ≤ 0
// when unknown), used only to keep a replica's backlog from winning a
// failover. A series without a cluster or replica value is accepted.
//
// The fast path (the elected replica with a fresh record, or another
// replica while it is fresh) is a lock-free map lookup: no allocation,
// no etcd call. A new cluster, a due refresh of last_seen or a failover
// makes one bounded etcd txn (TxnTimeout, ctx). etcd errors are never
// returned: while etcd is out of reach the tracker decides from what it
// knows and writes later. The errors are the sender's fault: ErrHAValue,
// ErrHATooManyClusters. Accept keeps no reference to cluster or replica.
func (t *HATracker) Accept(ctx context.Context, cluster, replica string, ts int64) (bool, error) {
	if cluster == "" || replica == "" {
		return true, nil
	}
	if len(cluster) > HAMaxValueBytes || len(replica) > HAMaxValueBytes {
		t.metrics.limitedValue.Inc()
		return false, fmt.Errorf("%w: %s or %s longer than %d bytes", ErrHAValue,
			t.opts.ClusterLabel, t.opts.ReplicaLabel, HAMaxValueBytes)
	}
	now := t.opts.Now().UnixMilli()
	e := t.entry(cluster)
	if e != nil {
		if st := e.state.Load(); st != nil {
			switch t.decide(st, replica, now, ts) {
			case haAccept:
				return true, nil
			case haRefuse:
				return false, nil
			}
		}
	}
	if !utf8.ValidString(cluster) || !utf8.ValidString(replica) {
		t.metrics.limitedValue.Inc()
		return false, fmt.Errorf("%w: %s or %s is not valid UTF-8", ErrHAValue, t.opts.ClusterLabel, t.opts.ReplicaLabel)
	}
	if e == nil {
		if e = t.addEntry(cluster); e == nil {
			t.metrics.limitedClusters.Inc()
			return false, fmt.Errorf("%w: more than %d", ErrHATooManyClusters, t.opts.MaxClusters)
		}
	}
	return t.slow(ctx, e, cluster, replica, now, ts), nil
}

// haAction is what an Accept call does for a state.
type haAction uint8

const (
	haAccept   haAction = iota // store, nothing to write
	haRefuse                   // drop: another replica is elected and fresh
	haRefresh                  // store; last_seen is due to be written
	haFailover                 // elect replica in place of a stale one
	haCreate                   // no election known: elect replica
)

func (a haAction) String() string {
	switch a {
	case haAccept:
		return "accept"
	case haRefuse:
		return "refuse"
	case haRefresh:
		return "refresh"
	case haFailover:
		return "failover"
	}
	return "create"
}

// decide returns what to do with replica's samples at now (unix ms)
// given the election st (nil: unknown).
func (t *HATracker) decide(st *haState, replica string, now, ts int64) haAction {
	if st == nil {
		return haCreate
	}
	age := now - st.lastSeen
	if replica == st.replica {
		if st.dirty || age >= t.refreshMs {
			return haRefresh
		}
		return haAccept
	}
	if age < t.failoverMs {
		return haRefuse
	}
	// A sample older than the elected replica's last sighting is backlog
	// of a time the elected replica covered: it does not take over, unless
	// the elected replica has been gone for two failover periods (so that
	// a sender with a slow clock cannot be locked out).
	if ts > 0 && ts <= st.lastSeen && age < 2*t.failoverMs {
		return haRefuse
	}
	return haFailover
}

// addEntry returns the entry of cluster, adding an empty one; nil when
// MaxClusters are tracked already.
func (t *HATracker) addEntry(cluster string) *haEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entry(cluster); e != nil {
		return e
	}
	if t.count >= t.opts.MaxClusters {
		return nil
	}
	e := &haEntry{sem: make(chan struct{}, 1)}
	t.entries.Store(strings.Clone(cluster), e)
	t.count++
	t.metrics.clusters.Set(float64(t.count))
	return e
}

// entry returns the entry of cluster, nil when it has none.
func (t *HATracker) entry(cluster string) *haEntry {
	if v, ok := t.entries.Load(cluster); ok {
		return v.(*haEntry)
	}
	return nil
}

// slow decides with etcd: it takes the cluster's slot, then creates,
// refreshes or fails over the record by a txn, or decides locally when
// etcd is out of reach, backing off, or the create budget is spent.
func (t *HATracker) slow(ctx context.Context, e *haEntry, cluster, replica string, now, ts int64) bool {
	select {
	case e.sem <- struct{}{}:
	default:
		// Another goroutine is writing this cluster. A refresh in flight
		// does not change that the elected replica is elected.
		if st := e.state.Load(); st != nil && st.replica == replica {
			return true
		}
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			t.metrics.localCtx.Inc()
			return t.decide(e.state.Load(), replica, now, ts) != haRefuse
		}
	}
	defer func() { <-e.sem }()
	for range 3 {
		st := e.state.Load()
		act := t.decide(st, replica, now, ts)
		switch act {
		case haAccept:
			return true
		case haRefuse:
			return false
		}
		lease := t.lease.Load()
		switch {
		case lease == 0 || now < t.etcdRetryAt.Load():
			t.metrics.localBackoff.Inc()
			return t.local(e, st, act, replica, now)
		case act == haCreate && !t.creates.take(now):
			t.metrics.localCreateRate.Inc()
			return t.local(e, st, act, replica, now)
		}
		next, won, err := t.write(ctx, cluster, st, act, replica, now, lease)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				// The caller gave up (a cancelled request): not etcd's
				// fault, so no back-off for the other clusters. A
				// deadline that ran out is: etcd did not answer in time.
				t.metrics.localCtx.Inc()
				return t.local(e, st, act, replica, now)
			}
			t.etcdFailed(act, err, now)
			return t.local(e, st, act, replica, now)
		}
		t.etcdBackoff.Store(0)
		e.state.CompareAndSwap(st, next) // a newer state from the watch stays
		if won {
			if act == haFailover && st.replica != "" {
				t.metrics.changes.Inc()
				t.opts.Logger.Info("ha replica failed over", "cluster", cluster, "from", st.replica, "to", replica)
			}
			return true
		}
	}
	// Lost every race: decide from etcd's answer without writing.
	return t.decide(e.state.Load(), replica, now, ts) != haRefuse
}

// local applies act without etcd: the state is marked dirty and written
// by a later Accept when etcd answers (etcd's record wins if it moved).
func (t *HATracker) local(e *haEntry, st *haState, act haAction, replica string, now int64) bool {
	var next *haState
	switch act {
	case haCreate, haFailover:
		next = &haState{replica: strings.Clone(replica), electedAt: now, lastSeen: now, dirty: true}
		if st != nil {
			next.modRev = st.modRev
			if st.replica != "" {
				t.metrics.changes.Inc()
			}
		}
	case haRefresh:
		if now-st.lastSeen < t.refreshMs {
			return true // fresh locally, still to be written
		}
		n := *st
		n.lastSeen, n.dirty = now, true
		next = &n
	}
	e.state.CompareAndSwap(st, next)
	return true
}

// etcdFailed counts an etcd error and backs Accept's etcd calls off
// (250 ms doubling up to the refresh period).
func (t *HATracker) etcdFailed(act haAction, err error, now int64) {
	op := act.String()
	t.metrics.errors.WithLabelValues(op).Inc()
	t.logError(op, err)
	b := min(max(2*t.etcdBackoff.Load(), 250), t.refreshMs)
	t.etcdBackoff.Store(b)
	t.etcdRetryAt.Store(now + b)
}

// logError logs err for op at most once per 10 s per op.
func (t *HATracker) logError(op string, err error) {
	if ok, held := t.logs.Allow(op, time.Now()); ok {
		t.opts.Logger.Warn("ring ha tracker error", "op", op, "err", err, "suppressed", held)
	}
}

// Start grants the tracker's lease and lists the records (an error when
// etcd does not answer within ctx), then keeps the lease alive, watches
// the prefix and sweeps stale local entries until Close.
func (t *HATracker) Start(ctx context.Context) error {
	t.runMu.Lock()
	defer t.runMu.Unlock()
	if t.started {
		return ErrHAStarted
	}
	g, err := t.client.Grant(ctx, t.leaseTTL)
	if err != nil {
		t.metrics.errors.WithLabelValues("grant").Inc()
		return fmt.Errorf("ring: ha_dedup: grant lease: %w", err)
	}
	recs, rev, err := t.list(ctx)
	if err != nil {
		t.metrics.errors.WithLabelValues("list").Inc()
		return fmt.Errorf("ring: ha_dedup: %w", err)
	}
	t.replace(recs, rev)
	t.lease.Store(int64(g.ID))
	runCtx, cancel := context.WithCancel(context.Background())
	t.started, t.cancel = true, cancel
	t.done.Add(3)
	go t.keepAlive(runCtx)
	go t.watch(runCtx, rev)
	go t.sweeper(runCtx)
	t.opts.Logger.Info("ha tracker started", "prefix", t.opts.Prefix, "lease", g.ID, "lease_ttl_s", t.leaseTTL,
		"clusters", len(recs))
	return nil
}

// Close stops the goroutines and waits for them. The lease is not
// revoked: the records this node wrote last stay until other nodes
// refresh them or the lease expires, so a restart elects no one anew.
func (t *HATracker) Close() {
	t.runMu.Lock()
	cancel := t.cancel
	t.cancel = nil
	t.runMu.Unlock()
	if cancel != nil {
		cancel()
		t.done.Wait()
		t.lease.Store(0)
	}
}

// ClusterLabel and ReplicaLabel name the labels the caller reads the
// values of Accept from; the caller drops ReplicaLabel from accepted series.
func (t *HATracker) ClusterLabel() string { return t.opts.ClusterLabel }

// ReplicaLabel: see ClusterLabel.
func (t *HATracker) ReplicaLabel() string { return t.opts.ReplicaLabel }

// Clusters returns how many clusters the tracker follows.
func (t *HATracker) Clusters() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// tokenBucket is a rate limiter on a caller's clock (unix ms).
type tokenBucket struct {
	rate, burst float64 // immutable: tokens per second, capacity

	mu     sync.Mutex
	tokens float64 // guarded by mu
	last   int64   // guarded by mu; 0 before the first take
}

// take takes one token at now and reports whether there was one.
func (b *tokenBucket) take(now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == 0 {
		b.tokens, b.last = b.burst, now
	}
	if now > b.last {
		b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.rate/1000)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// haMetrics are the etcdgate_ring_ha_* metrics.
type haMetrics struct {
	clusters        prometheus.Gauge
	changes         prometheus.Counter
	errors          *prometheus.CounterVec
	writes          *prometheus.CounterVec
	local           *prometheus.CounterVec
	localBackoff    prometheus.Counter
	localCreateRate prometheus.Counter
	localCtx        prometheus.Counter
	limited         *prometheus.CounterVec
	limitedValue    prometheus.Counter
	limitedClusters prometheus.Counter
}

func newHAMetrics(reg prometheus.Registerer) *haMetrics {
	m := &haMetrics{
		clusters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_ring_ha_clusters",
			Help: "HA clusters this node's dedup tracker follows.",
		}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_ring_ha_elected_replica_changes_total",
			Help: "Failovers this node decided (won in etcd, or locally while etcd was out of reach); the ring's total is the sum over nodes.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_ha_etcd_errors_total",
			Help: "HA tracker failures by operation (create, refresh, failover, grant, keepalive, list, watch, decode).",
		}, []string{"op"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_ha_etcd_writes_total",
			Help: "Election records this node wrote to etcd, by operation (create, refresh, failover).",
		}, []string{"op"}),
		local: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_ha_local_decisions_total",
			Help: "Accept decisions that needed etcd but were taken locally, by reason (etcd_unavailable, create_rate, ctx).",
		}, []string{"reason"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_ha_limited_total",
			Help: "Series refused or records skipped by a bound, by reason (value_too_long_or_invalid, too_many_clusters).",
		}, []string{"reason"}),
	}
	m.localBackoff = m.local.WithLabelValues("etcd_unavailable")
	m.localCreateRate = m.local.WithLabelValues("create_rate")
	m.localCtx = m.local.WithLabelValues("ctx")
	m.limitedValue = m.limited.WithLabelValues("value_too_long_or_invalid")
	m.limitedClusters = m.limited.WithLabelValues("too_many_clusters")
	if reg != nil {
		reg.MustRegister(m.clusters, m.changes, m.errors, m.writes, m.local, m.limited)
	}
	return m
}
