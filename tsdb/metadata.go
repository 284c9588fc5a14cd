package tsdb

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric metadata is what senders say of a metric name: its type, help
// and unit (remote write 1.0's metadata field, 2.0's per-series
// metadata). Prometheus keeps one per scrape target; etcdgate has no
// targets, so it keeps, per metric name, the distinct {type, help, unit}
// seen most recently: a fleet running two versions of an exporter shows
// both helps, an upgrade replaces the old one once MaxPerMetric newer
// distinct ones arrived.
//
// The common case is the same metadata arriving every few seconds for
// every metric: it takes one stripe's read lock, compares strings and
// returns, allocating nothing. Only a change takes a stripe's write lock,
// copies the strings (the input aliases request bodies) and is written
// through to the store.

// Metadata is one {type, help, unit} of a metric name.
type Metadata struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// MetricMetadata is the metadata of a metric name, as a sender gives it.
type MetricMetadata struct {
	Metric string
	Metadata
}

// MetricMetadataList is every metadata kept for a metric name, the most
// recently seen first.
type MetricMetadataList struct {
	Metric  string
	Entries []Metadata
}

// MetadataOptions bound the metric metadata the head keeps. Past a bound
// new metadata is dropped and counted
// (etcdgate_tsdb_metadata_dropped_total); what is kept stays.
type MetadataOptions struct {
	// MaxMetrics is the number of metric names with metadata.
	MaxMetrics int
	// MaxPerMetric is the number of distinct metadata kept per name; a
	// new distinct one replaces the least recently seen.
	MaxPerMetric int
	// MaxStringBytes is the longest metric name, type, help or unit
	// accepted; an entry with a longer one is dropped.
	MaxStringBytes int
	// MaxBytes bounds the memory all metadata accounts for (it also counts
	// toward the head's bytes, which HeadLimits.MaxBytes bounds).
	MaxBytes int64
}

// DefaultMetadataOptions returns the bounds etcdgate runs with by default:
// a fleet's exporters export a few thousand metric names, each with one
// or two helps of about a hundred bytes. MaxStringBytes is the bound the
// remote-write decoder applies (ingest.MaxMetadataStringBytes).
func DefaultMetadataOptions() MetadataOptions {
	return MetadataOptions{MaxMetrics: 100_000, MaxPerMetric: 10, MaxStringBytes: 16 << 10, MaxBytes: 64 << 20}
}

// Validate reports the first invalid bound.
func (o MetadataOptions) Validate() error {
	switch {
	case o.MaxMetrics < 1:
		return fmt.Errorf("metadata: max metrics %d must be positive", o.MaxMetrics)
	case o.MaxPerMetric < 1 || o.MaxPerMetric > 1000:
		return fmt.Errorf("metadata: max per metric %d outside 1..1000", o.MaxPerMetric)
	case o.MaxStringBytes < 1 || o.MaxStringBytes > 1<<20:
		return fmt.Errorf("metadata: max string bytes %d outside 1..1048576", o.MaxStringBytes)
	case o.MaxBytes < 1:
		return fmt.Errorf("metadata: max bytes %d must be positive", o.MaxBytes)
	}
	return nil
}

// metadataStripes is the number of lock stripes: enough that concurrent
// writers of different requests rarely share one, few enough that a
// listing visits them cheaply.
const metadataStripes = 64

// Memory accounted per name and per entry besides their strings: the map
// entry and list header, the entry struct and its pointer.
const (
	metadataNameOverhead  = int64(unsafe.Sizeof(metadataList{})) + 48
	metadataEntryOverhead = int64(unsafe.Sizeof(metadataEntry{})) + 8
)

// Reasons metadata is dropped, the label values of
// etcdgate_tsdb_metadata_dropped_total.
const (
	metadataDropInvalid   = "invalid"          // empty metric name
	metadataDropTooLong   = "too_long"         // a string over MaxStringBytes
	metadataDropMetrics   = "metric_limit"     // MaxMetrics names held
	metadataDropBytes     = "bytes_limit"      // MaxBytes reached
	metadataDropHeadBytes = "head_bytes_limit" // the head's MaxBytes reached
)

