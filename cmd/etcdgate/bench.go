package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/etcdgate/etcdgate/bench"
)

const benchUsage = `usage: etcdgate bench [--scenario standard|10m] [--mode steady|ramp|churn|query]
                      --target NAME=URL [--target NAME=URL ...] [flags]

Writes a synthetic etcd fleet to each target in turn (remote write 1.0),
then prints a Markdown table comparing what the targets accepted and what
it cost them. A scenario sets defaults that the other flags override.

`

// benchFlags are the settings of `etcdgate bench` that are not options of
// the bench package: outputs and how targets are named.
type benchFlags struct {
	scenario string
	targets  targetList
	pids     pidList
	outJSON  string
	outSVG   string
	progress string
	maxRSS   string
}

func runBench(args []string, stdout, stderr io.Writer) int {
	o, f, err := parseBenchFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "etcdgate bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rep, err := bench.Run(ctx, o)
	if rep != nil && len(rep.Targets) > 0 {
		if werr := writeBenchOutputs(rep, f, stdout); werr != nil {
			fmt.Fprintf(stderr, "etcdgate bench: %v\n", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "etcdgate bench: %v\n", err)
		return 1
	}
	return 0
}

// parseBenchFlags starts from the scenario's options (or the defaults)
// and applies the flags given.
func parseBenchFlags(args []string, stderr io.Writer) (bench.Options, benchFlags, error) {
	var f benchFlags
	o := bench.DefaultOptions()
	if name := scenarioArg(args); name != "" {
		var err error
		if o, err = bench.Scenario(name); err != nil {
			return o, f, err
		}
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.scenario, "scenario", "", "preset: standard (~1,000,000 series, steady, 5m) or 10m (~10,000,000 series, steady, 4m)")
	fs.Var(&f.targets, "target", "a remote-write receiver, NAME=URL (base URL or its /api/v1/write); repeat to compare")
	fs.Var(&f.pids, "pid", "read RSS and CPU of a target from /proc: PID, or NAME=PID per target")
	fs.StringVar(&f.outJSON, "out-json", "", "write the report as JSON to this file")
	fs.StringVar(&f.outSVG, "out-svg", "", "write a chart of samples/s and RSS over time to this SVG file")
	fs.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto (a live line on a terminal), tty, plain or off")
	fs.DurationVar(&o.ProgressEvery, "progress-every", o.ProgressEvery, "period of plain progress lines")
	fs.StringVar(&f.maxRSS, "max-rss", "", "ramp: stop when the target's RSS exceeds this (e.g. 4GiB, 512MiB)")
	fs.Func("mode", "steady, ramp, churn or query (default steady)", func(s string) error { o.Mode = bench.Mode(s); return nil })
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long to run against each target (ramp: upper bound, 0 for none)")
	fs.IntVar(&o.Fleet.Clusters, "clusters", o.Fleet.Clusters, "etcd clusters in the fleet (ramp: at the start)")
	fs.IntVar(&o.Fleet.Members, "members", o.Fleet.Members, "members per cluster")
	fs.IntVar(&o.Fleet.Series, "series", o.Fleet.Series, "if > 0, enough clusters for this many series (overrides --clusters)")
	fs.Uint64Var(&o.Fleet.Seed, "seed", o.Fleet.Seed, "seed of the fleet's values")
	fs.Float64Var(&o.Fleet.LeaderChangeProb, "leader-change-prob", o.Fleet.LeaderChangeProb, "chance per cluster and scrape that the leader moves")
	fs.Float64Var(&o.Fleet.SlowFsyncProb, "slow-fsync-prob", o.Fleet.SlowFsyncProb, "chance per member and scrape of a slow disk")
	fs.DurationVar(&o.Send.Interval, "interval", o.Send.Interval, "scrape interval; 0 sends as fast as the target takes it")
	fs.DurationVar(&o.Send.Backfill, "backfill", 0, "with --interval 0: stamp rounds --backfill-step apart from this long ago, as fast as possible")
	fs.DurationVar(&o.Send.BackfillStep, "backfill-step", 15*time.Second, "spacing of backfilled rounds")
	fs.IntVar(&o.Send.Senders, "senders", o.Send.Senders, "concurrent remote-write clients, each owning a shard of the fleet")
	fs.IntVar(&o.Send.MaxSamplesPerSend, "max-samples-per-send", o.Send.MaxSamplesPerSend, "samples per request at most")
	fs.DurationVar(&o.Send.BatchSendDeadline, "batch-send-deadline", o.Send.BatchSendDeadline, "longest wait of a partial batch")
	fs.DurationVar(&o.Send.MinBackoff, "min-backoff", o.Send.MinBackoff, "first retry delay after 429 or 5xx")
	fs.DurationVar(&o.Send.MaxBackoff, "max-backoff", o.Send.MaxBackoff, "longest retry delay")
	fs.DurationVar(&o.Send.Timeout, "timeout", o.Send.Timeout, "timeout of one request")
	fs.IntVar(&o.Ramp.StepClusters, "ramp-step", o.Ramp.StepClusters, "ramp: clusters added per step")
	fs.DurationVar(&o.Ramp.StepDuration, "step-duration", o.Ramp.StepDuration, "ramp: length of a step")
	fs.IntVar(&o.Ramp.MaxClusters, "max-clusters", o.Ramp.MaxClusters, "ramp: stop at this many clusters (0: no limit)")
	fs.Float64Var(&o.Churn.ClustersPerMinute, "churn-rate", o.Churn.ClustersPerMinute, "churn: clusters replaced per minute")
	fs.DurationVar(&o.Query.Every, "query-every", o.Query.Every, "query: pause between rounds of the query list")
	fs.DurationVar(&o.Query.Range, "query-range", o.Query.Range, "query: range of the query_range calls")
	fs.DurationVar(&o.Query.Step, "query-step", o.Query.Step, "query: step of the query_range calls")
	fs.DurationVar(&o.SampleEvery, "sample-every", o.SampleEvery, "period of reading the target's RSS and CPU")
	fs.DurationVar(&o.Drain, "drain", o.Drain, "longest wait for requests in flight at the end")
	if err := fs.Parse(args); err != nil {
		return o, f, err
	}
	if fs.NArg() > 0 {
		return o, f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := f.apply(&o, stderr); err != nil {
		return o, f, err
	}
	return o, f, o.Validate()
}

// apply moves the flags that need conversion into the options.
func (f *benchFlags) apply(o *bench.Options, stderr io.Writer) error {
	o.Targets = f.targets
	if err := f.pids.apply(o.Targets); err != nil {
		return err
	}
	if f.maxRSS != "" {
		n, err := parseBytes(f.maxRSS)
		if err != nil {
			return fmt.Errorf("--max-rss: %w", err)
		}
		o.Ramp.MaxRSS = n
	}
	switch f.progress {
	case "off":
	case "auto":
		o.Progress = stderr
		o.ProgressTTY = isTerminal(stderr)
	case "tty", "plain":
		o.Progress, o.ProgressTTY = stderr, f.progress == "tty"
	default:
		return fmt.Errorf("--progress %q: want auto, tty, plain or off", f.progress)
	}
	if o.ProgressTTY {
		o.ProgressEvery = time.Second
	}
	return nil
}

func writeBenchOutputs(rep *bench.Report, f benchFlags, stdout io.Writer) error {
	if err := rep.WriteMarkdown(stdout); err != nil {
		return err
	}
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{f.outJSON, rep.WriteJSON}, {f.outSVG, rep.WriteSVG}} {
		if out.path == "" {
			continue
		}
		file, err := os.Create(out.path)
		if err != nil {
			return err
		}
		if err := out.write(file); err != nil {
			file.Close()
			return err
		}
		if err := file.Close(); err != nil {
			return err
		}
	}
	return nil
}

// scenarioArg finds --scenario among the arguments before they are
// parsed, since the scenario decides the defaults of the other flags.
func scenarioArg(args []string) string {
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if v, ok := strings.CutPrefix(a, "scenario="); ok {
			return v
		}
		if a == "scenario" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// targetList is the repeatable --target NAME=URL.
type targetList []bench.Target

func (l *targetList) String() string { return fmt.Sprint(*l) }

func (l *targetList) Set(s string) error {
	name, url, ok := strings.Cut(s, "=")
	if !ok || name == "" || url == "" {
		return fmt.Errorf("want NAME=URL, got %q", s)
	}
	*l = append(*l, bench.Target{Name: name, URL: url})
	return nil
}

// pidList is the repeatable --pid PID or NAME=PID.
type pidList []string

func (l *pidList) String() string { return strings.Join(*l, ",") }

func (l *pidList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func (l pidList) apply(targets []bench.Target) error {
	for _, s := range l {
		name, pid, named := strings.Cut(s, "=")
		if !named {
			pid = name
		}
		n, err := strconv.Atoi(pid)
		if err != nil || n <= 0 {
			return fmt.Errorf("--pid %q: want PID or NAME=PID", s)
		}
		found := false
		for i := range targets {
			if (!named && len(targets) == 1) || targets[i].Name == name {
				targets[i].PID, found = n, true
			}
		}
		if !found {
			return fmt.Errorf("--pid %q: no such target (an unnamed PID needs exactly one target)", s)
		}
	}
	return nil
}

// parseBytes reads a size such as 512MiB, 4GiB, 2GB or a plain count.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult, num := 1.0, strings.TrimSpace(s)
	for _, u := range units {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			mult, num = u.mult, strings.TrimSpace(v)
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(v * mult), nil
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
