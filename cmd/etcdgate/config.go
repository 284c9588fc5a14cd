package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/relabel"
	"github.com/etcdgate/etcdgate/tsdb"
)

// Config is etcdgate's configuration file. Every key has a default, so an
// empty file (or none) is a valid configuration.
type Config struct {
	// ListenAddress is where the HTTP API listens. Changing it needs a
	// restart.
	ListenAddress string `yaml:"listen_address"`
	// DataDir holds the node's persistent state. Changing it needs a
	// restart.
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`

	// Retention is how long samples are kept behind the newest one.
	// Changes need a restart.
	Retention Duration `yaml:"retention"`
	// ChunkCacheBytes bounds the cache of chunks queries read from the
	// store; 0 turns it off. Changes need a restart.
	ChunkCacheBytes int64 `yaml:"chunk_cache_bytes"`
	// StoreCompression compresses the store's tables: none, snappy or
	// zstd. Changes apply to tables written from then on.
	StoreCompression string `yaml:"store_compression"`

	WAL    WALConfig    `yaml:"wal"`
	Head   HeadConfig   `yaml:"head"`
	Limits LimitsConfig `yaml:"limits"`

	// RelabelConfigs run on every series, with Prometheus's semantics.
	RelabelConfigs []*relabel.RuleConfig `yaml:"relabel_configs"`
	// Sources are relabel rules for the series their matchers select.
	Sources []relabel.Source `yaml:"sources"`
	// Registry stamps product, scenario, size and region on each series
	// of a registered etcd cluster.
	Registry RegistryConfig `yaml:"registry"`
	// SizeRules derive a cluster's size from measured figures.
	SizeRules []relabel.SizeRule `yaml:"size_rules"`

	// Query bounds PromQL evaluation (query_config.go).
	Query QueryConfig `yaml:"query"`

	// RulesConfig: rule_files, evaluation_interval, alerting, thresholds,
	// slos, slo_files (rules_config.go).
	RulesConfig `yaml:",inline"`
	// Probe inspects etcd clusters directly.
	Probe ProbeConfig `yaml:"probe"`
	// Web holds the roles of the identities --web.config.file
	// authenticates (serve_auth.go).
	Web WebConfig `yaml:"web"`

	// Ring puts the node in a ring of etcdgate nodes (ring_config.go).
	Ring RingConfig `yaml:"ring"`
}

// RegistryConfig locates the cluster registry. The file's contents reload
// on change and on reload; file and etcd settings change on restart.
type RegistryConfig struct {
	File string `yaml:"file"`
	// ClusterLabel is the series label holding the etcd cluster ID.
	ClusterLabel string `yaml:"cluster_label"`
	// Defaults are stamped on series of clusters not in the registry
	// (size also on registered clusters that declare none). Keys merge
	// with the built-in defaults; an empty value unsets one.
	Defaults map[string]string  `yaml:"defaults"`
	Etcd     RegistryEtcdConfig `yaml:"etcd"`
}

// RegistryEtcdConfig is the etcd key prefix clusters are registered under.
type RegistryEtcdConfig struct {
	Endpoints []string `yaml:"endpoints"`
	Prefix    string   `yaml:"prefix"`
	// TLS and credentials of the registry's etcd client (serve_auth.go):
	// CA, client certificate and key files (relative to the config
	// file), and an etcd user. The password is masked when marshalled.
	TLS      ProbeTLSConfig `yaml:"tls"`
	Username string         `yaml:"username"`
	Password config.Secret  `yaml:"password"`
	// Limits bound the records read from etcd (untrusted input).
	Limits relabel.RecordLimits `yaml:"limits"`
}

// WALConfig sets when writes are acknowledged. Changes need a restart.
type WALConfig struct {
	// Sync is none (acknowledge once in the page cache: survives a crash
	// of the process) or interval (fsync every SyncInterval, acknowledge
	// after it: survives a power cut).
	Sync         string   `yaml:"sync"`
	SyncInterval Duration `yaml:"sync_interval"`
	// RecoveryInterval is how often a failed WAL (full disk, I/O error)
	// is retried; writes answer 503 until a retry succeeds.
	RecoveryInterval Duration `yaml:"recovery_interval"`
}

// HeadConfig configures the in-memory head. Changing it needs a restart.
type HeadConfig struct {
	// OutOfOrderWindow is how far behind its newest sample a series still
	// accepts samples; 0 refuses every out-of-order sample.
	OutOfOrderWindow Duration `yaml:"out_of_order_window"`
	// CheckpointInterval is how often new chunks and series are written
	// to the store and the WAL truncated behind them.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// ShutdownCheckpointTimeout bounds the checkpoints of a shutdown;
	// past it the next start replays the WAL instead. 0: no bound.
	ShutdownCheckpointTimeout Duration `yaml:"shutdown_checkpoint_timeout"`
	// StalenessPeriod: a series without samples for this long (behind
	// the newest sample) is flushed to the store and leaves the head.
	StalenessPeriod Duration `yaml:"staleness_period"`
}

// LimitsConfig bounds requests and series. Reloadable.
type LimitsConfig struct {
	MaxCompressedBodyBytes   int      `yaml:"max_compressed_body_bytes"`
	MaxDecompressedBodyBytes int      `yaml:"max_decompressed_body_bytes"`
	MaxLabelsPerSeries       int      `yaml:"max_labels_per_series"`
	MaxLabelNameLength       int      `yaml:"max_label_name_length"`
	MaxLabelValueLength      int      `yaml:"max_label_value_length"`
	MaxFutureDrift           Duration `yaml:"max_future_drift"`
	// MaxSeries and MaxHeadBytes are the head's ceiling: past either, new
	// series are refused (400) while existing ones keep ingesting. 0 means
	// no limit. The defaults are sized to the machine's memory.
	MaxSeries    int64 `yaml:"max_series"`
	MaxHeadBytes int64 `yaml:"max_head_bytes"`

	// What one write request may decode into: past any, the request is
	// refused whole (413) before the decoder allocates more.
	MaxSeriesPerRequest  int `yaml:"max_series_per_request"`
	MaxLabelsPerRequest  int `yaml:"max_labels_per_request"`
	MaxSamplesPerRequest int `yaml:"max_samples_per_request"`
	// The budget all write requests in flight share; past it, writes are
	// answered 429 with Retry-After. Defaults sized to memory_limit_bytes.
	MaxInflightWriteRequests int `yaml:"max_inflight_write_requests"`
	MaxInflightWriteBytes    int `yaml:"max_inflight_write_bytes"`
	// MaxConcurrentWrites is how many admitted writes decode and append at
	// once; the others wait their turn until write_request_timeout.
	MaxConcurrentWrites int `yaml:"max_concurrent_writes"`
	// WriteRequestTimeout bounds a write's body arrival and answer.
	WriteRequestTimeout Duration `yaml:"write_request_timeout"`
	// MemoryLimitBytes is the memory the node sizes itself to (GOMEMLIMIT,
	// the head's ceiling, the in-flight budget); the default is the cgroup
	// memory limit, else the host's RAM. Changes need a restart.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`

	// Metric metadata the node keeps (tsdb/metadata.go): metric names,
	// distinct {type, help, unit} a name (the most recently seen win),
	// and the bytes all of it accounts for (part of the head's bytes).
	// Past a bound new metadata is dropped and counted; what is kept stays.
	MaxMetadataMetrics   int   `yaml:"max_metadata_metrics"`
	MaxMetadataPerMetric int   `yaml:"max_metadata_per_metric"`
	MaxMetadataBytes     int64 `yaml:"max_metadata_bytes"`

	// MaxTargets bounds the scrape targets whose completeness is counted
	// (about 800 bytes each); samples of further targets are not counted.
	// Changes need a restart.
	MaxTargets int `yaml:"max_targets"`
}

