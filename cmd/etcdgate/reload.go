package main

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/relabel"
	"github.com/etcdgate/etcdgate/tsdb"
)

// runtimeUpdate is everything a reload changes, built and validated
// before any of it is applied: a reload that fails changes nothing, and
// one that succeeds applies every part with setters that cannot fail.
type runtimeUpdate struct {
	cfg      Config
	rules    *rulesUpdate
	relabel  *relabel.Compiled          // nil when relabeling is off
	registry map[string]*relabel.Record // nil without a registry file
	ingest   *ingest.Limits             // nil until the store is open
	head     tsdb.HeadLimits
	engine   *evaluator.Engine // the API's new engine; nil when unchanged or the store is not open
	reads    api.ReadLimits    // the listing endpoints' limits, set with engine
	level    slog.Level
	auth     *api.AuthPolicy // the web config file and roles, re-read
}

// reload re-reads the configuration and applies what can change live.
// Ingestion and queries continue throughout: no lock they take is held
// while files are read or rule groups halt, and each part is swapped in
// atomically. On error the previous configuration stays, all of it.
func (g *gateway) reload() (err error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	defer func() { g.reloads.observe(err) }()
	cfg, err := g.flags.load()
	if err != nil {
		return err
	}
	u, err := g.prepareReload(cfg)
	if err != nil {
		return err
	}
	g.commitReload(u)
	g.logger.Info("configuration reloaded", "file", g.flags.configFile)
	return nil
}

// prepareReload builds the parts of the new runtime and validates them
// against the running one, changing nothing. Called with reloadMu held.
func (g *gateway) prepareReload(cfg Config) (*runtimeUpdate, error) {
	g.mu.Lock()
	cur, db, in := g.cfg, g.db, g.ingest
	g.mu.Unlock()
	g.keepRestartSettings(&cfg, cur)
	u := &runtimeUpdate{cfg: cfg, head: cfg.HeadLimits()}
	lvl, err := parseLogLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	u.level = lvl
	// The web config file and roles (serve_auth.go).
	if u.auth, err = g.reloadAuthPolicy(cfg); err != nil {
		return nil, err
	}
	if g.relabel != nil {
		c, err := relabel.Compile(cfg.RelabelConfig())
		if err != nil {
			return nil, fmt.Errorf("relabel: %w", err)
		}
		u.relabel = &c
		if g.regFile != nil {
			if u.registry, err = relabel.LoadRegistryFile(cfg.Registry.File); err != nil {
				return nil, err
			}
		}
	}
	var rulesEngine *evaluator.Engine
	if in != nil {
		l := cfg.IngestLimits()
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
		u.ingest = &l
		if cfg.Query != cur.Query {
			// Queries running keep the engine they started on. Rules get
			// an engine of their own, as at start: rule evaluation does
			// not wait for API queries' slots.
			u.engine = evaluator.NewEngine(g.reads(db), cfg.Query.APIEngineOptions())
			u.reads = cfg.Query.ReadLimits()
			rulesEngine = evaluator.NewEngine(g.reads(db), cfg.Query.EngineOptions())
		}
	}
	if u.rules, err = g.rules.prepare(cfg, rulesEngine); err != nil {
		return nil, err
	}
	return u, nil
}

// keepRestartSettings keeps the running values of the settings that
// change only on restart, and says so when the file changed them.
func (g *gateway) keepRestartSettings(cfg *Config, cur Config) {
	if cfg.ListenAddress != cur.ListenAddress || cfg.DataDir != cur.DataDir || cfg.Head != cur.Head ||
		cfg.WAL != cur.WAL || cfg.Retention != cur.Retention {
		g.logger.Warn("listen_address, data_dir, retention, wal and head settings change only on restart")
		cfg.ListenAddress, cfg.DataDir, cfg.Head = cur.ListenAddress, cur.DataDir, cur.Head
		cfg.WAL, cfg.Retention = cur.WAL, cur.Retention
	}
	if g.relabel == nil && cfg.RelabelEnabled() {
		g.logger.Warn("relabeling and the registry were off at start; turning them on needs a restart")
	}
	if cfg.Registry.File != cur.Registry.File || !slices.Equal(cfg.Registry.Etcd.Endpoints, cur.Registry.Etcd.Endpoints) ||
		cfg.Registry.Etcd.Prefix != cur.Registry.Etcd.Prefix || cfg.Registry.Etcd.TLS != cur.Registry.Etcd.TLS ||
		cfg.Registry.Etcd.Username != cur.Registry.Etcd.Username || cfg.Registry.Etcd.Password != cur.Registry.Etcd.Password ||
		cfg.Registry.Etcd.Limits != cur.Registry.Etcd.Limits {
		g.logger.Warn("registry file and etcd settings change only on restart")
		cfg.Registry.File, cfg.Registry.Etcd = cur.Registry.File, cur.Registry.Etcd
	}
	if !reflect.DeepEqual(cfg.Ring, cur.Ring) {
		g.logger.Warn("ring settings change only on restart")
		cfg.Ring = cur.Ring
	}
	g.keepProbeSettings(cfg, cur)
}

// commitReload swaps every part in. Nothing here can fail but by a bug:
// prepareReload validated it all. Called with reloadMu held.
func (g *gateway) commitReload(u *runtimeUpdate) {
	if u.relabel != nil {
		g.relabel.SetCompiled(*u.relabel)
	}
	if u.registry != nil {
		g.relabel.Registry().SetFile(u.registry)
	}
	g.mu.Lock()
	in, db := g.ingest, g.db
	g.cfg = u.cfg
	g.mu.Unlock()
	if u.ingest != nil {
		if err := in.SetLimits(*u.ingest); err != nil {
			g.logger.Error("BUG: limits validated by prepare refused", "err", err)
		}
		db.SetLimits(u.head)
		if err := db.SetMetadataLimits(u.cfg.MetadataOptions()); err != nil {
			g.logger.Error("BUG: metadata limits validated by prepare refused", "err", err)
		}
	}
	if u.engine != nil {
		g.api.SetQueryEngine(u.engine)
		g.api.SetReadLimits(u.reads)
		if g.ring != nil && g.ring.queryable() != nil {
			g.ring.queryable().SetPartialResponse(u.cfg.Query.PartialResponse)
			g.ring.setQueryConfig(u.cfg.Query)
		}
	}
	g.level.Set(u.level)
	g.auth.policy.Store(u.auth)
	g.api.SetAuth(u.auth)
	// Last: replaced rule groups finish their evaluation in flight first,
	// while everything else already runs on the new configuration.
	g.rules.commit(u.rules)
}
