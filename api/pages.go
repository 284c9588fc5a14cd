package api

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
)

// The built-in pages (pages_*.go) are for operators without Grafana:
// server-rendered html/template pages at /, each filled by in-process
// calls to the query engine and the sources the API serves (rules,
// inspections, targets, ring), never by HTTP to itself. Every query a
// page runs aggregates in the engine and bounds its result (topk,
// bottomk, or one cluster's members), so that a page stays fast at 1M
// series (BenchmarkPages). A chart's series are embedded in the page as JSON
// and drawn by uPlot (vendored under pages/static/uplot, MIT), so the
// browser makes no API call. A section whose data is missing says
// "no data"; a query that fails shows its error in the page's warnings.

//go:embed pages/templates/*.html pages/static
var pageFiles embed.FS

// pageStaticPrefix is where the embedded static files are served.
const pageStaticPrefix = "/static/"

const (
	// pageTimeout bounds all the queries of one page; the engine's own
	// limits and timeout bound each query as well.
	pageTimeout = 30 * time.Second
	// pageChartRange and pageChartPoints shape every chart: 6 hours in
	// at most 120 points a series.
	pageChartRange  = 6 * time.Hour
	pageChartPoints = 120
	// pageTopN bounds each ranked table; pageMaxRows any other list.
	pageTopN    = 10
	pageMaxRows = 500
)

// pageNameRE is what a cluster or scenario name in a page URL may be:
// the characters registry names use. Anything else is a 400.
var pageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// pages renders the built-in pages of an API.
type pages struct {
	api    *API
	tmpl   map[string]*template.Template
	static http.Handler
}

// pageNames are the templates, one a page, each with layout.html.
var pageNames = []string{"fleet", "scenario", "cluster", "alerts", "rules", "inspections", "targets", "ring", "error"}

func newPages(a *API) *pages {
	p := &pages{api: a, tmpl: map[string]*template.Template{}}
	funcs := template.FuncMap{"pct": fmtPercent, "num": fmtNumber, "bytes": fmtBytes, "ago": fmtAgo, "dur": fmtDuration,
		"ratioClass": ratioClass, "list": func(s ...string) []string { return s }}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(pageFiles, "pages/templates/layout.html", "pages/templates/"+name+".html")
		if err != nil {
			panic(fmt.Sprintf("BUG: embedded page template %s: %v", name, err))
		}
		p.tmpl[name] = t
	}
	sub, err := fs.Sub(pageFiles, "pages/static")
	if err != nil {
		panic(fmt.Sprintf("BUG: embedded static files: %v", err))
	}
	p.static = http.StripPrefix(pageStaticPrefix, http.FileServerFS(sub))
	return p
}

// routes registers the pages with add (Routes).
func (p *pages) routes(add func(pattern, name string, role Role, h http.HandlerFunc)) {
	add("GET /{$}", "page_fleet", RoleRead, p.fleet)
	add("GET /scenario/{name}", "page_scenario", RoleRead, p.scenario)
	add("GET /cluster/{name}", "page_cluster", RoleRead, p.cluster)
	add("GET /alerts", "page_alerts", RoleRead, p.alerts)
	add("GET /rules", "page_rules", RoleRead, p.rules)
	add("GET /inspections", "page_inspections", RoleRead, p.inspections)
	add("GET /targets", "page_targets", RoleRead, p.targets)
	add("GET /ring", "page_ring", RoleRead, p.ring)
	add("GET "+pageStaticPrefix, "page_static", RoleRead, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		p.static.ServeHTTP(w, r)
	})
}

// page is what every template gets: the layout's fields and the page's
// own data.
type page struct {
	Title    string
	Nav      string // the navigation entry to highlight
	Now      time.Time
	Warnings []string
	Data     any
	// Charts are the page's charts, rendered into the page as JSON.
	Charts []chart
}

// chart is one uPlot chart: X are the Unix seconds of the points, Series
// the lines, each with one value (or null) per X.
type chart struct {
	ID     string      `json:"id"`
	Title  string      `json:"title"`
	Unit   string      `json:"unit"`
	X      []int64     `json:"x"`
	Series []chartLine `json:"series"`
	Empty  bool        `json:"-"`
}

type chartLine struct {
	Label  string     `json:"label"`
	Values []*float64 `json:"values"`
}