// DefaultConfig returns the configuration `etcdgate serve` runs with when
// given no file.
func DefaultConfig() Config {
	lim := ingest.DefaultLimits()
	db := tsdb.DefaultOptions()
	rl := relabel.DefaultConfig()
	memLimit, _ := detectMemoryLimit("/")
	maxSeries, maxBytes := defaultHeadLimits(memLimit)
	inflightRequests, inflightBytes := defaultInflightLimits(memLimit)
	return Config{
		ListenAddress: "127.0.0.1:9390",
		DataDir:       "./data",
		LogLevel:      "info",
		Retention:     Duration(db.Retention),
		WAL:           WALConfig{Sync: string(db.WALSync), SyncInterval: Duration(db.WALSyncInterval), RecoveryInterval: Duration(db.WALRecoveryInterval)},
		Head: HeadConfig{
			OutOfOrderWindow:          Duration(db.Head.OutOfOrderWindow),
			CheckpointInterval:        Duration(db.CheckpointInterval),
			ShutdownCheckpointTimeout: Duration(db.ShutdownCheckpointTimeout),
			StalenessPeriod:           Duration(db.StalenessPeriod),
		},
		Limits: LimitsConfig{
			MaxCompressedBodyBytes:   lim.MaxCompressedBodyBytes,
			MaxDecompressedBodyBytes: lim.MaxDecompressedBodyBytes,
			MaxLabelsPerSeries:       lim.MaxLabelsPerSeries,
			MaxLabelNameLength:       lim.MaxLabelNameLength,
			MaxLabelValueLength:      lim.MaxLabelValueLength,
			MaxFutureDrift:           Duration(lim.MaxFutureDrift),
			MaxSeries:                maxSeries,
			MaxHeadBytes:             maxBytes,
			MaxSeriesPerRequest:      lim.MaxSeriesPerRequest,
			MaxLabelsPerRequest:      lim.MaxLabelsPerRequest,
			MaxSamplesPerRequest:     lim.MaxSamplesPerRequest,
			MaxInflightWriteRequests: inflightRequests,
			MaxInflightWriteBytes:    inflightBytes,
			MaxConcurrentWrites:      lim.MaxConcurrentWrites,
			WriteRequestTimeout:      Duration(lim.WriteRequestTimeout),
			MemoryLimitBytes:         memLimit,
			MaxMetadataMetrics:       db.Head.Metadata.MaxMetrics,
			MaxMetadataPerMetric:     db.Head.Metadata.MaxPerMetric,
			MaxMetadataBytes:         db.Head.Metadata.MaxBytes,
			MaxTargets:               ingest.DefaultMaxTargets,
		},
		Registry: RegistryConfig{
			ClusterLabel: rl.ClusterLabel,
			Defaults:     rl.Defaults,
			Etcd:         RegistryEtcdConfig{Prefix: "/etcdgate/clusters/", Limits: relabel.DefaultRecordLimits()},
		},
		Query:       defaultQueryConfig(),
		Ring:        defaultRingConfig(),
		RulesConfig: defaultRulesConfig(),
		Probe:       defaultProbeConfig(),

		ChunkCacheBytes:  db.ChunkCacheBytes,
		StoreCompression: db.StoreCompression,
	}
}

