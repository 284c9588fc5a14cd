package bench

import (
	"fmt"
	"io"
	"net/url"
	"time"
)

// Mode is the load profile of a run.
type Mode string

const (
	// ModeSteady writes a fixed fleet for the run's duration.
	ModeSteady Mode = "steady"
	// ModeRamp grows the fleet step by step until the target rejects,
	// falls behind the scrape interval or exceeds the memory limit.
	ModeRamp Mode = "ramp"
	// ModeChurn replaces clusters at a rate, so new series keep arriving.
	ModeChurn Mode = "churn"
	// ModeQuery writes a fixed fleet and runs etcd SLO and dashboard
	// queries against the target meanwhile.
	ModeQuery Mode = "query"
)

// Target is one remote-write receiver under test.
type Target struct {
	// Name labels the target in the report ("etcdgate", "prometheus").
	Name string
	// URL is the base URL: writes go to URL/api/v1/write, self-metrics
	// are read from URL/metrics and queries go to URL/api/v1/query.
	URL string
	// PID, when not 0, is the target's process: RSS and CPU are then read
	// from /proc rather than from its /metrics.
	PID int
}

// FleetOptions shape the synthetic etcd fleet.
type FleetOptions struct {
	// Clusters is the number of etcd clusters; Members the members of each.
	Clusters, Members int
	// Series, when > 0, replaces Clusters with the number of clusters
	// whose members expose at least this many series.
	Series int
	// Regions are spread over the clusters as the region label.
	Regions []string
	// Seed makes the fleet's values reproducible.
	Seed uint64
	// LeaderChangeProb is the chance per cluster and scrape that the
	// leader moves; SlowFsyncProb the chance per member and scrape that
	// its disk is slow, shifting fsync and commit histograms upward.
	LeaderChangeProb, SlowFsyncProb float64
}

// SendOptions shape the senders, after Prometheus's queue_config.
type SendOptions struct {
	// Senders is the number of concurrent remote-write clients; each owns
	// a shard of the fleet's members and has one request in flight.
	Senders int
	// MaxSamplesPerSend caps a request (Prometheus: max_samples_per_send).
	MaxSamplesPerSend int
	// Interval is the scrape interval; 0 scrapes as fast as sends allow.
	Interval time.Duration
	// Backfill, with Interval 0, stamps rounds BackfillStep apart
	// starting Backfill before the run, sent as fast as the target takes
	// them: hours of regularly spaced samples in minutes, which is what
	// closes and persists chunks (disk bytes per sample).
	Backfill, BackfillStep time.Duration
	// BatchSendDeadline is how long a partial batch may wait for more
	// samples (Prometheus: batch_send_deadline).
	BatchSendDeadline time.Duration
	// MinBackoff and MaxBackoff bound the exponential back-off between
	// retries of a request answered 429 or 5xx.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one HTTP request (Prometheus: remote_timeout).
	Timeout time.Duration
}

// RampOptions shape ModeRamp.
type RampOptions struct {
	// StepClusters clusters are added every StepDuration, starting from
	// FleetOptions.Clusters, up to MaxClusters (0: no limit).
	StepClusters int
	StepDuration time.Duration
	MaxClusters  int
	// MaxRSS ends the ramp when the target's resident memory exceeds it
	// (bytes; 0: no limit).
	MaxRSS int64
}

// ChurnOptions shape ModeChurn.
type ChurnOptions struct {
	// ClustersPerMinute clusters are replaced by new ones (new names, so
	// new series) every minute; the replaced ones get stale markers.
	ClustersPerMinute float64
}

// QueryOptions shape ModeQuery.
type QueryOptions struct {
	// Every is the pause between two rounds of the query list.
	Every time.Duration
	// Range and Step shape the query_range calls, as a dashboard would.
	Range, Step time.Duration
}

// Options configure a run.
type Options struct {
	Mode Mode
	// Scenario names a preset in the report ("standard"); may be empty.
	Scenario string
	Targets  []Target
	// Duration is the length of the run against each target (for ramp,
	// the upper bound of all its steps together; 0: steps alone decide).
	Duration time.Duration
	Fleet    FleetOptions
	Send     SendOptions
	Ramp     RampOptions
	Churn    ChurnOptions
	Query    QueryOptions
	// SampleEvery is the period of reading the target's RSS and CPU.
	SampleEvery time.Duration
	// Drain bounds the wait for requests in flight at the end of a run.
	Drain time.Duration
	// Progress receives the live progress line; nil prints nothing.
	// ProgressTTY redraws one line in place instead of printing a line
	// every ProgressEvery.
	Progress      io.Writer
	ProgressTTY   bool
	ProgressEvery time.Duration
}

