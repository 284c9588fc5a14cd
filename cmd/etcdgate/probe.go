package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/probe"
)

// probeFlags are the settings of `etcdgate probe`.
type probeFlags struct {
	configFile string
	target     string
	inspection string
	cluster    string
	tls        ProbeTLSConfig
	timeout    time.Duration
	output     string
	series     bool
}

// runProbe runs one inspection once against one cluster and prints its
// record: for an operator's question now, with the settings the
// gateway would use (from --config, or the defaults).
func runProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f probeFlags
	fs.StringVar(&f.configFile, "config", "", "configuration file: inspection settings, and targets --target may name")
	fs.StringVar(&f.target, "target", "", "comma-separated etcd client URLs, or the cluster of a target in --config (required)")
	fs.StringVar(&f.inspection, "inspection", "", "inspection to run: "+strings.Join(probe.Names(), ", ")+" (required)")
	fs.StringVar(&f.cluster, "cluster", "", "cluster label of the record and series (default: the first endpoint's host)")
	fs.StringVar(&f.tls.CAFile, "ca-file", "", "CA certificate (PEM) to verify the members with")
	fs.StringVar(&f.tls.CertFile, "cert-file", "", "client certificate (PEM)")
	fs.StringVar(&f.tls.KeyFile, "key-file", "", "client key (PEM)")
	fs.DurationVar(&f.timeout, "timeout", 0, "bound on the whole run (default: the inspection's configured timeout)")
	fs.StringVar(&f.output, "output", "text", "text or json")
	fs.BoolVar(&f.series, "series", false, "also print the series the run produces")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target, in, timeout, err := f.resolve()
	if err != nil {
		fmt.Fprintf(stderr, "etcdgate probe: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	col := &seriesPrinter{}
	runner := probe.NewRunner(probe.RunnerOptions{Emitter: col})
	rec, _ := runner.Run(ctx, target, in, timeout, nil)
	if err := printRecord(stdout, f.output, rec); err != nil {
		fmt.Fprintf(stderr, "etcdgate probe: %v\n", err)
		return 1
	}
	if f.series {
		col.print(stdout)
	}
	if rec.Status == probe.StatusFailed {
		return 1
	}
	return 0
}

// resolve checks the flags and builds the target and the inspection.
func (f probeFlags) resolve() (probe.Target, probe.Inspection, time.Duration, error) {
	var zero probe.Target
	if f.target == "" || f.inspection == "" {
		return zero, nil, 0, errors.New("--target and --inspection are required")
	}
	if f.output != "text" && f.output != "json" {
		return zero, nil, 0, fmt.Errorf("--output %q: want text or json", f.output)
	}
	if f.timeout < 0 {
		return zero, nil, 0, fmt.Errorf("--timeout %s: must be positive", f.timeout)
	}
	cfg, err := LoadConfig(f.configFile)
	if err != nil {
		return zero, nil, 0, err
	}
	in, err := cfg.Probe.Settings().Inspection(f.inspection)
	if err != nil {
		return zero, nil, 0, fmt.Errorf("--inspection: %w", err)
	}
	timeout := f.timeout
	if timeout == 0 {
		timeout = time.Duration(cfg.Probe.schedules()[f.inspection].Timeout)
	}
	target, err := f.buildTarget(cfg)
	return target, in, timeout, err
}

// buildTarget is the configured target named by --target, or one made of
// the URLs and TLS flags given.
func (f probeFlags) buildTarget(cfg Config) (probe.Target, error) {
	if !strings.Contains(f.target, "://") {
		for _, t := range cfg.Probe.ProbeTargets(nil) {
			if t.Cluster == f.target {
				return t, nil
			}
		}
		return probe.Target{}, fmt.Errorf("--target %q: neither a list of URLs (http://host:port,...) nor a target of the config", f.target)
	}
	t := probe.Target{Cluster: f.cluster, Endpoints: strings.Split(f.target, ","), TLS: f.tls.tls()}
	if t.Cluster == "" {
		t.Cluster = strings.TrimPrefix(strings.TrimPrefix(t.Endpoints[0], "http://"), "https://")
	}
	if err := t.Validate(probe.Names()); err != nil {
		return t, fmt.Errorf("--target: %w", err)
	}
	return t, nil
}

func printRecord(w io.Writer, output string, rec probe.Record) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rec)
	}
	_, err := fmt.Fprintf(w, "cluster:    %s\ninspection: %s\nstatus:     %s\nstart:      %s\nduration:   %s\nload:       %d requests, %d bytes read\nmessage:    %s\n",
		rec.Cluster, rec.Inspection, rec.Status, rec.Start.Format(time.RFC3339), rec.End.Sub(rec.Start).Round(time.Millisecond),
		rec.Requests, rec.BytesRead, rec.Message)
	return err
}

// seriesPrinter keeps a run's series to print them.
type seriesPrinter struct{ series []probe.Series }

func (p *seriesPrinter) Emit(series []probe.Series) error {
	p.series = append(p.series, series...)
	return nil
}

func (p *seriesPrinter) print(w io.Writer) {
	for _, s := range p.series {
		var ls []string
		s.Labels.Range(func(l labels.Label) {
			if l.Name != model.MetricNameLabel {
				ls = append(ls, fmt.Sprintf("%s=%q", l.Name, l.Value))
			}
		})
		for _, smp := range s.Samples {
			fmt.Fprintf(w, "%s{%s} %g\n", s.Labels.Get(model.MetricNameLabel), strings.Join(ls, ","), smp.V)
		}
	}
}
