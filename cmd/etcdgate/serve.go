package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/internal/scavenge"
	"github.com/etcdgate/etcdgate/probe"
	"github.com/etcdgate/etcdgate/relabel"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// serveFlags are the command-line settings of serve; flags that were set
// override the config file, on start and on every reload.
type serveFlags struct {
	configFile    string
	listenAddress string
	dataDir       string
	// A ring node's identity, which differs per node while the config
	// file is shared (a Kubernetes StatefulSet's pods).
	ringNodeName     string
	ringAdvertiseURL string
	// Security flags, as in Prometheus (serve_auth.go).
	webConfigFile   string
	enableLifecycle bool
	enablePprof     bool
	readTimeout     time.Duration
}

func (f serveFlags) load() (Config, error) {
	cfg, err := loadConfig(f.configFile, f.override)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// override sets what the flags that were set say.
func (f serveFlags) override(cfg *Config) {
	if f.listenAddress != "" {
		cfg.ListenAddress = f.listenAddress
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	if f.ringNodeName != "" {
		cfg.Ring.NodeName = f.ringNodeName
	}
	if f.ringAdvertiseURL != "" {
		cfg.Ring.AdvertiseURL = f.ringAdvertiseURL
	}
}

// defaultGOGC trades CPU for memory as VictoriaMetrics does: the head is
// most of the heap and lives long, so a GC cycle at every 30% of growth
// keeps RSS near the live heap (at GOGC=100 it runs to twice that). The
// tuned percent (gctune.go) is this between a floor and a ceiling of
// heap growth; the GOGC environment variable overrides both.
const defaultGOGC = 30

// recoveryGOGC is the GC target while the store recovers, before the node
// serves: the heap grows to the head's size with little garbage, and at
// defaultGOGC a cycle at every 30% of that growth doubled the CPU of a
// restart at ten million series (74 s against 52 s; 45.7 s to ready
// against 32.5 s). The tuned percent replaces it once the store is open.
const recoveryGOGC = 100

// scavengeInterval is how often the node checks whether freed heap is
// worth handing back to the OS (internal/scavenge): the runtime's
// scavenger does it lazily, so bursts (badger compactions, big queries)
// would leave RSS high for minutes. Returning it forces a GC cycle, so
// the check skips it unless the memory to return is worth the cycle.
const scavengeInterval = 30 * time.Second

func runServe(args []string, stderr io.Writer) int {
	// Without GOGC in the environment the GC percent is recoveryGOGC
	// until the store is open, then tuned (gctune.go).
	tuneGC := os.Getenv("GOGC") == ""
	if tuneGC {
		debug.SetGCPercent(recoveryGOGC)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.configFile, "config", "", "YAML configuration file (every key has a default)")
	fs.StringVar(&f.listenAddress, "listen-address", "", "address of the HTTP API, overriding listen_address (default 127.0.0.1:9390)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for persistent state, overriding data_dir (default ./data)")
	fs.StringVar(&f.ringNodeName, "ring.node-name", "", "this node's name in the ring, overriding ring.node_name (default the hostname)")
	fs.StringVar(&f.ringAdvertiseURL, "ring.advertise-url", "", "how peers reach this node, overriding ring.advertise_url")
	f.addSecurityFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := f.load()
	if err != nil {
		fmt.Fprintf(stderr, "etcdgate: %v\n", err)
		return 1
	}
	var level slog.LevelVar
	lvl, _ := parseLogLevel(cfg.LogLevel)
	level.Set(lvl)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: &level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	goMemLimit, memSource := setGoMemLimit(cfg.Limits.MemoryLimitBytes)
	logger.Info("memory limit", "memory_limit_bytes", cfg.Limits.MemoryLimitBytes, "gomemlimit", goMemLimit, "gomemlimit_source", memSource)

	g, err := newGateway(cfg, f, logger, &level)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	g.goMemLimit, g.tuneGC = goMemLimit, tuneGC
	if err := g.run(ctx, hup); err != nil {
		logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// gateway is one running etcdgate node.
type gateway struct {
	flags   serveFlags
	logger  *slog.Logger
	level   *slog.LevelVar
	reg     *prometheus.Registry
	api     *api.API
	db      *tsdb.DB         // set once recovery ends
	ingest  *ingest.Ingester // set once recovery ends
	server  *http.Server
	ready   chan struct{} // closed when the node serves reads and writes
	reloads *reloadMetrics
	relabel *relabel.Pipeline    // nil when relabeling is off
	regFile *relabel.FileWatcher // nil without registry.file
	rules   *ruleRuntime         // rules, SLOs, notifier (rules_serve.go)
	auth    authState            // TLS and credentials (serve_auth.go)
	records *probe.RecordStore   // inspection records; nil when nothing is inspected
	ring    *ringNode            // nil when the node runs alone (ring_serve.go)
	// refusedTargets reports registry clusters outside the endpoint
	// allow-list (probe_allow.go).
	refusedTargets *refusedTargets
	// targets counts samples by scrape target (completeness.go).
	targets *ingest.Targets

	// reloadMu serialises reloads and the start of ingest and rules
	// (reload.go); it is held across file reads and rule groups halting,
	// so nothing on the path of a request takes it.
	reloadMu sync.Mutex
	mu       sync.Mutex // guards cfg, db and ingest; held only to read or swap them
	cfg      Config     // guarded by mu

	// goMemLimit is GOMEMLIMIT (0: none), set before start; writes are
	// refused with 429 while the live heap is near it.
	goMemLimit int64
	// tuneGC: the GC percent is tuned to the live heap once the store
	// is open (gctune.go); false when GOGC is set in the environment.
	tuneGC bool
}

func newGateway(cfg Config, flags serveFlags, logger *slog.Logger, level *slog.LevelVar) (*gateway, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	g := &gateway{flags: flags, logger: logger, level: level, reg: reg, cfg: cfg, ready: make(chan struct{})}
	g.records = newProbeRecords(cfg)
	g.refusedTargets = newRefusedTargets(reg, logger)
	g.targets = ingest.NewTargets(cfg.Registry.ClusterLabel, cfg.Limits.MaxTargets)
	g.reloads = newReloadMetrics(reg)
	bi := buildInfo()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "etcdgate_build_info",
		Help:        "A metric with a constant '1' value labeled by version, revision and goversion.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	}, func() float64 { return 1 }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "etcdgate_gc_forced_cycles_total",
		Help: "GC cycles forced to return freed memory to the OS (after a checkpoint, or on the 30 s check, when worth a cycle).",
	}, func() float64 { return float64(scavenge.Forced()) }))

	if err := g.newRelabel(cfg); err != nil {
		return nil, err
	}
	var relabelStatus func() any
	if g.relabel != nil {
		relabelStatus = func() any { return g.relabel.Status() }
	}
	rt, err := newRuleRuntime(cfg, reg, logger)
	if err != nil {
		return nil, err
	}
	g.rules = rt
	policy, err := newAuthPolicy(flags.webConfigFile, cfg)
	if err != nil {
		return nil, err
	}
	g.auth.policy.Store(policy)
	g.auth.tls = policy.TLSConfig() != nil
	var ringStatus api.RingStatus // a nil *ringNode must not be a non-nil interface
	var ringParts api.RingParts
	var ringAggregate ring.AggregateFunc
	if cfg.Ring.Enabled {
		if g.ring, err = newRingNode(cfg, reg, logger); err != nil {
			return nil, err
		}
		ringStatus = g.ring
		g.rules.ring = g.ring // rule groups and probe targets: one owner each
		ringParts = g.ring    // whole-ring rules, alerts, SLOs, inspections
		ringAggregate = g.ring.aggregateLocal
	}
	g.api = api.New(api.Options{
		BuildInfo:     api.BuildInfo(bi),
		Logger:        logger,
		Registerer:    reg,
		Gatherer:      reg,
		Ready:         g.isReady,
		Reload:        g.reload,
		RelabelStatus: relabelStatus,
		Rules:         g.rules,
		SLOStatus:     g.rules.sloStatus,
		Inspections:   g.inspectionRecords(),
		Ring:          ringStatus,
		RingParts:     ringParts,
		RingAggregate: ringAggregate,
		Config:        g.configYAML,
		RuntimeInfo:   g.runtimeInfo(time.Now()),
		Targets:       g.targets,

		EnableLifecycle: flags.enableLifecycle,
		EnablePprof:     flags.enablePprof,
		ReadTimeout:     flags.readTimeout,
		Auth:            policy,
	})
	g.server = &http.Server{
		Handler:           g.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          serverErrorLog(logger), // serve_auth.go: TLS handshake errors throttled
	}
	return g, nil
}

// newRelabel builds the relabel pipeline when the config asks for one and
// loads the registry file; a broken file stops the start.
func (g *gateway) newRelabel(cfg Config) error {
	if !cfg.RelabelEnabled() {
		return nil
	}
	opts := relabel.DefaultOptions()
	opts.Config, opts.Registerer, opts.Logger = cfg.RelabelConfig(), g.reg, g.logger
	p, err := relabel.New(opts)
	if err != nil {
		return fmt.Errorf("relabel: %w", err)
	}
	g.relabel = p
	if cfg.Registry.File != "" {
		g.regFile = relabel.NewFileWatcher(cfg.Registry.File, p.Registry(), g.logger, p.RegistryErrorCounter("file"))
		if err := g.regFile.Load(); err != nil {
			return err
		}
	}
	return nil
}

// registryPollInterval is how often the registry file's mtime is checked.
const registryPollInterval = 5 * time.Second

// startRegistry starts the goroutines that follow the registry file and
// the etcd prefix. They stop when ctx is done; the returned function
// waits for them.
func (g *gateway) startRegistry(ctx context.Context) (wait func(), err error) {
	var wg sync.WaitGroup
	if g.regFile != nil {
		wg.Go(func() { g.regFile.Run(ctx.Done(), registryPollInterval) })
	}
	if e := g.cfg.Registry.Etcd; g.relabel != nil && len(e.Endpoints) > 0 {
		cc, err := e.clientConfig()
		if err != nil {
			return wg.Wait, fmt.Errorf("registry etcd client: %w", err)
		}
		client, err := clientv3.New(cc)
		if err != nil {
			return wg.Wait, fmt.Errorf("registry etcd client: %w", err)
		}
		w := relabel.NewEtcdWatcher(client, e.Prefix, g.relabel.Registry(), g.logger, g.relabel.RegistryErrorCounter("etcd"))
		w.SetLimits(e.Limits)
		wg.Go(func() {
			defer client.Close()
			w.Run(ctx)
		})
	}
	return wg.Wait, nil
}

func (g *gateway) isReady() bool {
	select {
	case <-g.ready:
		return true
	default:
		return false
	}
}

// run serves until ctx is done, reloading on every SIGHUP, then shuts
// down gracefully: requests in flight finish (up to 30 s) and the store
// checkpoints so that the next start replays no WAL. The server answers
// /-/healthy from the start and data requests once recovery is done.
func (g *gateway) run(ctx context.Context, hup <-chan os.Signal) error {
	ln, err := net.Listen("tcp", g.cfg.ListenAddress)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	regCtx, stopRegistry := context.WithCancel(ctx)
	waitRegistry, err := g.startRegistry(regCtx)
	defer func() { stopRegistry(); waitRegistry() }()
	if err != nil {
		ln.Close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- g.serve(ln) }()
	if g.ring != nil {
		// Joined as JOINING before the store opens: peers see the node
		// and it forwards writes, but it owns nothing until it is ACTIVE.
		if err := g.ring.start(ctx); err != nil {
			g.server.Close()
			g.ring.leave()
			return err
		}
	}
	g.logger.Info("etcdgate starting", "listen_address", ln.Addr().String(), "data_dir", g.cfg.DataDir, "version", version,
		"tls", g.auth.tls, "auth", g.auth.policy.Load().Required())

	opened := make(chan error, 1)
	go func() { opened <- g.openStore() }()
	scavengeTick := time.NewTicker(scavengeInterval)
	defer scavengeTick.Stop()
	tuner := newGCTuner(g.goMemLimit)
	gcCycles := notifyGCCycles()
	defer gcCycles.stop()
	var gcTune <-chan struct{} // gcCycles.C once ready, when the GC is tuned
	stopProbe, stopInfo := func() {}, func() {}
	ready := false
	for {
		select {
		case <-gcTune:
			tuner.tune()
		case <-scavengeTick.C:
			if ready { // recovery's heap is live: a forced GC would free little
				scavenge.IfWorthwhile()
			}
		case err := <-opened:
			if err != nil {
				g.server.Close()
				return err
			}
			ready = true
			if g.tuneGC {
				tuner.tune()
				gcTune = gcCycles.C
			}
			debug.FreeOSMemory() // what recovery's decoding left behind
			g.logger.Info("etcdgate ready")
			stopProbe = g.startProbe(ctx)
			stopClusterInfo, stopCompleteness := g.startClusterInfo(ctx), g.startCompleteness(ctx)
			stopInfo = func() { stopCompleteness(); stopClusterInfo() }
			if g.ring != nil {
				go g.ring.activate(ctx)
			}
		case <-hup:
			if err := g.reload(); err != nil {
				g.logger.Error("reload failed; previous configuration stays in force", "err", err)
			}
		case err := <-serveErr:
			return fmt.Errorf("http server: %w", err)
		case <-ctx.Done():
			stopProbe() // before the store closes: runs emit into it
			stopInfo()
			return g.shutdown(opened)
		}
	}
}

// openStore recovers the store and starts serving data.
func (g *gateway) openStore() error {
	g.mu.Lock()
	cfg := g.cfg
	g.mu.Unlock()
	db, err := tsdb.Open(filepath.Join(cfg.DataDir, "tsdb"), cfg.DBOptions(), g.reg, g.logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	opts := ingest.Options{Limits: cfg.IngestLimits(), Registerer: g.reg, Logger: g.logger, MemoryLimit: g.goMemLimit, Targets: g.targets}
	if g.relabel != nil { // a nil *Pipeline in the interface would not be nil
		opts.Relabeler = g.relabel
	}
	if g.ring != nil {
		opts.Ring = g.ring.ingestOptions()
	}
	// Metric metadata goes to the store (metadata_sink.go).
	opts.MetadataSink = newMetadataSink(db, g.logger)
	in, err := ingest.New(db, opts)
	if err != nil {
		db.Close()
		return err
	}
	// No reload between taking the config and starting the rules: a
	// reload during recovery changed g.cfg, and its limits apply now.
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.mu.Lock()
	g.db, g.ingest = db, in
	cfg = g.cfg
	g.mu.Unlock()
	in.SetLimits(cfg.IngestLimits())
	db.SetLimits(cfg.HeadLimits())
	if err := db.SetMetadataLimits(cfg.MetadataOptions()); err != nil {
		return err // validated with cfg: a bug
	}
	g.api.SetBackend(in, db)
	if g.ring != nil {
		// Reads of the whole ring (ring_reads.go); the internal endpoints
		// peers call keep reading db.
		if err := g.ring.startReads(db, cfg.Query, g.goMemLimit); err != nil {
			return err
		}
		g.api.SetRingReads(g.reads(db))
	}
	g.api.SetQueryEngine(evaluator.NewEngine(g.reads(db), cfg.Query.APIEngineOptions()))
	g.api.SetReadLimits(cfg.Query.ReadLimits())
	close(g.ready)
	return g.rules.start(db, g.reads(db), in, cfg, g.reload)
}

func (g *gateway) shutdown(opened <-chan error) error {
	g.logger.Info("shutting down")
	if g.ring != nil {
		// First out of the ring, so that peers stop forwarding here; the
		// server still answers what they sent before they saw it.
		g.ring.leave()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.server.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	if !g.isReady() {
		// Recovery is still running: let it finish, so the store closes cleanly.
		if err := <-opened; err != nil {
			return err
		}
	}
	g.rules.stop()
	if err := g.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	g.logger.Info("stopped")
	return nil
}

type reloadMetrics struct {
	success   prometheus.Gauge
	timestamp prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful.",
		}),
		timestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcdgate_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
	m.success.Set(1)
	m.timestamp.SetToCurrentTime()
	reg.MustRegister(m.success, m.timestamp)
	return m
}

func (m *reloadMetrics) observe(err error) {
	if err != nil {
		m.success.Set(0)
		return
	}
	m.success.Set(1)
	m.timestamp.SetToCurrentTime()
}
