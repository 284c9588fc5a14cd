package bench

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// progress prints the run's state every ProgressEvery until ctx ends: on
// a terminal one line redrawn in place with a bar and an ETA, elsewhere
// a plain line each time, fit for logs.
func (r *targetRun) progress(ctx context.Context) {
	t := time.NewTicker(r.o.ProgressEvery)
	defer t.Stop()
	prevAt, prevAccepted := r.start, int64(0)
	for {
		select {
		case <-ctx.Done():
			if r.o.ProgressTTY {
				fmt.Fprintln(r.o.Progress)
			}
			return
		case now := <-t.C:
			accepted := r.stats.samplesAccepted.Load()
			rate := float64(accepted-prevAccepted) / now.Sub(prevAt).Seconds()
			prevAt, prevAccepted = now, accepted
			line := r.progressLine(now.Sub(r.start), rate)
			if r.o.ProgressTTY {
				fmt.Fprintf(r.o.Progress, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(r.o.Progress, line)
			}
		}
	}
}

func (r *targetRun) progressLine(elapsed time.Duration, rate float64) string {
	var b strings.Builder
	b.WriteString(r.target.Name + " " + string(r.o.Mode) + " ")
	total := r.o.Duration
	if total > 0 {
		frac := math.Min(elapsed.Seconds()/total.Seconds(), 1)
		if r.o.ProgressTTY {
			b.WriteString(bar(frac, 24) + " ")
		}
		fmt.Fprintf(&b, "%3.0f%% ", frac*100)
	}
	if r.o.Mode == ModeRamp {
		fmt.Fprintf(&b, "step %d ", r.step.Load())
	}
	last := r.lastSample()
	fmt.Fprintf(&b, "%s/s accepted, %s series, %d clusters, rss %s, rejected %d",
		si(rate), si(float64(r.stats.seriesWritten.Load())), r.liveClusters.Load(), bytesIEC(last.rss), r.stats.snapshot().rejected())
	if total > 0 {
		fmt.Fprintf(&b, ", ETA %s", max(total-elapsed, 0).Round(time.Second))
	}
	return b.String()
}

func bar(frac float64, width int) string {
	full := int(frac * float64(width))
	s := strings.Repeat("=", full)
	if full < width {
		s += ">" + strings.Repeat(" ", width-full-1)
	}
	return "[" + s + "]"
}

// si formats a count with k, M, G suffixes.
func si(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a >= 1e9:
		return trimZeros(fmt.Sprintf("%.2f", v/1e9)) + "G"
	case a >= 1e6:
		return trimZeros(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e3:
		return trimZeros(fmt.Sprintf("%.1f", v/1e3)) + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

// trimZeros drops the trailing zeros of a decimal fraction: 1.50 -> 1.5.
func trimZeros(s string) string {
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// bytesIEC formats a byte count in KiB, MiB or GiB.
func bytesIEC(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v >= 1<<30:
		return trimZeros(fmt.Sprintf("%.2f", v/(1<<30))) + " GiB"
	case v >= 1<<20:
		return trimZeros(fmt.Sprintf("%.1f", v/(1<<20))) + " MiB"
	case v >= 1<<10:
		return trimZeros(fmt.Sprintf("%.1f", v/(1<<10))) + " KiB"
	}
	return fmt.Sprintf("%.0f B", v)
}
