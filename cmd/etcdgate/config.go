package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/ingest"
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

	Head   HeadConfig   `yaml:"head"`
	Limits LimitsConfig `yaml:"limits"`
}

// HeadConfig configures the in-memory head. Changing it needs a restart.
type HeadConfig struct {
	// OutOfOrderWindow is how far behind its newest sample a series still
	// accepts samples; 0 refuses every out-of-order sample.
	OutOfOrderWindow Duration `yaml:"out_of_order_window"`
}

// LimitsConfig bounds requests and series. Reloadable.
type LimitsConfig struct {
	MaxCompressedBodyBytes   int      `yaml:"max_compressed_body_bytes"`
	MaxDecompressedBodyBytes int      `yaml:"max_decompressed_body_bytes"`
	MaxLabelsPerSeries       int      `yaml:"max_labels_per_series"`
	MaxLabelNameLength       int      `yaml:"max_label_name_length"`
	MaxLabelValueLength      int      `yaml:"max_label_value_length"`
	MaxFutureDrift           Duration `yaml:"max_future_drift"`
}

// DefaultConfig returns the configuration `etcdgate serve` runs with when
// given no file.
func DefaultConfig() Config {
	lim := ingest.DefaultLimits()
	return Config{
		ListenAddress: "127.0.0.1:9390",
		DataDir:       "./data",
		LogLevel:      "info",
		Head: HeadConfig{
			OutOfOrderWindow: Duration(tsdb.DefaultHeadOptions().OutOfOrderWindow),
		},
		Limits: LimitsConfig{
			MaxCompressedBodyBytes:   lim.MaxCompressedBodyBytes,
			MaxDecompressedBodyBytes: lim.MaxDecompressedBodyBytes,
			MaxLabelsPerSeries:       lim.MaxLabelsPerSeries,
			MaxLabelNameLength:       lim.MaxLabelNameLength,
			MaxLabelValueLength:      lim.MaxLabelValueLength,
			MaxFutureDrift:           Duration(lim.MaxFutureDrift),
		},
	}
}

// LoadConfig reads a config file over the defaults. Unknown keys are
// errors, reported with their line, so that a typo does not silently
// leave a default in force.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
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
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
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
	if err := c.HeadOptions().Validate(); err != nil {
		return fmt.Errorf("head: %w", err)
	}
	if err := c.IngestLimits().Validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	return nil
}

// HeadOptions translates the head section.
func (c Config) HeadOptions() tsdb.HeadOptions {
	o := tsdb.DefaultHeadOptions()
	o.OutOfOrderWindow = time.Duration(c.Head.OutOfOrderWindow)
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
