package api

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/etcdgate/etcdgate/ingest"
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
}

// errNotReady answers data requests while the store recovers.
var errNotReady = errors.New("etcdgate is not ready: recovery in progress")

// API serves the HTTP endpoints.
type API struct {
	opts    Options
	metrics *httpMetrics
	bodies  bodyPool
	// backend is nil until the store has recovered: the API answers
	// health checks from the start and data requests once it is set.
	backend atomic.Pointer[backend]
	engine  atomic.Pointer[QueryEngine]
	// listing is the listing endpoints' limits and slots (limits.go);
	// panics throttles the log of queries that panicked.
	listing atomic.Pointer[listingState]
	panics  panicLog
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
	a := &API{opts: opts, metrics: newHTTPMetrics(opts.Registerer)}
	if opts.Ingester != nil && opts.Storage != nil {
		a.SetBackend(opts.Ingester, opts.Storage)
	}
	return a
}

// SetBackend makes the API serve writes and reads.
func (a *API) SetBackend(in *ingest.Ingester, st Storage) {
	a.backend.Store(&backend{ingester: in, storage: st})
}

// Handler returns the router with every endpoint instrumented.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, name string, h http.HandlerFunc) {
		mux.Handle(pattern, a.metrics.instrument(name, h))
	}
	handle("POST /api/v1/write", "write", a.write)
	for _, m := range []string{"GET", "POST"} {
		handle(m+" /api/v1/query", "query", a.query)
		handle(m+" /api/v1/query_range", "query_range", a.queryRange)
		handle(m+" /api/v1/series", "series", a.series)
		handle(m+" /api/v1/labels", "labels", a.labelNames)
		handle(m+" /api/v1/label/{name}/values", "label_values", a.labelValues)
	}
	handle("GET /api/v1/status/buildinfo", "buildinfo", a.buildInfo)
	handle("GET /api/v1/status/tsdb", "tsdb_status", a.tsdbStatus)
	handle("GET /api/v1/status/relabel", "relabel_status", a.relabelStatus)
	handle("GET /api/v1/rules", "rules", a.ruleGroups)
	handle("GET /api/v1/alerts", "alerts", a.alerts)
	handle("GET /api/v1/slo", "slo", a.sloStatus)
	handle("GET /api/v1/inspections", "inspections", a.inspections)
	handle("GET /-/healthy", "healthy", a.healthy)
	handle("HEAD /-/healthy", "healthy", a.healthy)
	handle("GET /-/ready", "ready", a.ready)
	handle("HEAD /-/ready", "ready", a.ready)
	handle("POST /-/reload", "reload", a.reload)
	handle("PUT /-/reload", "reload", a.reload)
	// Profiles, as Prometheus serves them, for the heap and CPU breakdowns
	// that performance work starts from.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	if a.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

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