// metadataStore holds the metadata of the head. The maps are guarded by
// their stripe's lock; an entry's Metadata is immutable once published,
// its lastSeen is atomic. dirty is guarded by dirtyMu; persistMu
// serializes writes to the store, so that the last write of a name holds
// its newest state.
type metadataStore struct {
	limits  atomic.Pointer[MetadataOptions] // replaced whole by setLimits
	seed    maphash.Seed                    // immutable
	stripes [metadataStripes]metadataStripe
	names   atomic.Int64
	bytes   atomic.Int64
	// headFull reports the head at its byte limit; immutable.
	headFull func() bool

	dirtyMu sync.Mutex
	dirty   map[string]struct{} // names changed since they were last persisted

	persistMu sync.Mutex

	dropped        *prometheus.CounterVec
	replaced       prometheus.Counter
	persistFailure prometheus.Counter
}

type metadataStripe struct {
	mu sync.RWMutex
	m  map[string]*metadataList
	_  [64 - 24 - 8]byte // one cache line a stripe: writers of different stripes do not share one
}

type metadataList struct {
	name    string           // the kept copy of the map key; immutable
	entries []*metadataEntry // in no order; at most MaxPerMetric
}

type metadataEntry struct {
	md       Metadata
	lastSeen atomic.Int64 // unix seconds; restored entries are negative, older than any seen
}

func newMetadataStore(opts MetadataOptions, headFull func() bool) *metadataStore {
	s := &metadataStore{seed: maphash.MakeSeed(), headFull: headFull, dirty: map[string]struct{}{}}
	s.limits.Store(&opts)
	for i := range s.stripes {
		s.stripes[i].m = map[string]*metadataList{}
	}
	s.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "etcdgate_tsdb_metadata_dropped_total",
		Help: "Metric metadata entries not kept, by reason: invalid, too_long, metric_limit, bytes_limit, head_bytes_limit.",
	}, []string{"reason"})
	for _, r := range []string{metadataDropInvalid, metadataDropTooLong, metadataDropMetrics, metadataDropBytes, metadataDropHeadBytes} {
		s.dropped.WithLabelValues(r)
	}
	s.replaced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "etcdgate_tsdb_metadata_replaced_total",
		Help: "Metric metadata entries that gave way to a newer distinct one of their metric name (limits.max_metadata_per_metric).",
	})
	s.persistFailure = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "etcdgate_tsdb_metadata_persist_failures_total",
		Help: "Failed writes of changed metric metadata to the store; the next change or checkpoint retries them.",
	})
	return s
}

func (s *metadataStore) register(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	reg.MustRegister(s.dropped, s.replaced, s.persistFailure,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "etcdgate_tsdb_metadata_metrics",
			Help: "Metric names with metadata (limits.max_metadata_metrics bounds it).",
		}, func() float64 { return float64(s.names.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "etcdgate_tsdb_metadata_bytes",
			Help: "Memory metric metadata accounts for, part of etcdgate_tsdb_head_bytes (limits.max_metadata_bytes bounds it).",
		}, func() float64 { return float64(s.bytes.Load()) }))
}

// setLimits replaces the bounds; they apply to metadata that arrives from
// now on: what is kept stays, and a name past a lowered MaxPerMetric
// gives way one entry per new one.
func (s *metadataStore) setLimits(o MetadataOptions) { s.limits.Store(&o) }

func (s *metadataStore) stripe(name string) *metadataStripe {
	return &s.stripes[maphash.String(s.seed, name)%metadataStripes]
}

// add keeps the metadata of mds that is new and reports how many entries
// changed the store. now is the time they were seen. mds may alias a
// request body: what is kept is copied.
func (s *metadataStore) add(mds []MetricMetadata, now time.Time) (changed int) {
	sec := now.Unix()
	lim := s.limits.Load()
	for i := range mds {
		m := &mds[i]
		if i > 0 && *m == mds[i-1] {
			// Remote write 2.0 repeats a metric's metadata on each of its
			// series, from one symbol table: the strings are the same
			// memory, and the comparison stops at the pointers.
			continue
		}
		if t := canonicalType(m.Type); t != m.Type {
			c := *m // the caller's slice is not ours to change
			c.Type = t
			m = &c
		}
		if s.seen(m, sec) {
			continue
		}
		if reason := check(m, lim); reason != "" {
			s.dropped.WithLabelValues(reason).Inc()
			continue
		}
		if s.insert(m, sec, lim) {
			changed++
		}
	}
	return changed
}

