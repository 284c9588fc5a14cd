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

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/tsdb"
)

// serveFlags are the command-line settings of serve; flags that were set
// override the config file, on start and on every reload.
type serveFlags struct {
	configFile    string
	listenAddress string
	dataDir       string
}

func (f serveFlags) load() (Config, error) {
	cfg, err := LoadConfig(f.configFile)
	if err != nil {
		return cfg, err
	}
	if f.listenAddress != "" {
		cfg.ListenAddress = f.listenAddress
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	return cfg, cfg.Validate()
}

// defaultGOGC trades CPU for memory as VictoriaMetrics does: the head is
// most of the heap and lives long, so a GC cycle at every 30% of growth
// keeps RSS near the live heap (at GOGC=100 it runs to twice that). The
// GOGC environment variable overrides it.
const defaultGOGC = 30

// scavengeInterval is how often freed heap is handed back to the OS. The
// runtime's scavenger does it lazily (it keeps ~10% above the heap goal
// and paces itself), so bursts — badger compactions, big queries — leave
// RSS high for minutes, while RSS is the capacity figure operators
// watch. Each call forces a GC: at a million series ~0.3 s of one core,
// under 1% of it every 30 s.
const scavengeInterval = 30 * time.Second

func runServe(args []string, stderr io.Writer) int {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.configFile, "config", "", "YAML configuration file (every key has a default)")
	fs.StringVar(&f.listenAddress, "listen-address", "", "address of the HTTP API, overriding listen_address (default 127.0.0.1:9390)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for persistent state, overriding data_dir (default ./data)")
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

	g, err := newGateway(cfg, f, logger, &level)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
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

	mu  sync.Mutex // serialises reloads and guards the start of ingest
	cfg Config     // guarded by mu
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
	g.reloads = newReloadMetrics(reg)
	bi := buildInfo()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "etcdgate_build_info",
		Help:        "A metric with a constant '1' value labeled by version, revision and goversion.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	}, func() float64 { return 1 }))

	g.api = api.New(api.Options{
		BuildInfo:  api.BuildInfo(bi),
		Logger:     logger,
		Registerer: reg,
		Gatherer:   reg,
		Ready:      g.isReady,
		Reload:     g.reload,
	})
	g.server = &http.Server{
		Handler:           g.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return g, nil
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
	serveErr := make(chan error, 1)
	go func() { serveErr <- g.server.Serve(ln) }()
	g.logger.Info("etcdgate starting", "listen_address", ln.Addr().String(), "data_dir", g.cfg.DataDir, "version", version)

	opened := make(chan error, 1)
	go func() { opened <- g.openStore() }()
	scavenge := time.NewTicker(scavengeInterval)
	defer scavenge.Stop()
	for {
		select {
		case <-scavenge.C:
			debug.FreeOSMemory()
		case err := <-opened:
			if err != nil {
				g.server.Close()
				return err
			}
			g.logger.Info("etcdgate ready")
		case <-hup:
			if err := g.reload(); err != nil {
				g.logger.Error("reload failed; previous configuration stays in force", "err", err)
			}
		case err := <-serveErr:
			return fmt.Errorf("http server: %w", err)
		case <-ctx.Done():
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
	in, err := ingest.New(db, ingest.Options{Limits: cfg.IngestLimits(), Registerer: g.reg, Logger: g.logger})
	if err != nil {
		db.Close()
		return err
	}
	g.mu.Lock()
	g.db, g.ingest = db, in
	// A reload during recovery changed g.cfg: apply its limits now.
	in.SetLimits(g.cfg.IngestLimits())
	db.SetLimits(g.cfg.HeadLimits())
	g.mu.Unlock()
	g.api.SetBackend(in, db)
	close(g.ready)
	return nil
}

func (g *gateway) shutdown(opened <-chan error) error {
	g.logger.Info("shutting down")
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
	if err := g.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	g.logger.Info("stopped")
	return nil
}

// reload re-reads the configuration and applies what can change live.
// Ingestion and queries continue throughout: the new limits are swapped in
// atomically. On error the previous configuration stays.
func (g *gateway) reload() (err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	defer func() { g.reloads.observe(err) }()
	cfg, err := g.flags.load()
	if err != nil {
		return err
	}
	if g.ingest != nil {
		if err := g.ingest.SetLimits(cfg.IngestLimits()); err != nil {
			return err
		}
		g.db.SetLimits(cfg.HeadLimits())
	}
	lvl, _ := parseLogLevel(cfg.LogLevel)
	g.level.Set(lvl)
	if cfg.ListenAddress != g.cfg.ListenAddress || cfg.DataDir != g.cfg.DataDir || cfg.Head != g.cfg.Head ||
		cfg.WAL != g.cfg.WAL || cfg.Retention != g.cfg.Retention {
		g.logger.Warn("listen_address, data_dir, retention, wal and head settings change only on restart")
		cfg.ListenAddress, cfg.DataDir, cfg.Head = g.cfg.ListenAddress, g.cfg.DataDir, g.cfg.Head
		cfg.WAL, cfg.Retention = g.cfg.WAL, g.cfg.Retention
	}
	g.cfg = cfg
	g.logger.Info("configuration reloaded", "file", g.flags.configFile)
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
