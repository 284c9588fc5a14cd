package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// row is one line of the Markdown comparison: a figure per target.
type row struct {
	name    string
	values  []float64 // NaN: unknown; used for the ratios
	text    []string  // as printed
	noRatio bool
}

// WriteMarkdown writes the report as Markdown: the fleet, a table with
// one column per target (and the ratio of each to the first), then the
// ramp steps and query latencies where the mode has them.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	title := string(r.Mode)
	if r.Scenario != "" {
		title += ", scenario " + r.Scenario
	}
	fmt.Fprintf(&b, "## etcdgate bench: %s\n\n", title)
	f := r.Fleet
	fmt.Fprintf(&b, "Fleet: %d clusters × %d members × %s series = %s series. A member exposes %s series of %d families "+
		"(the captured real etcd member of a 3-member cluster: %s), the scraper adds %d (up, scrape_*). ",
		f.Clusters, f.MembersPerCluster, thousands(float64(f.SeriesPerMember)), thousands(float64(f.Series)),
		thousands(float64(f.EtcdSeriesPerMember)), len(f.Families), thousands(float64(f.CapturedSeriesPerMember)), f.ScrapeSeriesPerMember)
	interval := "as fast as possible"
	if r.Send.IntervalSeconds > 0 {
		interval = "every " + (time.Duration(r.Send.IntervalSeconds * float64(time.Second))).String()
	}
	fmt.Fprintf(&b, "Scraped %s by %d senders, at most %d samples per request. Machine: %d CPUs, %s.\n\n",
		interval, r.Send.Senders, r.Send.MaxSamplesPerSend, r.Machine.CPUs, r.Machine.GoVersion)
	r.writeTable(&b)
	for _, t := range r.Targets {
		if len(t.Steps) > 0 {
			writeSteps(&b, t)
		}
		if len(t.Queries) > 0 {
			writeQueries(&b, t)
		}
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write Markdown report: %w", err)
	}
	return nil
}