// DefaultOptions returns a small steady run with Prometheus's defaults
// for sending.
func DefaultOptions() Options {
	return Options{
		Mode:     ModeSteady,
		Duration: time.Minute,
		Fleet: FleetOptions{
			Clusters:         10,
			Members:          3,
			Regions:          []string{"eu-west-1", "us-east-1", "ap-south-1", "us-west-2", "eu-central-1"},
			Seed:             1,
			LeaderChangeProb: 0.0005,
			SlowFsyncProb:    0.002,
		},
		Send: SendOptions{
			Senders:           8,
			MaxSamplesPerSend: 2000,
			Interval:          15 * time.Second,
			BatchSendDeadline: 5 * time.Second,
			MinBackoff:        30 * time.Millisecond,
			MaxBackoff:        5 * time.Second,
			Timeout:           30 * time.Second,
		},
		Ramp:          RampOptions{StepClusters: 10, StepDuration: time.Minute},
		Churn:         ChurnOptions{ClustersPerMinute: 6},
		Query:         QueryOptions{Every: 10 * time.Second, Range: time.Hour, Step: 15 * time.Second},
		SampleEvery:   5 * time.Second,
		Drain:         30 * time.Second,
		ProgressEvery: 10 * time.Second,
	}
}

// Scenario returns the named preset. "standard" is the documented run of
// `make bench`: a steady fleet of about 1,000,000 series at a 15 s
// scrape interval for 5 minutes. "10m" is the one-node capacity target:
// about 10,000,000 series (1,822 clusters of 3 members) at 15 s, 667k
// samples/s, for 4 minutes after their creation.
func Scenario(name string) (Options, error) {
	o := DefaultOptions()
	switch name {
	case "standard":
		o.Scenario = name
		o.Fleet.Series = 1_000_000
		o.Duration = 5 * time.Minute
		o.Send.Senders = 16
	case "10m":
		o.Scenario = name
		o.Fleet.Series = 10_000_000
		o.Duration = 4 * time.Minute
		o.Send.Senders = 64
	default:
		return o, fmt.Errorf("%w: unknown scenario %q (known: standard, 10m)", ErrInvalidOptions, name)
	}
	return o, nil
}

// Validate reports the first inconsistent setting.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch o.Mode {
	case ModeSteady, ModeRamp, ModeChurn, ModeQuery:
	default:
		return bad("unknown mode %q (known: steady, ramp, churn, query)", o.Mode)
	}
	if len(o.Targets) == 0 {
		return bad("no target")
	}
	seen := map[string]bool{}
	for _, t := range o.Targets {
		if t.Name == "" || seen[t.Name] {
			return bad("target names must be distinct and not empty: %q", t.Name)
		}
		seen[t.Name] = true
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("target %s: URL %q is not an http(s) URL", t.Name, t.URL)
		}
	}
	f, s := o.Fleet, o.Send
	switch {
	case f.Clusters < 1 && f.Series < 1:
		return bad("clusters must be at least 1")
	case f.Members < 1 || f.Members > 9:
		return bad("members per cluster must be 1 to 9, not %d", f.Members)
	case len(f.Regions) == 0:
		return bad("no region")
	case f.LeaderChangeProb < 0 || f.LeaderChangeProb > 1 || f.SlowFsyncProb < 0 || f.SlowFsyncProb > 1:
		return bad("probabilities must be within [0, 1]")
	case s.Senders < 1:
		return bad("senders must be at least 1")
	case s.MaxSamplesPerSend < 1:
		return bad("max samples per send must be at least 1")
	case s.Interval < 0 || s.BatchSendDeadline <= 0 || s.Timeout <= 0:
		return bad("interval must be >= 0, batch send deadline and timeout > 0")
	case s.Backfill < 0 || (s.Backfill > 0 && (s.Interval != 0 || s.BackfillStep <= 0)):
		return bad("backfill needs interval 0 and a positive backfill step")
	case s.MinBackoff <= 0 || s.MaxBackoff < s.MinBackoff:
		return bad("back-off must satisfy 0 < min <= max")
	case o.Duration < 0 || (o.Duration == 0 && o.Mode != ModeRamp):
		return bad("duration must be > 0")
	case o.SampleEvery <= 0 || o.Drain <= 0:
		return bad("sample period and drain must be > 0")
	case o.Progress != nil && o.ProgressEvery <= 0:
		return bad("progress period must be > 0")
	}
	switch o.Mode {
	case ModeRamp:
		if o.Ramp.StepClusters < 1 || o.Ramp.StepDuration <= 0 || o.Ramp.MaxRSS < 0 {
			return bad("ramp needs step clusters >= 1, step duration > 0 and max RSS >= 0")
		}
		if o.Duration == 0 && o.Ramp.MaxClusters == 0 && o.Ramp.MaxRSS == 0 {
			return bad("ramp needs an end: duration, max clusters or max RSS")
		}
	case ModeChurn:
		if o.Churn.ClustersPerMinute <= 0 {
			return bad("churn needs clusters per minute > 0")
		}
	case ModeQuery:
		if o.Query.Every <= 0 || o.Query.Range <= 0 || o.Query.Step <= 0 {
			return bad("query period, range and step must be > 0")
		}
	}
	return nil
}