// seen reports whether m is already kept, and marks it seen at sec. It
// takes only the stripe's read lock and allocates nothing.
func (s *metadataStore) seen(m *MetricMetadata, sec int64) bool {
	st := s.stripe(m.Metric)
	st.mu.RLock()
	defer st.mu.RUnlock()
	l := st.m[m.Metric]
	if l == nil {
		return false
	}
	for _, e := range l.entries {
		if e.md == m.Metadata {
			// Written at most once a second: readers on other cores keep
			// their cache line.
			if e.lastSeen.Load() < sec {
				e.lastSeen.Store(sec)
			}
			return true
		}
	}
	return false
}

// check returns why m cannot be kept, or "".
func check(m *MetricMetadata, lim *MetadataOptions) string {
	max := lim.MaxStringBytes
	switch {
	case m.Metric == "":
		return metadataDropInvalid
	case len(m.Metric) > max || len(m.Type) > max || len(m.Help) > max || len(m.Unit) > max:
		return metadataDropTooLong
	}
	return ""
}

func metadataEntryBytes(md Metadata) int64 {
	return metadataEntryOverhead + int64(len(md.Type)+len(md.Help)+len(md.Unit))
}

// insert keeps a copy of m, replacing the least recently seen entry of
// its name when the name holds MaxPerMetric. It reports whether the store
// changed (false when m was dropped, or a racer inserted it first). The
// bounds are checked under the stripe's lock against store-wide counts:
// inserts into different stripes may pass MaxMetrics or MaxBytes by one
// entry each at most. A restored entry (sec < 0) is not refused for the
// head's bytes: it was kept before, and the head's series were just
// restored with it.
func (s *metadataStore) insert(m *MetricMetadata, sec int64, lim *MetadataOptions) bool {
	cost := metadataEntryBytes(m.Metadata)
	st := s.stripe(m.Metric)
	st.mu.Lock()
	l := st.m[m.Metric]
	if l != nil {
		for _, e := range l.entries {
			if e.md == m.Metadata {
				st.mu.Unlock()
				return false
			}
		}
	}
	var reason string
	newName := l == nil
	if newName {
		cost += metadataNameOverhead + int64(len(m.Metric))
	}
	switch {
	case newName && s.names.Load() >= int64(lim.MaxMetrics):
		reason = metadataDropMetrics
	case s.bytes.Load()+cost > lim.MaxBytes:
		reason = metadataDropBytes
	case sec >= 0 && s.headFull != nil && s.headFull():
		reason = metadataDropHeadBytes
	}
	if reason != "" {
		st.mu.Unlock()
		s.dropped.WithLabelValues(reason).Inc()
		return false
	}
	if newName {
		l = &metadataList{name: strings.Clone(m.Metric)}
		st.m[l.name] = l
		s.names.Add(1)
	}
	e := &metadataEntry{md: cloneMetadata(m.Metadata)}
	e.lastSeen.Store(sec)
	if len(l.entries) < lim.MaxPerMetric {
		l.entries = append(l.entries, e)
	} else {
		oldest := 0
		for i, o := range l.entries {
			if o.lastSeen.Load() < l.entries[oldest].lastSeen.Load() {
				oldest = i
			}
		}
		s.bytes.Add(-metadataEntryBytes(l.entries[oldest].md))
		l.entries[oldest] = e
		s.replaced.Inc()
	}
	s.bytes.Add(cost)
	st.mu.Unlock()

	s.dirtyMu.Lock()
	s.dirty[l.name] = struct{}{}
	s.dirtyMu.Unlock()
	return true
}