func (r *Report) writeTable(b *strings.Builder) {
	b.WriteString("| figure |")
	for _, t := range r.Targets {
		b.WriteString(" " + t.Name + " |")
	}
	for _, t := range r.Targets[min(1, len(r.Targets)):] {
		fmt.Fprintf(b, " %s / %s |", t.Name, r.Targets[0].Name)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", 2*len(r.Targets)-1) + "\n")
	for _, rw := range r.rows() {
		b.WriteString("| " + rw.name + " |")
		for _, s := range rw.text {
			b.WriteString(" " + s + " |")
		}
		for i := 1; i < len(rw.values); i++ {
			ratio := "–"
			if base := rw.values[0]; !rw.noRatio && base != 0 && !isNaN(base) && !isNaN(rw.values[i]) {
				ratio = fmt.Sprintf("%.2f", rw.values[i]/base)
			}
			b.WriteString(" " + ratio + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// rows lists the compared figures in reading order.
func (r *Report) rows() []row {
	var rows []row
	num := func(name string, get func(t *TargetReport) float64, format func(float64) string) {
		rw := row{name: name}
		for i := range r.Targets {
			v := get(&r.Targets[i])
			rw.values = append(rw.values, v)
			rw.text = append(rw.text, format(v))
		}
		rows = append(rows, rw)
	}
	text := func(name string, get func(t *TargetReport) string) {
		rw := row{name: name, noRatio: true}
		for i := range r.Targets {
			rw.values = append(rw.values, nan())
			rw.text = append(rw.text, get(&r.Targets[i]))
		}
		rows = append(rows, rw)
	}
	count, ms := func(v float64) string { return thousands(v) }, func(v float64) string { return fmt.Sprintf("%.1f ms", v) }
	num("samples accepted / s", func(t *TargetReport) float64 { return t.AcceptedPerSecond }, count)
	num("samples sent", func(t *TargetReport) float64 { return float64(t.SamplesSent) }, count)
	num("samples accepted", func(t *TargetReport) float64 { return float64(t.SamplesAccepted) }, count)
	num("samples dropped (4xx)", func(t *TargetReport) float64 { return float64(t.SamplesDropped) }, count)
	num("samples unanswered at the end", func(t *TargetReport) float64 { return float64(t.SamplesFailed) }, count)
	num("series written", func(t *TargetReport) float64 { return float64(t.SeriesWritten) }, count)
	num("series created in the target", func(t *TargetReport) float64 { return deref(t.SeriesCreated) }, count)
	text("requests by code", func(t *TargetReport) string { return codes(t.Requests) })
	text("retries by code", func(t *TargetReport) string { return codes(t.Retries) })
	num("request latency p50", func(t *TargetReport) float64 { return t.LatencyP50Ms }, ms)
	num("request latency p99", func(t *TargetReport) float64 { return t.LatencyP99Ms }, ms)
	seconds := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	num("max scrape lag", func(t *TargetReport) float64 { return t.MaxLagSeconds }, seconds)
	num("max scrape lag, second half", func(t *TargetReport) float64 { return t.MaxLagSecondHalf }, seconds)
	num("target RSS at the end", func(t *TargetReport) float64 { return deref(t.RSSBytes) }, bytesIEC)
	num("target max RSS", func(t *TargetReport) float64 { return deref(t.MaxRSSBytes) }, bytesIEC)
	num("target RSS per head series", func(t *TargetReport) float64 { return deref(t.BytesPerSeries) }, func(v float64) string { return fmt.Sprintf("%.0f B", v) })
	num("target CPU", func(t *TargetReport) float64 { return deref(t.CPUCores) }, func(v float64) string { return fmt.Sprintf("%.2f cores", v) })
	num("target CPU per sample", func(t *TargetReport) float64 { return deref(t.CPUMicrosPerSample) }, func(v float64) string { return fmt.Sprintf("%.2f µs", v) })
	num("harness CPU per sample", func(t *TargetReport) float64 { return t.HarnessMicrosPerSample }, func(v float64) string { return fmt.Sprintf("%.2f µs", v) })
	text("stopped", func(t *TargetReport) string { return orDash(t.StopReason) })
	for i := range rows {
		for j, v := range rows[i].values {
			if !rows[i].noRatio && isNaN(v) {
				rows[i].text[j] = "n/a"
			}
		}
	}
	return rows
}

func writeSteps(b *strings.Builder, t TargetReport) {
	fmt.Fprintf(b, "### %s: ramp steps\n\n", t.Name)
	b.WriteString("| step | clusters | series | accepted / s | rejected | max lag | p99 | RSS | healthy |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range t.Steps {
		healthy := "yes"
		if !s.Healthy {
			healthy = "no: " + s.Reason
		}
		fmt.Fprintf(b, "| %d | %d | %s | %s | %d | %.2f s | %.1f ms | %s | %s |\n", s.Step, s.Clusters, thousands(float64(s.Series)),
			thousands(s.AcceptedPerSecond), s.Rejected, s.MaxLagSeconds, s.LatencyP99Ms, bytesIEC(deref(s.RSSBytes)), healthy)
	}
	if t.LastHealthyStep != nil {
		s := t.Steps[*t.LastHealthyStep-1]
		fmt.Fprintf(b, "\nLast healthy step: %d (%d clusters, %s series).\n", s.Step, s.Clusters, thousands(float64(s.Series)))
	} else {
		b.WriteString("\nNo healthy step.\n")
	}
	b.WriteString("\n")
}

func writeQueries(b *strings.Builder, t TargetReport) {
	fmt.Fprintf(b, "### %s: queries while ingesting\n\n", t.Name)
	b.WriteString("| query | kind | ok | errors | p50 | p99 | last error |\n|---|---|---:|---:|---:|---:|---|\n")
	for _, q := range t.Queries {
		fmt.Fprintf(b, "| %s | %s | %d | %d | %.1f ms | %.1f ms | %s |\n", q.Name, q.Kind, q.OK, q.Errors, q.P50Ms, q.P99Ms,
			orDash(strings.ReplaceAll(q.LastError, "|", `\|`)))
	}
	b.WriteString("\n")
}

// codes formats a count per status code: "204: 1,200, 429: 3".
func codes(m map[string]int64) string {
	if len(m) == 0 {
		return "–"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, c+": "+thousands(float64(m[c])))
	}
	return strings.Join(parts, ", ")
}

// thousands formats a number rounded to an integer with thousands
// separators.
func thousands(v float64) string {
	if isNaN(v) {
		return "n/a"
	}
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
