package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// The chart's geometry, in SVG user units.
const (
	svgWidth       = 960
	svgPanelHeight = 240
	svgMarginLeft  = 90
	svgMarginRight = 30
	svgMarginTop   = 50
	svgPanelGap    = 60
)

// svgColors tell the targets apart; more targets cycle through them.
func svgColors() []string {
	return []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}
}

// panel is one chart of a value over the run's time, a line per target.
type panel struct {
	title  string
	get    func(p Point) float64 // NaN: no reading
	format func(float64) string
	// unit returns the unit whose round multiples make the axis ticks
	// for a largest value: 1 for counts, KiB, MiB or GiB for bytes.
	unit func(max float64) float64
}

// WriteSVG draws the samples accepted per second and the target's RSS
// over time, one line per target, as a standalone SVG document.
func (r *Report) WriteSVG(w io.Writer) error {
	panels := []panel{
		{"samples accepted / s", func(p Point) float64 { return deref(p.AcceptedPerSecond) }, si, func(float64) float64 { return 1 }},
		{"target RSS", func(p Point) float64 { return deref(p.RSSBytes) }, bytesIEC, bytesUnit},
	}
	height := svgMarginTop + len(panels)*(svgPanelHeight+svgPanelGap)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16">etcdgate bench: %s, %s series</text>`+"\n",
		svgMarginLeft, html.EscapeString(string(r.Mode)), thousands(float64(r.Fleet.Series)))
	r.writeLegend(&b)
	maxT := 0.0
	for _, t := range r.Targets {
		for _, p := range t.Timeline {
			maxT = math.Max(maxT, p.Seconds)
		}
	}
	// The last reading comes a moment after the run's end: rounding it
	// down keeps a 120 s run on a 0–120 s axis.
	maxT = math.Floor(maxT)
	for i, p := range panels {
		r.writePanel(&b, p, svgMarginTop+i*(svgPanelHeight+svgPanelGap), maxT)
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write SVG chart: %w", err)
	}
	return nil
}

func (r *Report) writeLegend(b *strings.Builder) {
	x := svgWidth - svgMarginRight
	for i := len(r.Targets) - 1; i >= 0; i-- {
		name := html.EscapeString(r.Targets[i].Name)
		x -= 30 + 8*len(name)
		color := svgColors()[i%len(svgColors())]
		fmt.Fprintf(b, `<line x1="%d" y1="20" x2="%d" y2="20" stroke="%s" stroke-width="3"/><text x="%d" y="24">%s</text>`+"\n",
			x, x+20, color, x+24, name)
	}
}

// writePanel draws one panel whose top edge is at y.
func (r *Report) writePanel(b *strings.Builder, p panel, y int, maxT float64) {
	plotW := float64(svgWidth - svgMarginLeft - svgMarginRight)
	plotH := float64(svgPanelHeight)
	maxV := 0.0
	for _, t := range r.Targets {
		for _, pt := range t.Timeline {
			if v := p.get(pt); !isNaN(v) {
				maxV = math.Max(maxV, v)
			}
		}
	}
	unit := p.unit(maxV)
	yStep := niceStep(maxV/unit/4) * unit
	yMax := math.Max(yStep*math.Ceil(maxV/yStep), yStep)
	xStep := niceStep(maxT / 6)
	xMax := math.Max(xStep*math.Ceil(maxT/xStep), xStep)
	px := func(t float64) float64 { return svgMarginLeft + t/xMax*plotW }
	py := func(v float64) float64 { return float64(y) + plotH - v/yMax*plotH }

	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="14">%s</text>`+"\n", svgMarginLeft, y-8, html.EscapeString(p.title))
	for v := 0.0; v <= yMax*1.0001; v += yStep {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			svgMarginLeft, py(v), svgWidth-svgMarginRight, py(v), svgMarginLeft-6, py(v)+4, html.EscapeString(p.format(v)))
	}
	for t := 0.0; t <= xMax*1.0001; t += xStep {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%ss</text>`+"\n",
			px(t), y, px(t), y+svgPanelHeight, px(t), y+svgPanelHeight+16, trimFloat(t))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#888"/>`+"\n", svgMarginLeft, y, plotW, svgPanelHeight)
	for i, t := range r.Targets {
		var pts []string
		for _, pt := range t.Timeline {
			if v := p.get(pt); !isNaN(v) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(pt.Seconds), py(v)))
			}
		}
		if len(pts) > 0 {
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n",
				svgColors()[i%len(svgColors())], strings.Join(pts, " "))
		}
	}
}

// niceStep rounds a raw axis step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || isNaN(raw) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func bytesUnit(max float64) float64 {
	switch {
	case max >= 1<<30:
		return 1 << 30
	case max >= 1<<20:
		return 1 << 20
	case max >= 1<<10:
		return 1 << 10
	}
	return 1
}

func trimFloat(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") }