// metricTypes are the metric types of Prometheus's model, as its
// /api/v1/metadata names them.
var metricTypes = []string{"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}

// canonicalType returns typ in Prometheus's spelling when it is one of
// its types in any case (remote write's enum names are upper case), else
// typ. A known type is one of the strings of metricTypes, never a copy of
// the request's.
func canonicalType(typ string) string {
	t, _ := knownType(typ)
	return t
}

// knownType returns the string of metricTypes typ names in any case, and
// true; else typ and false.
func knownType(typ string) (string, bool) {
	for _, t := range metricTypes {
		if t == typ {
			return t, true // the common case: already Prometheus's spelling
		}
	}
	for _, t := range metricTypes {
		if len(t) == len(typ) && strings.EqualFold(t, typ) {
			return t, true
		}
	}
	return typ, false
}

// cloneMetadata copies md's strings: a known type becomes the string of
// metricTypes (equal is not enough: md's may alias a request body).
func cloneMetadata(md Metadata) Metadata {
	typ, known := knownType(md.Type)
	if !known {
		typ = strings.Clone(typ)
	}
	return Metadata{Type: typ, Help: strings.Clone(md.Help), Unit: strings.Clone(md.Unit)}
}

// entriesLocked returns the name's metadata, the most recently seen
// first. The caller holds the stripe's lock (read or write).
func (l *metadataList) entriesLocked() []Metadata {
	es := slices.Clone(l.entries)
	slices.SortStableFunc(es, func(a, b *metadataEntry) int { return cmp.Compare(b.lastSeen.Load(), a.lastSeen.Load()) })
	out := make([]Metadata, len(es))
	for i, e := range es {
		out[i] = e.md
	}
	return out
}

// list returns the metadata of metric (every name when metric is ""),
// sorted by name: at most limit names (no bound when limit < 0) and at
// most perMetric entries each (no bound when perMetric <= 0), the most
// recently seen first. The strings are the store's own; callers must not
// modify them (they cannot: they are strings).
func (s *metadataStore) list(metric string, limit, perMetric int) []MetricMetadataList {
	if limit == 0 {
		return nil
	}
	var out []MetricMetadataList
	visit := func(name string, l *metadataList) {
		es := l.entriesLocked()
		if perMetric > 0 && len(es) > perMetric {
			es = es[:perMetric]
		}
		out = append(out, MetricMetadataList{Metric: name, Entries: es})
	}
	if metric != "" {
		st := s.stripe(metric)
		st.mu.RLock()
		if l := st.m[metric]; l != nil {
			visit(metric, l)
		}
		st.mu.RUnlock()
		return out
	}
	for i := range s.stripes {
		st := &s.stripes[i]
		st.mu.RLock()
		for name, l := range st.m {
			visit(name, l)
		}
		st.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b MetricMetadataList) int { return strings.Compare(a.Metric, b.Metric) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// takeDirty returns the names changed since the last call.
func (s *metadataStore) takeDirty() []string {
	s.dirtyMu.Lock()
	defer s.dirtyMu.Unlock()
	if len(s.dirty) == 0 {
		return nil
	}
	names := make([]string, 0, len(s.dirty))
	for n := range s.dirty {
		names = append(names, n)
	}
	clear(s.dirty)
	return names
}

// markDirty queues names for the next persist again, after a failed one.
func (s *metadataStore) markDirty(names []string) {
	s.dirtyMu.Lock()
	defer s.dirtyMu.Unlock()
	for _, n := range names {
		s.dirty[n] = struct{}{}
	}
}

// snapshotOf returns the current metadata of name, the most recently
// seen first, and whether the name is kept.
func (s *metadataStore) snapshotOf(name string) ([]Metadata, bool) {
	st := s.stripe(name)
	st.mu.RLock()
	defer st.mu.RUnlock()
	l := st.m[name]
	if l == nil {
		return nil, false
	}
	return l.entriesLocked(), true
}

// restore puts persisted metadata of name back, the most recently seen
// first, within the bounds in force (they may have shrunk since).
func (s *metadataStore) restore(name string, mds []Metadata) {
	lim := s.limits.Load()
	for i, md := range mds {
		m := MetricMetadata{Metric: name, Metadata: md}
		m.Type = canonicalType(m.Type)
		if check(&m, lim) != "" || i >= lim.MaxPerMetric {
			continue
		}
		// Older than anything seen after the start, in their saved order.
		s.insert(&m, -int64(i)-1, lim)
	}
}

// Bytes of the metadata a head accounts for, part of Head.Bytes.
func (s *metadataStore) size() int64 { return s.bytes.Load() }