// defaultHeadLimits sizes the head to the machine: half of its memory for
// the head's accounted bytes (the rest covers the Go runtime's headroom,
// badger and queries), and one series per 1.2 KiB of memory (10M series
// on a 12 GiB share). Without a reading, no limit.
func defaultHeadLimits(memBytes int64) (maxSeries, maxHeadBytes int64) {
	if memBytes <= 0 {
		return 0, 0
	}
	return memBytes / 2 / 600, memBytes / 2
}

// applyMemoryLimit re-derives the defaults sized to memory from a
// memory_limit_bytes set in the file, for the keys the file leaves unset.
func (c *Config) applyMemoryLimit(data []byte) error {
	var set struct {
		Limits struct {
			MaxSeries                *int64 `yaml:"max_series"`
			MaxHeadBytes             *int64 `yaml:"max_head_bytes"`
			MaxInflightWriteRequests *int   `yaml:"max_inflight_write_requests"`
			MaxInflightWriteBytes    *int   `yaml:"max_inflight_write_bytes"`
			MemoryLimitBytes         *int64 `yaml:"memory_limit_bytes"`
		} `yaml:"limits"`
	}
	if err := yaml.Unmarshal(data, &set); err != nil {
		return err
	}
	l := set.Limits
	if l.MemoryLimitBytes == nil {
		return nil
	}
	if *l.MemoryLimitBytes <= 0 {
		return errors.New("limits: memory_limit_bytes must be positive")
	}
	maxSeries, maxBytes := defaultHeadLimits(*l.MemoryLimitBytes)
	requests, bytes := defaultInflightLimits(*l.MemoryLimitBytes)
	if l.MaxSeries == nil {
		c.Limits.MaxSeries = maxSeries
	}
	if l.MaxHeadBytes == nil {
		c.Limits.MaxHeadBytes = maxBytes
	}
	if l.MaxInflightWriteRequests == nil {
		c.Limits.MaxInflightWriteRequests = requests
	}
	if l.MaxInflightWriteBytes == nil {
		c.Limits.MaxInflightWriteBytes = bytes
	}
	return nil
}

