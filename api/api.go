package api

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/internal/logthrottle"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// Storage is what the read API needs of the store.
type Storage interface {
	tsdb.Queryable
	Stats(limit int) tsdb.Stats
}

// BuildInfo is served at /api/v1/status/buildinfo.
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// Options wire the API to the rest of the process.
type Options struct {
	Ingester  *ingest.Ingester
	Storage   Storage
	BuildInfo BuildInfo
	Logger    *slog.Logger
	// Registerer receives the API's own metrics; Gatherer serves /metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Ready reports whether the node serves reads and writes (false while
	// it recovers). Nil means always ready.
	Ready func() bool
	// Reload re-reads the configuration; nil disables /-/reload.
	Reload func() error
	// EnableLifecycle serves POST|PUT /-/reload (--web.enable-lifecycle);
	// off, they answer 403 as in Prometheus.
	EnableLifecycle bool
	// EnablePprof serves /debug/pprof/* (--web.enable-pprof).
	EnablePprof bool
	// ReadTimeout bounds a whole request but a write (which has
	// limits.write_request_timeout): reading its body and writing its
	// answer (--web.read-timeout). A client that stops reading an answer
	// is cut at it, so it cannot hold a query's result and its handler
	// forever. Default DefaultReadTimeout.
	ReadTimeout time.Duration
	// Auth is the initial auth policy (NewAuthPolicy); nil leaves every
	// endpoint open. SetAuth replaces it.
	Auth *AuthPolicy
	// RelabelStatus returns what /api/v1/status/relabel serves (JSON);
	// nil means relabeling is off. A function, because api does not
	// import relabel.
	RelabelStatus func() any
	// Rules serves /api/v1/rules and /api/v1/alerts (nil: no rules);
	// SLOStatus serves /api/v1/slo (nil: no SLOs).
	Rules     RuleGroups
	SLOStatus SLOStatus
	// Inspections serves /api/v1/inspections; nil: no prober runs.
	Inspections InspectionRecords
	// Ring, set on a node of a ring, serves /api/v1/status/ring and turns
	// on the endpoints peers call: POST /internal/v1/push (role write),
	// GET /internal/v1/stats and GET|POST /internal/v1/select (role read).
	Ring RingStatus
	// RingParts, set on a node of a ring with Ring, makes /api/v1/rules,
	// /api/v1/alerts, /api/v1/slo and /api/v1/inspections show the whole
	// ring (ring_state.go) and serves this node's parts to its peers.
	RingParts RingParts
	// RingAggregate, set on a node of a ring with Ring, serves
	// ring.AggregatePath (role read): pushed-down aggregations over this
	// node's local series.
	RingAggregate ring.AggregateFunc
	// Config returns the running configuration as YAML with every secret
	// masked, for /api/v1/status/config (role admin); RuntimeInfo fills
	// /api/v1/status/runtimeinfo. Nil: the endpoint is not served.
	Config      func() (string, error)
	RuntimeInfo func() RuntimeInfo
	// Targets counts samples by scrape target, for
	// /api/v1/status/targets (targets.go); nil: no target is listed.
	Targets TargetSource
}

// errNotReady answers data requests while the store recovers.
var errNotReady = errors.New("etcdgate is not ready: recovery in progress")

// API serves the HTTP endpoints.
type API struct {
	opts    Options
	metrics *httpMetrics
	auth    *authenticator
	bodies  bodyPool
	// backend is nil until the store has recovered: the API answers
	// health checks from the start and data requests once it is set.
	backend atomic.Pointer[backend]
	engine  atomic.Pointer[QueryEngine]
	// listing is the listing endpoints' limits and slots (limits.go);
	// panics throttles the log of queries that panicked.
	listing atomic.Pointer[listingState]
	panics  panicLog
	// writeLogs throttles the log of failed writes: during an outage
	// (a store failure, owners down) every request fails alike.
	writeLogs *logthrottle.Throttle
	// remoteReadLogs throttles the log of partial and cut remote reads.
	remoteReadLogs    *logthrottle.Throttle
	remoteReadMetrics *remoteReadMetrics
	// selects are the slots of internal selects (select.go).
	selects chan struct{}
	// ringReads, when set, is what the listing endpoints read (the ring's
	// fan-out); the internal endpoints always read the local store.
	ringReads atomic.Pointer[tsdb.Queryable]
}

type backend struct {
	ingester *ingest.Ingester
	storage  Storage
}

// New returns the API for opts. If opts carries no Ingester and Storage,
// data endpoints answer 503 until SetBackend.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	a := &API{opts: opts, metrics: newHTTPMetrics(opts.Registerer), auth: newAuthenticator(opts.Registerer, opts.Logger),
		writeLogs: logthrottle.New(10*time.Second, 1), selects: make(chan struct{}, maxSelectConcurrency)}
	a.remoteReadLogs, a.remoteReadMetrics = logthrottle.New(10*time.Second, 2), newRemoteReadMetrics(opts.Registerer)
	a.auth.policy.Store(opts.Auth)
	if opts.Ingester != nil && opts.Storage != nil {
		a.SetBackend(opts.Ingester, opts.Storage)
	}
	return a
}

// SetBackend makes the API serve writes and reads.
func (a *API) SetBackend(in *ingest.Ingester, st Storage) {
	a.backend.Store(&backend{ingester: in, storage: st})
}

// SetRingReads makes /api/v1/series, /labels and /label/<name>/values
// read q (the ring's fan-out Queryable) instead of the local store; the
// internal endpoints peers call keep reading the local store.
func (a *API) SetRingReads(q tsdb.Queryable) { a.ringReads.Store(&q) }

// readStore is what the listing endpoints read.
func (a *API) readStore(b *backend) tsdb.Queryable {
	if q := a.ringReads.Load(); q != nil {
		return *q
	}
	return b.storage
}

// Route is one endpoint of the router and the role it requires.
type Route struct {
	Pattern string // http.ServeMux pattern: "METHOD /path"
	Name    string // handler label of the HTTP metrics
	Role    Role
	handler http.HandlerFunc
}