// render executes the page's template into a buffer first, so that a
// failing template answers a clean 500 rather than half a page.
func (p *pages) render(w http.ResponseWriter, status int, name string, pg *page) {
	pg.Now = time.Now().UTC()
	var buf bytes.Buffer
	if err := p.tmpl[name].Execute(&buf, pg); err != nil {
		p.api.opts.Logger.Error("render page", slog.String("page", name), slog.Any("err", err))
		http.Error(w, "internal error rendering page "+name, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Scripts and styles come from this server only; the inline script
	// that draws the charts is the page's own.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page with status and a message for people.
func (p *pages) fail(w http.ResponseWriter, status int, msg string) {
	p.render(w, status, "error", &page{Title: http.StatusText(status), Data: map[string]any{"Status": status, "Message": msg}})
}

// pathName returns the {name} of the URL, or answers 400 and "".
func (p *pages) pathName(w http.ResponseWriter, r *http.Request, what string) string {
	name := r.PathValue("name")
	if !pageNameRE.MatchString(name) {
		p.fail(w, http.StatusBadRequest, fmt.Sprintf("invalid %s name %q: want 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", what, name))
		return ""
	}
	return name
}

// querier runs a page's queries against the engine, collecting their
// errors as the page's warnings.
type querier struct {
	api      *API
	ctx      context.Context
	eng      QueryEngine
	now      time.Time
	warnings *[]string
}

// querier returns the page's querier, or answers 503 and nil while the
// node is not ready.
func (p *pages) querier(w http.ResponseWriter, r *http.Request, pg *page) (*querier, context.CancelFunc) {
	e := p.api.engine.Load()
	if e == nil || !p.api.isReady() {
		p.fail(w, http.StatusServiceUnavailable, errNotReady.Error())
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	return &querier{api: p.api, ctx: ctx, eng: *e, now: time.Now(), warnings: &pg.Warnings}, cancel
}

func (q *querier) warn(query string, err error) {
	var pe *evaluator.PanicError
	if errors.As(err, &pe) {
		// The stack goes to the log, never to the page.
		q.api.panics.log(q.api.opts.Logger, query, pe)
	}
	if errors.Is(err, evaluator.ErrInternal) {
		err = evaluator.ErrInternal // never a stack or internals
	}
	*q.warnings = append(*q.warnings, fmt.Sprintf("query %s: %v", truncateForLog(query), err))
}

// vector evaluates an instant query; an error becomes a warning and an
// empty result.
func (q *querier) vector(query string) evaluator.Vector {
	res, err := q.eng.InstantWith(q.ctx, query, q.now, evaluator.QueryOpts{})
	if err != nil {
		q.warn(query, err)
		return nil
	}
	switch v := res.Value.(type) {
	case evaluator.Vector:
		return v
	case evaluator.Scalar:
		return evaluator.Vector{{T: v.T, F: v.V}}
	}
	return nil
}

// scalar is the value of a one-sample query, NaN without one.
func (q *querier) scalar(query string) float64 {
	v := q.vector(query)
	if len(v) == 0 {
		return math.NaN()
	}
	return v[0].F
}

// chart evaluates query over the last pageChartRange into a chart whose
// lines are named by label (a label name, or "" for the whole set).
func (q *querier) chart(id, title, unit, query string, label ...string) chart {
	step := pageChartRange / pageChartPoints
	end := q.now
	start := end.Add(-pageChartRange)
	c := chart{ID: id, Title: title, Unit: unit}
	res, err := q.eng.RangeWith(q.ctx, query, start, end, step, evaluator.QueryOpts{})
	if err != nil {
		q.warn(query, err)
		c.Empty = true
		return c
	}
	m, _ := res.Value.(evaluator.Matrix)
	for t := start; !t.After(end); t = t.Add(step) {
		c.X = append(c.X, t.Unix())
	}
	for i, s := range m {
		if i == pageTopN {
			*q.warnings = append(*q.warnings, fmt.Sprintf("chart %q: only the first %d of %d lines are drawn", title, pageTopN, len(m)))
			break
		}
		line := chartLine{Label: seriesLabel(s.Metric.Map(), label), Values: make([]*float64, len(c.X))}
		for _, pt := range s.Floats {
			idx := int((pt.T - start.UnixMilli()) / step.Milliseconds())
			if idx >= 0 && idx < len(line.Values) && !math.IsNaN(pt.F) && !math.IsInf(pt.F, 0) {
				v := pt.F
				line.Values[idx] = &v
			}
		}
		c.Series = append(c.Series, line)
	}
	c.Empty = len(c.Series) == 0
	return c
}

// seriesLabel names a line by the values of names, or by every label.
func seriesLabel(ls map[string]string, names []string) string {
	var parts []string
	for _, n := range names {
		if v := ls[n]; v != "" {
			parts = append(parts, v)
		}
	}
	if len(parts) == 0 {
		for k, v := range ls {
			if k != "__name__" {
				parts = append(parts, k+"="+v)
			}
		}
	}
	if len(parts) == 0 {
		return "value"
	}
	return strings.Join(parts, " ")
}

// quote makes s a PromQL string literal.
func quote(s string) string { return strconv.Quote(s) }

// VisibleCharts are the charts with data; the layout embeds them as JSON
// (html/template marshals them in the script context).
func (pg *page) VisibleCharts() []chart {
	cs := []chart{}
	for _, c := range pg.Charts {
		if !c.Empty {
			cs = append(cs, c)
		}
	}
	return cs
}

func fmtPercent(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "no data"
	}
	return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
}

func fmtNumber(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "no data"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func fmtBytes(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "no data"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

func fmtAgo(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmtDuration(time.Since(t).Round(time.Second)) + " ago"
}

func fmtDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Second).String()
}

// ratioClass is the CSS class of a ratio that should be 1 (a budget left
// or a completeness): bad, warn or ok.
func ratioClass(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nodata"
	case v < 0.5:
		return "bad"
	case v < 0.99:
		return "warn"
	}
	return "ok"
}
