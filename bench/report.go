package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"time"
)

// Report is the outcome of a run: the fleet, how it was sent and what
// each target did with it. Figures a target does not expose are null.
type Report struct {
	Mode            Mode           `json:"mode"`
	Scenario        string         `json:"scenario,omitempty"`
	Started         time.Time      `json:"started"`
	DurationSeconds float64        `json:"duration_seconds"`
	Fleet           FleetReport    `json:"fleet"`
	Send            SendReport     `json:"send"`
	Machine         MachineReport  `json:"machine"`
	Targets         []TargetReport `json:"targets"`
}

// FleetReport describes the synthetic fleet at the start of the run.
type FleetReport struct {
	Clusters          int `json:"clusters"`
	MembersPerCluster int `json:"members_per_cluster"`
	// SeriesPerMember is what a member writes per scrape: what the etcd
	// member exposes (EtcdSeriesPerMember, as in the capture of a real
	// etcd) plus the series Prometheus adds per scrape (up, scrape_*).
	SeriesPerMember     int `json:"series_per_member"`
	EtcdSeriesPerMember int `json:"etcd_series_per_member"`
	// CapturedSeriesPerMember is what the captured real etcd member (of
	// a 3-member cluster) exposed: members of other cluster sizes differ
	// by their peer series.
	CapturedSeriesPerMember int      `json:"captured_series_per_member"`
	ScrapeSeriesPerMember   int      `json:"scrape_series_per_member"`
	Series                  int      `json:"series"`
	Families                []Family `json:"families"`
}

// SendReport describes the senders.
type SendReport struct {
	Senders           int     `json:"senders"`
	MaxSamplesPerSend int     `json:"max_samples_per_send"`
	IntervalSeconds   float64 `json:"interval_seconds"`
}

// MachineReport describes where the harness ran.
type MachineReport struct {
	GoVersion  string `json:"go_version"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
}

// TargetReport is what one target did with the fleet.
type TargetReport struct {
	Name           string  `json:"name"`
	URL            string  `json:"url"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// Samples the harness sent, the target accepted (2xx, or the written
	// count of a partial 4xx), refused with a non-retryable 4xx, or left
	// unanswered when the run ended.
	SamplesSent       int64   `json:"samples_sent"`
	SamplesAccepted   int64   `json:"samples_accepted"`
	SamplesDropped    int64   `json:"samples_dropped"`
	SamplesFailed     int64   `json:"samples_failed"`
	AcceptedPerSecond float64 `json:"accepted_per_second"`
	// SeriesWritten counts the distinct series the harness wrote (those of
	// the members scraped at least once);
	// SeriesCreated the growth of the target's head series meanwhile.
	SeriesWritten  int64             `json:"series_written"`
	SeriesCreated  *float64          `json:"series_created"`
	HeadSeries     *float64          `json:"head_series"`
	TargetIngested *float64          `json:"target_ingested_samples"`
	Requests       map[string]int64  `json:"requests_by_code"`
	Retries        map[string]int64  `json:"retries_by_code"`
	DroppedByCode  map[string]int64  `json:"dropped_samples_by_code"`
	NetworkErrors  int64             `json:"network_errors"`
	LastErrors     map[string]string `json:"last_errors,omitempty"`
	LatencyP50Ms   float64           `json:"latency_p50_ms"`
	LatencyP99Ms   float64           `json:"latency_p99_ms"`
	MaxLagSeconds  float64           `json:"max_lag_seconds"`
	// MaxLagSecondHalf is the furthest a scrape ran behind in the second
	// half of the run, from the timeline: past the creation of a fleet's
	// series and the catching up after it, what a steady node keeps.
	MaxLagSecondHalf   float64  `json:"max_lag_seconds_second_half"`
	RSSBytes           *float64 `json:"rss_bytes"`
	MaxRSSBytes        *float64 `json:"max_rss_bytes"`
	CPUCores           *float64 `json:"cpu_cores"`
	CPUMicrosPerSample *float64 `json:"cpu_us_per_sample"`
	BytesPerSeries     *float64 `json:"rss_bytes_per_head_series"`
	// The harness's own CPU (user+system) over the run, per sample sent.
	HarnessCPUSeconds      float64       `json:"harness_cpu_seconds"`
	HarnessMicrosPerSample float64       `json:"harness_cpu_us_per_sample"`
	StopReason             string        `json:"stop_reason,omitempty"`
	Steps                  []StepReport  `json:"steps,omitempty"`
	LastHealthyStep        *int          `json:"last_healthy_step,omitempty"`
	Queries                []QueryReport `json:"queries,omitempty"`
	Timeline               []Point       `json:"timeline"`
}

// StepReport is one step of a ramp.
type StepReport struct {
	Step              int      `json:"step"`
	Clusters          int      `json:"clusters"`
	Series            int      `json:"series"`
	AcceptedPerSecond float64  `json:"accepted_per_second"`
	Rejected          int64    `json:"rejected_requests"`
	MaxLagSeconds     float64  `json:"max_lag_seconds"`
	LatencyP99Ms      float64  `json:"latency_p99_ms"`
	RSSBytes          *float64 `json:"rss_bytes"`
	Healthy           bool     `json:"healthy"`
	Reason            string   `json:"reason,omitempty"`
}

// QueryReport is the outcome of one query of the list, instant or range.
type QueryReport struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`
	Expr      string  `json:"expr"`
	OK        int     `json:"ok"`
	Errors    int     `json:"errors"`
	LastError string  `json:"last_error,omitempty"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// Point is one reading of the timeline the SVG chart draws.
type Point struct {
	Seconds float64 `json:"seconds"`
	// AcceptedPerSecond is the rate since the previous point; null for a
	// reading too close to it to give a rate (the one after the drain).
	AcceptedPerSecond *float64 `json:"accepted_per_second"`
	RSSBytes          *float64 `json:"rss_bytes"`
	HeadSeries        *float64 `json:"head_series"`
	CPUCores          *float64 `json:"cpu_cores"`
	// MaxLagSeconds is the furthest a scrape ran behind its due time
	// since the previous point.
	MaxLagSeconds float64 `json:"max_lag_seconds"`
	accepted      float64 // samples accepted so far, for the next point's rate
}

func newReport(o *Options, l *layout, clusters int) *Report {
	scrape := 0
	for _, s := range l.specs {
		if s.t.scrape {
			scrape++
		}
	}
	captured := 0
	for _, f := range l.ts.families {
		captured += f.Series
	}
	return &Report{
		Mode: o.Mode, Scenario: o.Scenario, Started: time.Now().UTC(), DurationSeconds: o.Duration.Seconds(),
		Fleet: FleetReport{
			Clusters: clusters, MembersPerCluster: o.Fleet.Members, SeriesPerMember: l.seriesPerMember(),
			EtcdSeriesPerMember: l.seriesPerMember() - scrape, ScrapeSeriesPerMember: scrape, CapturedSeriesPerMember: captured,
			Series: clusters * o.Fleet.Members * l.seriesPerMember(), Families: l.ts.families,
		},
		Send:    SendReport{Senders: o.Send.Senders, MaxSamplesPerSend: o.Send.MaxSamplesPerSend, IntervalSeconds: o.Send.Interval.Seconds()},
		Machine: MachineReport{GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)},
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// known returns nil for NaN, which JSON cannot carry.
func known(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func codeMap[V any](m map[int]V) map[string]V {
	out := make(map[string]V, len(m))
	for c, v := range m {
		k := strconv.Itoa(c)
		if c == 0 {
			k = "network"
		}
		out[k] = v
	}
	return out
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func nan() float64 { return math.NaN() }

func isNaN(v float64) bool { return math.IsNaN(v) }