// Routes lists every endpoint Handler serves, with its role. Every
// endpoint is registered through this list, so none escapes the guard.
func (a *API) Routes() []Route {
	var rs []Route
	add := func(pattern, name string, role Role, h http.HandlerFunc) {
		rs = append(rs, Route{Pattern: pattern, Name: name, Role: role, handler: h})
	}
	add("POST /api/v1/write", "write", RoleWrite, a.write)
	for _, m := range []string{"GET", "POST"} {
		add(m+" /api/v1/query", "query", RoleRead, a.query)
		add(m+" /api/v1/query_range", "query_range", RoleRead, a.queryRange)
		add(m+" /api/v1/series", "series", RoleRead, a.series)
		add(m+" /api/v1/labels", "labels", RoleRead, a.labelNames)
		add(m+" /api/v1/label/{name}/values", "label_values", RoleRead, a.labelValues)
	}
	add("POST /api/v1/read", "remote_read", RoleRead, a.remoteRead)
	add("GET /api/v1/status/buildinfo", "buildinfo", RoleRead, a.buildInfo)
	add("GET /api/v1/status/tsdb", "tsdb_status", RoleRead, a.tsdbStatus)
	add("GET /api/v1/status/relabel", "relabel_status", RoleRead, a.relabelStatus)
	add("GET /api/v1/rules", "rules", RoleRead, a.ruleGroups)
	add("GET /api/v1/alerts", "alerts", RoleRead, a.alerts)
	add("GET /api/v1/slo", "slo", RoleRead, a.sloStatus)
	add("GET /api/v1/inspections", "inspections", RoleRead, a.inspections)
	for _, m := range []string{"GET", "POST"} {
		add(m+" /api/v1/format_query", "format_query", RoleRead, a.formatQuery)
		add(m+" /api/v1/parse_query", "parse_query", RoleRead, a.parseQuery)
		add(m+" /api/v1/query_exemplars", "query_exemplars", RoleRead, a.queryExemplars)
	}
	if a.opts.Config != nil {
		// The configuration is the operator's, not data: its secrets are
		// masked, but it names endpoints, users and their roles.
		add("GET /api/v1/status/config", "status_config", RoleAdmin, a.statusConfig)
	}
	if a.opts.RuntimeInfo != nil {
		add("GET /api/v1/status/runtimeinfo", "runtimeinfo", RoleRead, a.runtimeInfo)
	}
	add("GET /api/v1/metadata", "metadata", RoleRead, a.metadata) // metadata.go
	if a.opts.Ring != nil && a.opts.RingParts != nil {
		add("GET "+MetadataPartPath, "internal_metadata", RoleRead, a.metadataPart)
	}
	add("GET /api/v1/status/targets", "status_targets", RoleRead, a.statusTargets) // targets.go
	if a.opts.Ring != nil && a.opts.RingParts != nil {
		add("GET "+TargetsPartPath, "internal_targets", RoleRead, a.targetsPart)
	}
	if a.opts.Ring != nil {
		add("GET /api/v1/status/ring", "ring_status", RoleRead, a.ringStatus)
		add("POST "+ring.PushPath, "internal_push", RoleWrite, a.internalPush)
		add("GET "+ring.StatsPath, "internal_stats", RoleRead, a.internalStats)
		add("GET "+ring.SelectPath, "internal_select", RoleRead, a.internalSelect)
		add("POST "+ring.SelectPath, "internal_select", RoleRead, a.internalSelect)
		if a.opts.RingAggregate != nil {
			add("POST "+ring.AggregatePath, "internal_aggregate", RoleRead, a.internalAggregate)
		}
		if a.opts.RingParts != nil {
			add("GET "+ring.RulesPartPath, "internal_rules", RoleRead, a.rulesPart)
			add("GET "+ring.SLOPartPath, "internal_slo", RoleRead, a.sloPart)
			add("GET "+ring.InspectionsPartPath, "internal_inspections", RoleRead, a.inspectionsPart)
		}
	}
	add("GET /-/healthy", "healthy", RoleOpen, a.healthy)
	add("HEAD /-/healthy", "healthy", RoleOpen, a.healthy)
	add("GET /-/ready", "ready", RoleOpen, a.ready)
	add("HEAD /-/ready", "ready", RoleOpen, a.ready)
	add("POST /-/reload", "reload", RoleAdmin, a.reload)
	add("PUT /-/reload", "reload", RoleAdmin, a.reload)
	if a.opts.EnablePprof {
		// Profiles, as Prometheus serves them with --web.enable-pprof,
		// for the heap and CPU breakdowns performance work starts from.
		add("GET /debug/pprof/", "pprof", RoleAdmin, pprof.Index)
		add("GET /debug/pprof/cmdline", "pprof", RoleAdmin, pprof.Cmdline)
		add("GET /debug/pprof/profile", "pprof", RoleAdmin, pprof.Profile)
		add("GET /debug/pprof/symbol", "pprof", RoleAdmin, pprof.Symbol)
		add("GET /debug/pprof/trace", "pprof", RoleAdmin, pprof.Trace)
	}
	// The built-in pages at / (pages.go), read like every read endpoint.
	newPages(a).routes(add)
	if a.opts.Gatherer != nil {
		add("GET /metrics", "metrics", RoleRead, promhttp.HandlerFor(a.opts.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	}
	return rs
}

// Handler returns the router: every route instrumented and guarded by
// the current auth policy (SetAuth).
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range a.Routes() {
		mux.Handle(rt.Pattern, a.metrics.instrument(rt.Name, a.guard(rt.Role, a.withDeadline(rt.handler))))
	}
	return mux
}

// SetAuth swaps in a new auth policy; requests already past the guard
// finish under the old one. Nil opens every endpoint.
func (a *API) SetAuth(p *AuthPolicy) { a.auth.policy.Store(p) }

func (a *API) isReady() bool {
	return a.backend.Load() != nil && (a.opts.Ready == nil || a.opts.Ready())
}

// ready returns the backend, or answers 503 and returns nil.
func (a *API) readyBackend(w http.ResponseWriter, jsonAPI bool) *backend {
	b := a.backend.Load()
	if b != nil && (a.opts.Ready == nil || a.opts.Ready()) {
		return b
	}
	if jsonAPI {
		respondError(w, &apiError{typ: errorUnavailable, err: errNotReady})
	} else {
		http.Error(w, errNotReady.Error(), http.StatusServiceUnavailable)
	}
	return nil
}
