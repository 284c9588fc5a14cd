package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// targetSample is what a target says about itself at one moment. NaN
// marks a figure the target does not expose.
type targetSample struct {
	at         time.Time
	rss        float64 // resident memory, bytes
	cpuSeconds float64 // user+system CPU since start
	headSeries float64 // active series in its storage
	ingested   float64 // its own counter of samples taken in
}

// targetProbe reads a target's resource use: from /proc when its PID is
// known, else from the process_* series of its /metrics. Head series and
// ingested samples always come from /metrics.
type targetProbe struct {
	metricsURL string
	pid        int
	http       *http.Client
	// The self-metrics the harness knows, first match wins: etcdgate,
	// Prometheus (its receiver appends to the head), VictoriaMetrics.
	headSeries, ingested []string
}

func newTargetProbe(t Target) *targetProbe {
	return &targetProbe{
		metricsURL: baseURL(t.URL) + "/metrics", pid: t.PID, http: &http.Client{Timeout: 10 * time.Second},
		headSeries: []string{"etcdgate_tsdb_head_series", "prometheus_tsdb_head_series", `vm_cache_entries{type="storage/hour_metric_ids"}`},
		ingested:   []string{"etcdgate_ingest_samples_accepted_total", `prometheus_tsdb_head_samples_appended_total{type="float"}`, "prometheus_tsdb_head_samples_appended_total", `vm_rows_inserted_total{type="promremotewrite"}`},
	}
}

// read takes one sample. An unreachable /metrics is an error only when
// there is no PID to fall back on.
func (p *targetProbe) read(ctx context.Context) (targetSample, error) {
	s := targetSample{at: time.Now(), rss: math.NaN(), cpuSeconds: math.NaN(), headSeries: math.NaN(), ingested: math.NaN()}
	page, err := p.scrape(ctx)
	if err == nil {
		s.rss = page.value("process_resident_memory_bytes")
		s.cpuSeconds = page.value("process_cpu_seconds_total")
		s.headSeries = page.first(p.headSeries)
		s.ingested = page.first(p.ingested)
	}
	if p.pid > 0 {
		if rss, cpu, perr := readProc(p.pid); perr == nil {
			s.rss, s.cpuSeconds = rss, cpu
			err = nil
		} else if err != nil {
			err = fmt.Errorf("%v; %w", err, perr)
		}
	}
	return s, err
}

// metricsPage is a parsed /metrics page: series name (with labels for
// the few lookups that need them) to value.
type metricsPage map[string]float64

func (m metricsPage) value(key string) float64 {
	if v, ok := m[key]; ok {
		return v
	}
	return math.NaN()
}

func (m metricsPage) first(keys []string) float64 {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return math.NaN()
}

func (p *targetProbe) scrape(ctx context.Context) (metricsPage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", p.metricsURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d: %v", p.metricsURL, resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p.metricsURL, err)
	}
	page := metricsPage{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			page[seriesKey(name, m)] = metricValue(m)
		}
	}
	return page, nil
}

func seriesKey(name string, m *dto.Metric) string {
	if len(m.GetLabel()) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name + "{")
	for i, l := range m.GetLabel() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName() + "=" + strconv.Quote(l.GetValue()))
	}
	b.WriteString("}")
	return b.String()
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}

// readProc reads resident memory and CPU time of a local process. CPU
// ticks are USER_HZ, which is 100 on every Linux architecture Go runs on.
func readProc(pid int) (rss, cpuSeconds float64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/%d: %w", pid, err)
	}
	rss = math.NaN()
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			rss = kb * 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	// The command name may hold spaces: fields are counted after its ')'.
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return rss, (utime + stime) / 100, nil
}

// baseURL strips a trailing slash and a trailing /api/v1/write, so a
// target may be given by its base or its write URL.
func baseURL(u string) string {
	u = strings.TrimSuffix(u, "/")
	return strings.TrimSuffix(u, "/api/v1/write")
}