// LoadConfig reads a config file over the defaults. Unknown keys are
// errors, reported with their line, so that a typo does not silently
// leave a default in force.
func LoadConfig(path string) (Config, error) { return loadConfig(path, nil) }

// loadConfig is LoadConfig with override applied to the file's settings
// before they are checked: serve's flags.
func loadConfig(path string, override func(*Config)) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		if override != nil {
			override(&cfg)
		}
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("parse config %s: %w", path, err)
	}
	if err := cfg.applyMemoryLimit(data); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if override != nil {
		override(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	// The registry file is named relative to the config, as Prometheus
	// names rule files, and checked here so that a reload with a broken
	// registry changes nothing and `check config` reports it.
	if f := cfg.Registry.File; f != "" && !filepath.IsAbs(f) {
		cfg.Registry.File = filepath.Join(filepath.Dir(path), f)
	}
	if cfg.Registry.File != "" {
		if _, err := relabel.LoadRegistryFile(cfg.Registry.File); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	// Rule and SLO files too, so that a broken one fails the reload.
	if err := cfg.RulesConfig.load(filepath.Dir(path)); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.Probe.resolvePaths(filepath.Dir(path))
	// The registry's etcd TLS files too, read once so that a missing one
	// fails the load and `check config`.
	resolveTLSPaths(&cfg.Registry.Etcd.TLS, filepath.Dir(path))
	if _, err := cfg.Registry.Etcd.TLS.tls().Load(); err != nil {
		return cfg, fmt.Errorf("config %s: registry.etcd: %w", path, err)
	}
	resolveTLSPaths(&cfg.Ring.Etcd.TLS, filepath.Dir(path))
	cfg.Ring.PeerClient.SetDirectory(filepath.Dir(path))
	if cfg.Ring.Enabled {
		if _, err := cfg.Ring.Etcd.TLS.tls().Load(); err != nil {
			return cfg, fmt.Errorf("config %s: ring.etcd.tls: %w", path, err)
		}
	}
	return cfg, nil
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.ListenAddress == "" {
		return errors.New("listen_address is empty")
	}
	if c.DataDir == "" {
		return errors.New("data_dir is empty")
	}
	if _, err := parseLogLevel(c.LogLevel); err != nil {
		return err
	}
	if c.Limits.MaxSeries < 0 || c.Limits.MaxHeadBytes < 0 || c.Limits.MemoryLimitBytes < 0 {
		return errors.New("limits: max_series, max_head_bytes and memory_limit_bytes must not be negative")
	}
	if c.Limits.MaxTargets < 1 {
		return fmt.Errorf("limits: max_targets %d must be at least 1", c.Limits.MaxTargets)
	}
	if err := c.DBOptions().Validate(); err != nil {
		return err
	}
	if err := c.IngestLimits().Validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	if err := c.RelabelConfig().Validate(); err != nil {
		return fmt.Errorf("relabel: %w", err)
	}
	if len(c.Registry.Etcd.Endpoints) > 0 && c.Registry.Etcd.Prefix == "" {
		return errors.New("registry: etcd prefix is empty")
	}
	if err := c.Registry.Etcd.validate(); err != nil {
		return err
	}
	if err := c.Query.Validate(); err != nil {
		return err
	}
	if c.Probe.RegistryTargets && c.Registry.File == "" && len(c.Registry.Etcd.Endpoints) == 0 {
		return errors.New("probe: registry_targets needs registry.file or registry.etcd.endpoints")
	}
	if err := c.Probe.Validate(); err != nil {
		return err
	}
	if err := c.Web.Validate(); err != nil {
		return err
	}
	if err := c.Ring.Validate(); err != nil {
		return err
	}
	return c.RulesConfig.Validate()
}

// RelabelEnabled reports whether any relabeling or registry key is set.
// Without them series are stored as sent, with no pipeline on the path.
func (c Config) RelabelEnabled() bool {
	return len(c.RelabelConfigs) > 0 || len(c.Sources) > 0 || len(c.SizeRules) > 0 ||
		c.Registry.File != "" || len(c.Registry.Etcd.Endpoints) > 0
}

// RelabelConfig translates the reloadable relabeling settings.
func (c Config) RelabelConfig() relabel.Config {
	defaults := make(map[string]string, len(c.Registry.Defaults))
	for n, v := range c.Registry.Defaults {
		if v != "" {
			defaults[n] = v
		}
	}
	return relabel.Config{
		RelabelConfigs: c.RelabelConfigs,
		Sources:        c.Sources,
		SizeRules:      c.SizeRules,
		ClusterLabel:   c.Registry.ClusterLabel,
		Defaults:       defaults,
	}
}

// DBOptions translates the storage settings.
func (c Config) DBOptions() tsdb.Options {
	o := tsdb.DefaultOptions()
	o.Head.OutOfOrderWindow = time.Duration(c.Head.OutOfOrderWindow)
	o.Head.Limits = c.HeadLimits()
	o.Head.Metadata = c.MetadataOptions()
	o.WALSync = tsdb.WALSync(c.WAL.Sync)
	o.WALSyncInterval = time.Duration(c.WAL.SyncInterval)
	o.WALRecoveryInterval = time.Duration(c.WAL.RecoveryInterval)
	o.CheckpointInterval = time.Duration(c.Head.CheckpointInterval)
	o.ShutdownCheckpointTimeout = time.Duration(c.Head.ShutdownCheckpointTimeout)
	o.StalenessPeriod = time.Duration(c.Head.StalenessPeriod)
	o.Retention = time.Duration(c.Retention)
	o.ChunkCacheBytes = c.ChunkCacheBytes
	o.StoreCompression = c.StoreCompression
	return o
}

// HeadLimits translates the head's ceiling.
func (c Config) HeadLimits() tsdb.HeadLimits {
	return tsdb.HeadLimits{MaxSeries: c.Limits.MaxSeries, MaxBytes: c.Limits.MaxHeadBytes}
}

// MetadataOptions translates the metadata bounds of the limits section.
func (c Config) MetadataOptions() tsdb.MetadataOptions {
	o := tsdb.DefaultMetadataOptions()
	o.MaxMetrics = c.Limits.MaxMetadataMetrics
	o.MaxPerMetric = c.Limits.MaxMetadataPerMetric
	o.MaxBytes = c.Limits.MaxMetadataBytes
	return o
}

// IngestLimits translates the limits section.
func (c Config) IngestLimits() ingest.Limits {
	return ingest.Limits{
		MaxCompressedBodyBytes:   c.Limits.MaxCompressedBodyBytes,
		MaxDecompressedBodyBytes: c.Limits.MaxDecompressedBodyBytes,
		MaxLabelsPerSeries:       c.Limits.MaxLabelsPerSeries,
		MaxLabelNameLength:       c.Limits.MaxLabelNameLength,
		MaxLabelValueLength:      c.Limits.MaxLabelValueLength,
		MaxFutureDrift:           time.Duration(c.Limits.MaxFutureDrift),
		MaxSeriesPerRequest:      c.Limits.MaxSeriesPerRequest,
		MaxLabelsPerRequest:      c.Limits.MaxLabelsPerRequest,
		MaxSamplesPerRequest:     c.Limits.MaxSamplesPerRequest,
		MaxInflightWriteRequests: c.Limits.MaxInflightWriteRequests,
		MaxInflightWriteBytes:    c.Limits.MaxInflightWriteBytes,
		MaxConcurrentWrites:      c.Limits.MaxConcurrentWrites,
		WriteRequestTimeout:      time.Duration(c.Limits.WriteRequestTimeout),
	}
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log_level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// Duration is a config duration in Prometheus's notation ("30s", "10m",
// "15d"). Parse errors carry the line of the offending value.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	var s string
	if err := node.Decode(&s); err != nil {
		return err
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q: want a number and a unit among ms, s, m, h, d, w, y", node.Line, s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }
