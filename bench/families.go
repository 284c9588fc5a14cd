package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// valueRole says where a label's value comes from when a template is
// instantiated for a member: etcd names members by ID in a few labels.
type valueRole uint8

const (
	roleLiteral valueRole = iota
	roleSelf              // the member's own ID (server_id, Local)
	rolePeer              // the ID of one of the member's peers (To, From, Remote)
)

type tmplLabel struct {
	name, value string
	role        valueRole
}

// template is one series of the captured member's page, with what the
// generator needs to move its value.
type template struct {
	family   string // the metric family: name without _bucket, _count, _sum
	name     string
	labels   []tmplLabel // sorted by name, without __name__
	hasPeer  bool        // instantiated once per peer of a member
	kind     seriesKind
	value    float64 // as captured: the start value
	integral bool    // counts: emitted as whole numbers
	rate     float64 // counters and rising gauges: increase per second
	group    int     // histogram buckets, _count and _sum: index into groups; else -1
	cdf      float64 // bucket: share of observations <= le, normally
	cdfSlow  float64 // bucket: the same while the member's disk is slow
	slowable bool    // a disk latency histogram: shifts up while the disk is slow
	scrape   bool    // added by the scraper (up, scrape_*), not exposed by etcd
}

// histGroup is one histogram (one label set without le) of a member.
type histGroup struct {
	rate float64 // observations per second
	mean float64 // mean observed value, for _sum
}

// Family is one metric family of the capture.
type Family struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Series is how many series one member of a 3-member cluster exposes.
	Series int `json:"series"`
}

// templateSet is the parsed capture: everything one member exposes.
type templateSet struct {
	templates []template
	groups    []histGroup
	families  []Family
	uptime    float64 // seconds the captured member had run: turns counters into rates
}

var (
	uptimeRe = regexp.MustCompile(`uptime_seconds=([0-9.]+)`)
	memberID = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// parseCapture turns a /metrics page of an etcd member into templates.
// Series naming one of the member's peers are kept for one peer only (the
// one with most series) and instantiated for every peer of a generated
// member, so any cluster size gets the right peer series.
func parseCapture(text []byte) (*templateSet, error) {
	ts := &templateSet{uptime: 60}
	if m := uptimeRe.FindSubmatch(text); m != nil {
		if v, err := strconv.ParseFloat(string(m[1]), 64); err == nil && v > 0 {
			ts.uptime = v
		}
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCapture, err)
	}
	self, peer := memberIDs(mfs)
	names := make([]string, 0, len(mfs))
	for name := range mfs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		mf := mfs[name]
		for _, m := range sortedMetrics(mf.GetMetric()) {
			labels, ok := roleLabels(m.GetLabel(), self, peer)
			if !ok {
				continue
			}
			ts.addMetric(name, mf.GetType(), labels, m)
		}
		ts.families = append(ts.families, Family{Name: name, Type: strings.ToLower(mf.GetType().String())})
	}
	if len(ts.templates) == 0 {
		return nil, fmt.Errorf("%w: no series", ErrBadCapture)
	}
	ts.countFamilySeries()
	ts.addScrapeSeries()
	for i := range ts.templates {
		ts.templates[i].classify(ts.uptime)
	}
	return ts, nil
}

// countFamilySeries sets how many series of each family a member of a
// 3-member cluster exposes (two of each peer series), as the captured
// member did, and drops families without series.
func (ts *templateSet) countFamilySeries() {
	count := map[string]int{}
	for _, t := range ts.templates {
		count[t.family]++
		if namesPeer(t.labels) {
			count[t.family]++
		}
	}
	for i := range ts.families {
		ts.families[i].Series = count[ts.families[i].Name]
	}
	ts.families = slices.DeleteFunc(ts.families, func(f Family) bool { return f.Series == 0 })
}

// memberIDs finds the captured member's own ID (etcd_server_id) and the
// peer ID with the most series.
func memberIDs(mfs map[string]*dto.MetricFamily) (self, peer string) {
	if mf := mfs["etcd_server_id"]; mf != nil && len(mf.GetMetric()) > 0 {
		for _, l := range mf.GetMetric()[0].GetLabel() {
			if l.GetName() == "server_id" {
				self = l.GetValue()
			}
		}
	}
	count := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); isPeerLabel(l.GetName()) && v != self && memberID.MatchString(v) {
					count[v]++
				}
			}
		}
	}
	for id, n := range count {
		if n > count[peer] || (n == count[peer] && id < peer) {
			peer = id
		}
	}
	return self, peer
}

// namesPeer reports whether a series names one of the member's peers:
// such a series is instantiated once per peer.
func namesPeer(labels []tmplLabel) bool {
	return slices.ContainsFunc(labels, func(l tmplLabel) bool { return l.role == rolePeer })
}

func isPeerLabel(name string) bool { return name == "To" || name == "From" || name == "Remote" }

// roleLabels converts a metric's labels, marking member IDs by role; ok
// is false for series naming a peer other than the kept one.
func roleLabels(pairs []*dto.LabelPair, self, peer string) (labels []tmplLabel, ok bool) {
	for _, l := range pairs {
		tl := tmplLabel{name: l.GetName(), value: l.GetValue()}
		switch {
		case self != "" && tl.value == self:
			tl.role = roleSelf
		case isPeerLabel(tl.name) && memberID.MatchString(tl.value):
			if tl.value != peer {
				return nil, false
			}
			tl.role = rolePeer
		}
		labels = append(labels, tl)
	}
	slices.SortFunc(labels, func(a, b tmplLabel) int { return strings.Compare(a.name, b.name) })
	return labels, true
}

func sortedMetrics(ms []*dto.Metric) []*dto.Metric {
	key := func(m *dto.Metric) string {
		var b strings.Builder
		for _, l := range m.GetLabel() {
			b.WriteString(l.GetName() + "=" + l.GetValue() + ",")
		}
		return b.String()
	}
	out := slices.Clone(ms)
	slices.SortFunc(out, func(a, b *dto.Metric) int { return cmp.Compare(key(a), key(b)) })
	return out
}

func (ts *templateSet) addMetric(name string, typ dto.MetricType, labels []tmplLabel, m *dto.Metric) {
	add := func(suffix string, value float64, extra ...tmplLabel) {
		t := template{family: name, name: name + suffix, labels: withLabels(labels, extra...), value: value, group: -1}
		t.kind = kindOf(typ, suffix)
		ts.templates = append(ts.templates, t)
	}
	switch typ {
	case dto.MetricType_COUNTER:
		add("", m.GetCounter().GetValue())
	case dto.MetricType_GAUGE:
		add("", m.GetGauge().GetValue())
	case dto.MetricType_SUMMARY:
		for _, q := range m.GetSummary().GetQuantile() {
			add("", q.GetValue(), tmplLabel{name: "quantile", value: formatFloat(q.GetQuantile())})
		}
		add("_sum", m.GetSummary().GetSampleSum())
		add("_count", float64(m.GetSummary().GetSampleCount()))
	case dto.MetricType_HISTOGRAM:
		ts.addHistogram(name, labels, m.GetHistogram())
	default:
		add("", m.GetUntyped().GetValue())
	}
}

// addHistogram adds the _bucket series (le ascending, +Inf last), _count
// and _sum of one histogram, and its group.
func (ts *templateSet) addHistogram(name string, labels []tmplLabel, h *dto.Histogram) {
	count, sum := float64(h.GetSampleCount()), h.GetSampleSum()
	buckets := h.GetBucket()
	g := len(ts.groups)
	ts.groups = append(ts.groups, histGroup{rate: count / ts.uptime})
	var les []float64
	for _, b := range buckets {
		les = append(les, b.GetUpperBound())
	}
	if len(les) == 0 || !math.IsInf(les[len(les)-1], 1) {
		les = append(les, math.Inf(1))
	}
	cdf, slow := bucketShares(les, buckets, count)
	for i, le := range les {
		v := count
		if i < len(buckets) {
			v = float64(buckets[i].GetCumulativeCount())
		}
		ts.templates = append(ts.templates, template{
			family: name, name: name + "_bucket", labels: withLabels(labels, tmplLabel{name: "le", value: formatFloat(le)}),
			kind: kindBucket, value: v, integral: true, group: g, cdf: cdf[i], cdfSlow: slow[i],
		})
	}
	ts.templates = append(ts.templates,
		template{family: name, name: name + "_count", labels: labels, kind: kindHistCount, value: count, integral: true, group: g},
		template{family: name, name: name + "_sum", labels: labels, kind: kindHistSum, value: sum, group: g},
	)
	ts.groups[g].mean = meanObservation(les, cdf, count, sum)
}

// addScrapeSeries adds the series Prometheus writes for every scrape of
// a target besides what the target exposes.
func (ts *templateSet) addScrapeSeries() {
	exposed := float64(len(ts.templates))
	for _, s := range []struct {
		name  string
		value float64
		kind  seriesKind
	}{
		{"up", 1, kindConst},
		{"scrape_duration_seconds", 0.012, kindGauge},
		{"scrape_samples_scraped", exposed, kindConst},
		{"scrape_samples_post_metric_relabeling", exposed, kindConst},
		{"scrape_series_added", 0, kindConst},
	} {
		ts.templates = append(ts.templates, template{family: s.name, name: s.name, value: s.value, kind: s.kind, group: -1, scrape: true})
	}
}

func withLabels(labels []tmplLabel, extra ...tmplLabel) []tmplLabel {
	if len(extra) == 0 {
		return labels
	}
	out := append(slices.Clone(labels), extra...)
	slices.SortFunc(out, func(a, b tmplLabel) int { return strings.Compare(a.name, b.name) })
	return out
}

// formatFloat writes le and quantile values as Go's client libraries do.
func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
