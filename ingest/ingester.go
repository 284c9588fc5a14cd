package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// Ingester runs the write path of one request: decompress, decode,
// validate, append. It is safe for concurrent use.
type Ingester struct {
	store   tsdb.Appendable
	meta    MetadataSink               // nil: metadata is dropped; immutable
	targets *Targets                   // nil: completeness is not counted; immutable
	relabel Relabeler                  // nil: series are stored as sent; immutable
	series  *seriesCache[cachedSeries] // with relabel, alone: sent series → stored series; immutable
	limits  atomic.Pointer[Limits]
	// ring is nil for a node alone; in a ring, placements replaces series
	// as the cache of sent series (ring.go). Both immutable.
	ring       *RingOptions
	placements *seriesCache[cachedPlacement]
	// inflight counts what admitted write requests hold (admission.go);
	// mem refuses writes under memory pressure. mem is immutable.
	inflight inflight
	gate     writeGate // admitted requests' turns to decode and append
	mem      *memWatch
	metrics  *metrics
	logger   *slog.Logger
	now      func() time.Time
	scratch  sync.Pool // *writeScratch
	// lastLog throttles the refusal log to one line per logInterval: a
	// misbehaving sender must not flood the log with one line a request.
	lastLog atomic.Int64
}

const logInterval = 10 * time.Second

// Options configure an Ingester.
type Options struct {
	Limits     Limits
	Registerer prometheus.Registerer // may be nil
	Logger     *slog.Logger          // may be nil
	// Now is the clock that decides which samples are too far in the
	// future; nil means time.Now.
	Now func() time.Time
	// Relabeler rewrites or drops series after validation; nil stores
	// them as sent.
	Relabeler Relabeler
	// SeriesCacheEntries bounds the cache of sent series, used with a
	// Relabeler (about 40 bytes an entry). Zero means DefaultSeriesCacheEntries.
	SeriesCacheEntries int
	// Ring puts the node in a ring: writes go to each series' owners
	// (ring.go). Nil: the node stores every series itself.
	Ring *RingOptions
	// MemoryLimit is the process's memory limit in bytes (GOMEMLIMIT);
	// while the live heap is past MemoryWatermark of it, writes are
	// refused with ErrOverloaded. Zero turns the check off. A zero
	// MemoryWatermark means DefaultMemoryWatermark.
	MemoryLimit     int64
	MemoryWatermark float64
	// MetadataSink receives the metric metadata of every write request
	// whose samples were appended (a request refused whole hands over
	// nothing); nil drops metadata. In a ring the metadata stays on the
	// node that received the request: it is not forwarded to owners.
	MetadataSink MetadataSink
	// Targets counts the samples of every accepted request by scrape
	// target, for collection completeness (targets.go); nil: not
	// counted. In a ring each node counts what it received.
	Targets *Targets
}

// MetadataSink keeps metric metadata (a store in tsdb, wired by cmd).
// AddMetadata is called on the write path, once per request, with the
// request's entries: the strings alias the request's buffer and are valid
// only during the call, so an implementation copies what it keeps. It
// must be safe for concurrent use and should not block.
type MetadataSink interface {
	AddMetadata(md []Metadata)
}

// MaxMetadataStringBytes bounds a metadata entry's metric name, help and
// unit: an entry with a longer one is dropped and reported (400), the
// rest of the request is kept. Prometheus's help texts are a line or two.
const MaxMetadataStringBytes = 16 << 10

// DefaultSeriesCacheEntries covers the 10M series a node is designed for.
const DefaultSeriesCacheEntries = 10_000_000

// DefaultOptions returns the options with default limits.
func DefaultOptions() Options { return Options{Limits: DefaultLimits()} }

// New returns an Ingester appending to store.
func New(store tsdb.Appendable, opts Options) (*Ingester, error) {
	if err := opts.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("ingest limits: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SeriesCacheEntries <= 0 {
		opts.SeriesCacheEntries = DefaultSeriesCacheEntries
	}
	if opts.MemoryWatermark == 0 {
		opts.MemoryWatermark = DefaultMemoryWatermark
	}
	if opts.MemoryLimit < 0 || opts.MemoryWatermark < 0 || opts.MemoryWatermark > 1 {
		return nil, fmt.Errorf("memory limit %d and watermark %g: want a limit ≥ 0 and a watermark in (0, 1]", opts.MemoryLimit, opts.MemoryWatermark)
	}
	if opts.Ring != nil {
		if err := opts.Ring.validate(); err != nil {
			return nil, err
		}
	}
	in := &Ingester{store: store, meta: opts.MetadataSink, targets: opts.Targets, relabel: opts.Relabeler, logger: opts.Logger, now: opts.Now,
		mem: newMemWatch(opts.MemoryLimit, opts.MemoryWatermark), ring: opts.Ring}
	in.metrics = newMetrics(opts.Registerer, in)
	switch {
	case opts.Relabeler != nil && opts.Ring != nil:
		in.placements = newSeriesCache[cachedPlacement](opts.SeriesCacheEntries)
	case opts.Relabeler != nil:
		in.series = newSeriesCache[cachedSeries](opts.SeriesCacheEntries)
	}
	in.limits.Store(&opts.Limits)
	return in, nil
}

// SetLimits replaces the limits; requests in flight keep the old ones.
func (in *Ingester) SetLimits(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	in.limits.Store(&l)
	// Cached series skip validation: new limits must see them again.
	if in.series != nil {
		in.series.reset()
	}
	if in.placements != nil {
		in.placements.reset()
	}
	return nil
}

// Limits returns the limits in force.
func (in *Ingester) Limits() Limits { return *in.limits.Load() }

// Result says what happened to the samples of one request.
type Result struct {
	Series         int // series in the request
	Samples        int // samples in the request, float and histogram
	Accepted       int // samples stored or ignored as exact duplicates
	RefusedSeries  int // series refused whole by validation
	RefusedSamples int // samples refused, including those of refused series
	DroppedSamples int // samples of series dropped by relabeling: not stored, not an error
	DedupedSamples int // samples of an HA replica not elected: not stored, not an error
	// Exemplars in the request and refused: a 1.0 request's exemplars
	// are ignored (counted, not refused), a 2.0 request's refused.
	Exemplars        int
	RefusedExemplars int
	FirstRefusal     error
}

// Written returns what the request wrote, for the remote write 2.0
// X-Prometheus-Remote-Write-*-Written headers: float samples stored or
// taken on purpose (exact duplicates, samples dropped by relabeling or
// HA dedup, which a sender must not send again), and no histograms or
// exemplars, which etcdgate does not store.
func (r Result) Written() (samples, histograms, exemplars int) {
	return r.Accepted + r.DroppedSamples + r.DedupedSamples, 0, 0
}

// Err returns nil when every sample was accepted, and otherwise an error
// that names the first problem and counts what was refused. It wraps
// ErrInvalidSeries or ErrRejectedSamples.
func (r Result) Err() error {
	if r.FirstRefusal == nil {
		return nil
	}
	if r.RefusedExemplars > 0 {
		return fmt.Errorf("refused %d of %d samples (%d of %d series invalid) and %d exemplars; first: %w",
			r.RefusedSamples, r.Samples, r.RefusedSeries, r.Series, r.RefusedExemplars, r.FirstRefusal)
	}
	return fmt.Errorf("refused %d of %d samples (%d of %d series invalid); first: %w",
		r.RefusedSamples, r.Samples, r.RefusedSeries, r.Series, r.FirstRefusal)
}

// writeScratch is the per-request memory, pooled so that steady ingestion
// allocates nothing per sample.
type writeScratch struct {
	raw       []byte // decompressed protobuf; wr's strings alias it
	wr        WriteRequest
	builder   labels.ScratchBuilder
	hashBuf   []byte        // scratch of sentHashes
	storedBuf []byte        // scratch of tsdb.LabelPairsHash
	hashes    []uint64      // prefetchStored: each series' label hash, 0 if not storable as sent
	lset      labels.Labels // reused; valid only until the next series
	// adm is the request being decoded, charged by reserve, which is
	// sc.charge bound once so that a request allocates no closure.
	adm     *Admission
	reserve func(int) error
	// local: the request came from another node of the ring, its series
	// already relabeled (WriteLocal); ring: the ring path's scratch.
	local bool
	ring  ringScratch
	// push: the series come from this process (Push), not a request:
	// nothing was admitted for them and HA dedup does not apply.
	push bool
	// v2: the body is a remote write 2.0 Request.
	v2     bool
	rawLen int // decompressed bytes of the request
	// tally gathers the request's samples by scrape target.
	tally requestTally
}

func (sc *writeScratch) charge(n int) error { return sc.adm.reserve(int64(n)) }

// Pooled scratch keeps buffers up to these sizes: one huge request must
// not pin its memory for as long as the pool holds it.
const (
	maxPooledRawBytes     = 4 << 20
	maxPooledDecodedBytes = 4 << 20
	maxPooledHashBytes    = 64 << 10
)

// Write ingests one snappy-compressed remote-write 1.0 body. A returned
// error is a fault of the whole request (ErrBodyTooLarge,
// ErrRequestTooLarge, ErrBadSnappy, ErrBadProtobuf), overload
// (ErrOverloaded) or a fault of the store, and nothing was stored;
// otherwise the Result tells which samples were refused, while the rest
// were stored. Write admits the request itself; a server that admits a
// request before reading its body calls Admit and Admission.Write.
func (in *Ingester) Write(body []byte) (Result, error) {
	a, err := in.Admit(int64(len(body)))
	if err != nil {
		return Result{}, err
	}
	defer a.Release()
	return a.Write(body)
}

// Write ingests the admitted request's body, as Ingester.Write does,
// charging the decompressed body and what it decodes into to the
// request's budget before allocating them. It must be called at most once.
func (a *Admission) Write(body []byte) (Result, error) { return a.write(body, false, false) }

// WriteV2 is Write of a remote write 2.0 body (io.prometheus.write.v2.Request).
func (a *Admission) WriteV2(body []byte) (Result, error) { return a.write(body, false, true) }

// WriteLocal ingests the admitted body of another node of the ring: its
// series are relabeled already and owned here, so they are validated and
// appended to this node's store only, never relabeled, deduplicated or
// forwarded again.
func (a *Admission) WriteLocal(body []byte) (Result, error) { return a.write(body, true, false) }

func (a *Admission) write(body []byte, local, v2 bool) (Result, error) {
	in, lim := a.in, a.lim
	if err := a.settleBody(int64(len(body))); err != nil {
		in.metrics.requestsRejected.WithLabelValues(requestRejectReason(err)).Inc()
		return Result{}, err
	}
	if err := a.enterGate(); err != nil {
		in.metrics.requestsRejected.WithLabelValues(requestRejectReason(err)).Inc()
		return Result{}, err
	}
	defer a.leaveGate()
	sc := in.getScratch()
	defer in.putScratch(sc)
	sc.adm, sc.local, sc.v2 = a, local, v2
	if err := in.decode(body, lim, sc); err != nil {
		in.metrics.requestsRejected.WithLabelValues(requestRejectReason(err)).Inc()
		return Result{}, err
	}
	switch {
	case v2:
		in.metrics.decodedV2.Inc()
	case !local:
		in.metrics.decodedV1.Inc()
	}
	res := Result{Series: len(sc.wr.Timeseries), Samples: sc.wr.NumSamples()}
	in.metrics.seriesReceived.Add(float64(res.Series))
	in.metrics.samplesReceived.Add(float64(res.Samples))
	var err error
	if in.ring != nil && !local {
		res, err = in.appendAllRing(sc.wr.Timeseries, lim, sc, res)
	} else {
		res, err = in.appendAll(sc.wr.Timeseries, lim, sc, res)
	}
	if err != nil {
		return res, err
	}
	if derr := sc.wr.DroppedMetadataError(MaxMetadataStringBytes); derr != nil && res.FirstRefusal == nil {
		res.FirstRefusal = derr
	}
	// The metadata stays here, on the node that received it, in a ring too.
	if in.meta != nil && len(sc.wr.Metadata) > 0 {
		in.meta.AddMetadata(sc.wr.Metadata)
	}
	if in.targets != nil && !local {
		in.targets.observe(sc.wr.Timeseries, &sc.tally)
	}
	return res, nil
}

// appendAll validates, relabels and appends series, commits them, and
// completes res, which counts their series and float samples already.
func (in *Ingester) appendAll(series []TimeSeries, lim *Limits, sc *writeScratch, res Result) (Result, error) {
	app := in.store.Appender()
	maxT := in.now().Add(lim.MaxFutureDrift).UnixMilli()
	asSent := in.relabel == nil || sc.local
	for len(series) > 0 {
		batch := series[:min(len(series), prefetchBatch)]
		if asSent {
			in.prefetchStored(app, batch, lim, sc)
		}
		for i := range batch {
			var hash uint64
			if asSent {
				hash = sc.hashes[i]
			}
			in.appendSeries(app, &batch[i], hash, lim, maxT, sc, &res)
		}
		series = series[len(batch):]
	}
	if err := app.Commit(); err != nil {
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	res.Accepted = res.Samples - res.RefusedSamples - res.DroppedSamples - res.DedupedSamples
	in.metrics.samplesAccepted.Add(float64(res.Accepted))
	if res.DroppedSamples > 0 {
		in.metrics.samplesDropped.Add(float64(res.DroppedSamples))
	}
	if err := res.Err(); err != nil {
		in.logRefusal(err)
	}
	return res, nil
}

func (in *Ingester) getScratch() *writeScratch {
	if sc, ok := in.scratch.Get().(*writeScratch); ok {
		return sc
	}
	sc := &writeScratch{builder: labels.NewScratchBuilder(16)}
	sc.reserve = sc.charge
	return sc
}

func (in *Ingester) logRefusal(err error) {
	now := in.now().UnixNano()
	last := in.lastLog.Load()
	if now-last < int64(logInterval) || !in.lastLog.CompareAndSwap(last, now) {
		return
	}
	in.logger.Warn("write request had refused samples (logged at most every 10s)", "err", err)
}

func (in *Ingester) putScratch(sc *writeScratch) {
	sc.wr.Release() // its strings alias sc.raw, which goes to the pool with it
	sc.adm, sc.local, sc.push, sc.v2 = nil, false, false, false
	sc.ring.reset()
	if cap(sc.raw) > maxPooledRawBytes || sc.wr.BufferBytes() > maxPooledDecodedBytes || cap(sc.hashBuf) > maxPooledHashBytes {
		return
	}
	in.scratch.Put(sc)
}

// decode decompresses body into sc.raw and decodes it into sc.wr. The
// decoded length is checked and charged to the request before anything is
// allocated, so a small body claiming gigabytes is refused up front, and
// the decoder charges each buffer before it grows.
func (in *Ingester) decode(body []byte, lim *Limits, sc *writeScratch) error {
	if len(body) > lim.MaxCompressedBodyBytes {
		return fmt.Errorf("%w: %d bytes compressed, limit %d", ErrBodyTooLarge, len(body), lim.MaxCompressedBodyBytes)
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnappy, err)
	}
	if n > lim.MaxDecompressedBodyBytes {
		return fmt.Errorf("%w: %d bytes decompressed, limit %d", ErrBodyTooLarge, n, lim.MaxDecompressedBodyBytes)
	}
	if err := sc.adm.reserve(int64(n)); err != nil {
		return err
	}
	if cap(sc.raw) < n {
		sc.raw = make([]byte, n)
	}
	raw, err := snappy.Decode(sc.raw[:cap(sc.raw)], body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnappy, err)
	}
	sc.rawLen = len(raw)
	dl := DecodeLimits{
		MaxSeries:  lim.MaxSeriesPerRequest,
		MaxLabels:  lim.MaxLabelsPerRequest,
		MaxSamples: lim.MaxSamplesPerRequest,
		// One metadata entry a series in 2.0; Prometheus's 1.0 metadata
		// requests hold at most max_samples_per_send entries.
		MaxMetadata:      lim.MaxSeriesPerRequest,
		MaxMetadataBytes: MaxMetadataStringBytes,
		// Every label name and value and every series' help and unit a
		// symbol of its own, as a sender that does not deduplicate sends.
		MaxSymbols: 2*lim.MaxLabelsPerRequest + 2*lim.MaxSeriesPerRequest + 1,
		Reserve:    sc.reserve,
	}
	if sc.v2 {
		return sc.wr.UnmarshalV2Limited(raw, dl)
	}
	return sc.wr.UnmarshalLimited(raw, dl)
}

// appendSeries validates one series and appends its samples, recording
// refusals in res.
// hash is the label hash prefetchStored computed for ts, 0 if none.
func (in *Ingester) appendSeries(app tsdb.Appender, ts *TimeSeries, hash uint64, lim *Limits, maxT int64, sc *writeScratch, res *Result) {
	if in.refuseUnsupported(ts, sc, res) || len(ts.Samples) == 0 {
		return
	}
	var h, check uint64
	if in.series != nil && !sc.local {
		h, check, sc.hashBuf = sentHashes(ts.Labels, sc.hashBuf)
		if in.appendKnown(app, ts, h, check, lim, maxT, sc, res) {
			return
		}
	}
	asSent := in.relabel == nil || sc.local
	samples := ts.Samples
	if asSent {
		if samples = in.appendStored(app, ts, hash, lim, maxT, sc, res); len(samples) == 0 {
			return
		}
	}
	if r := buildLabels(ts.Labels, lim, &sc.builder, &sc.lset); r != nil {
		in.refuseSeries(ts, r, res)
		return
	}
	if asSent {
		in.appendSamples(app, samples, sc.lset, lim, maxT, res)
		return
	}
	out, keep, measured, outcome := in.relabel.RelabelOutcome(sc.lset)
	if !keep {
		res.DroppedSamples += len(ts.Samples)
		in.series.put(h, cachedSeries{check: check, outcome: outcome})
		return
	}
	if measured {
		// Measured series are few and need their labels on every request:
		// they are not cached.
		defer in.relabel.Measure(out, ts.Samples[len(ts.Samples)-1].Value)
		in.appendSamples(app, ts.Samples, out, lim, maxT, res)
		return
	}
	if ref := in.appendSamples(app, ts.Samples, out, lim, maxT, res); ref != 0 {
		in.series.put(h, cachedSeries{check: check, ref: ref, outcome: outcome})
	}
}

// refuseUnsupported refuses what a series carries that etcdgate does not
// store: native histograms, and a 2.0 request's exemplars (a 1.0
// request's are ignored, as they always were); their float samples are
// kept. A 2.0 series with a start timestamp after its sample's timestamp
// is refused whole, and refuseUnsupported returns true.
func (in *Ingester) refuseUnsupported(ts *TimeSeries, sc *writeScratch, res *Result) bool {
	if ts.Histograms > 0 {
		res.Samples += ts.Histograms
		in.refuse(res, invalid(reasonNativeHistogram, "series %s: %d native histogram samples are not supported",
			metricNameOf(ts.Labels), ts.Histograms), ts.Histograms)
	}
	res.Exemplars += ts.Exemplars
	if ts.Exemplars > 0 && sc.v2 {
		res.RefusedExemplars += ts.Exemplars
		in.refuse(res, invalid(reasonExemplar, "series %s: %d exemplars are not supported",
			metricNameOf(ts.Labels), ts.Exemplars), 0)
	}
	if ts.BadStartTimestamps > 0 {
		in.refuseSeries(ts, invalid(reasonStartTimestamp, "%d samples have a start timestamp after their timestamp", ts.BadStartTimestamps), res)
		return true
	}
	return false
}

// appendKnown appends the samples of a series the cache knows, by ref.
// It returns false when the cache cannot serve the series (unknown,
// outcome stale, stored series gone) and nothing was appended.
func (in *Ingester) appendKnown(app tsdb.Appender, ts *TimeSeries, h, check uint64, lim *Limits, maxT int64, sc *writeScratch, res *Result) bool {
	c, ok := in.series.get(h, check)
	if !ok || !in.relabel.Current(c.outcome) {
		return false
	}
	if c.ref == 0 {
		res.DroppedSamples += len(ts.Samples)
		return true
	}
	for _, s := range ts.Samples {
		if s.Timestamp > maxT {
			in.refuseSample(res, reasonTooFarInFuture, ErrInvalidSeries, func() string {
				return fmt.Sprintf("series %s: sample at %s is more than %s in the future",
					sentLabels(ts.Labels), formatMillis(s.Timestamp), lim.MaxFutureDrift)
			})
			continue
		}
		ok, err := app.AppendRef(c.ref, s.Timestamp, s.Value)
		if !ok {
			// The stored series is gone (retention): the request's samples
			// go by labels; those appended already are exact duplicates.
			return false
		}
		if err != nil {
			in.refuseSample(res, tsdb.RejectReason(err), ErrRejectedSamples, func() string {
				return fmt.Sprintf("series %s: sample at %s: %v", sentLabels(ts.Labels), formatMillis(s.Timestamp), err)
			})
		}
	}
	return true
}

// prefetchBatch is how many series a request's lookups prefetch at a
// time: enough for the CPU to overlap their cache misses, few enough
// that what they bring in (about five cache lines a series) stays in
// the cache until the series are appended.
const prefetchBatch = 256

// prefetchStored has the appender prefetch the lookups appendStored will
// do for batch, so that their cache misses overlap: in steady ingest at a
// million series and more, one lookup after another spent most of its
// time waiting for memory. It leaves each series' label hash in
// sc.hashes for appendStored (0 for one not storable as sent, whose
// prefetch of stripe 0 costs next to nothing).
func (in *Ingester) prefetchStored(app tsdb.Appender, batch []TimeSeries, lim *Limits, sc *writeScratch) {
	sc.hashes = sc.hashes[:0]
	for i := range batch {
		var hash uint64
		if storableAsSent(batch[i].Labels, lim) {
			hash, sc.storedBuf = tsdb.LabelPairsHash(batch[i].Labels, sc.storedBuf)
		}
		sc.hashes = append(sc.hashes, hash)
	}
	app.Prefetch(sc.hashes)
}

// appendStored appends the samples of a series stored as sent that the
// store already holds, by ref, without validating its labels: they were
// valid when the series was created, and what may have changed since
// (the limits on counts and lengths) is checked here, or by
// prefetchStored when it gives a hash. Validation was a
// quarter of the CPU of steady ingest, where nearly every series is
// known. It returns the samples it did not take, for the caller to
// validate the labels and append by them: all of them when the labels
// are not in the form the store holds (sorted, without empty values) or
// name no series in memory, the rest when the series was removed midway.
func (in *Ingester) appendStored(app tsdb.Appender, ts *TimeSeries, hash uint64, lim *Limits, maxT int64, sc *writeScratch, res *Result) []Sample {
	if hash == 0 {
		// prefetchStored leaves 0 for labels not storable as sent (and,
		// once in 2^64, for storable ones that hash to 0): checked again.
		if !storableAsSent(ts.Labels, lim) {
			return ts.Samples
		}
		hash, sc.storedBuf = tsdb.LabelPairsHash(ts.Labels, sc.storedBuf)
	}
	ref := app.Lookup(hash, ts.Labels)
	if ref == 0 {
		return ts.Samples
	}
	for i, s := range ts.Samples {
		if s.Timestamp > maxT {
			in.refuseSample(res, reasonTooFarInFuture, ErrInvalidSeries, func() string {
				return fmt.Sprintf("series %s: sample at %s is more than %s in the future",
					sentLabels(ts.Labels), formatMillis(s.Timestamp), lim.MaxFutureDrift)
			})
			continue
		}
		ok, err := app.AppendRef(ref, s.Timestamp, s.Value)
		if !ok {
			return ts.Samples[i:] // removed since the lookup (retention)
		}
		if err != nil {
			in.refuseSample(res, tsdb.RejectReason(err), ErrRejectedSamples, func() string {
				return fmt.Sprintf("series %s: sample at %s: %v", sentLabels(ts.Labels), formatMillis(s.Timestamp), err)
			})
		}
	}
	return nil
}

// storableAsSent reports whether ls is already in the form a stored label
// set has (names strictly ascending, no empty value) and within the
// current limits on label count and lengths, so that if the store holds
// a series with exactly these labels, validating them again would pass.
func storableAsSent(ls []Label, lim *Limits) bool {
	if len(ls) == 0 || len(ls) > lim.MaxLabelsPerSeries {
		return false
	}
	for i, l := range ls {
		if l.Value == "" || len(l.Name) > lim.MaxLabelNameLength || len(l.Value) > lim.MaxLabelValueLength ||
			i > 0 && l.Name <= ls[i-1].Name {
			return false
		}
	}
	return true
}

// sentLabels formats decoded labels for an error message.
func sentLabels(ls []Label) string {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels().String()
}

// appendSamples appends the samples of one series stored as lset and
// returns the stored series' ref, or 0 if no sample reached the store.
func (in *Ingester) appendSamples(app tsdb.Appender, samples []Sample, lset labels.Labels, lim *Limits, maxT int64, res *Result) tsdb.SeriesRef {
	var ref tsdb.SeriesRef
	for _, s := range samples {
		if s.Timestamp > maxT {
			in.refuseSample(res, reasonTooFarInFuture, ErrInvalidSeries, func() string {
				return fmt.Sprintf("series %s: sample at %s is more than %s in the future",
					lset.String(), formatMillis(s.Timestamp), lim.MaxFutureDrift)
			})
			continue
		}
		r, err := app.AppendSeries(lset, s.Timestamp, s.Value)
		if r != 0 {
			ref = r
		}
		if err != nil {
			in.refuseSample(res, tsdb.RejectReason(err), ErrRejectedSamples, func() string {
				return fmt.Sprintf("series %s: sample at %s: %v", lset.String(), formatMillis(s.Timestamp), err)
			})
		}
	}
	return ref
}

func formatMillis(t int64) string {
	return time.UnixMilli(t).UTC().Format(time.RFC3339Nano)
}

// refuseSample counts one refused sample. The message is built only for
// the first refusal of a request: a batch of thousands of refused samples
// must not format thousands of messages nobody reads.
func (in *Ingester) refuseSample(res *Result, reason string, class error, msg func() string) {
	if res.FirstRefusal != nil {
		res.RefusedSamples++
		in.metrics.samplesRejected.WithLabelValues(reason).Inc()
		return
	}
	in.refuse(res, &refusal{reason: reason, msg: msg(), class: class}, 1)
}

// refuse counts n refused samples and keeps the first refusal.
// refuseSeries refuses a whole series that failed validation.
func (in *Ingester) refuseSeries(ts *TimeSeries, r *refusal, res *Result) {
	if r.reason != reasonDuplicateLabelName && r.reason != reasonMissingMetricName && r.reason != reasonTooManyLabels {
		r.msg = fmt.Sprintf("series %s: %s", metricNameOf(ts.Labels), r.msg)
	}
	res.RefusedSeries++
	in.metrics.seriesRejected.WithLabelValues(r.reason).Inc()
	in.refuse(res, r, len(ts.Samples))
}

func (in *Ingester) refuse(res *Result, r *refusal, n int) {
	res.RefusedSamples += n
	in.metrics.samplesRejected.WithLabelValues(r.reason).Add(float64(n))
	if res.FirstRefusal == nil {
		res.FirstRefusal = r
	}
}

// metricNameOf names a series for an error message before its labels are
// validated.
func metricNameOf(ls []Label) string {
	for _, l := range ls {
		if l.Name == model.MetricNameLabel {
			return fmt.Sprintf("%.200q", l.Value)
		}
	}
	return "without metric name"
}

func requestRejectReason(err error) string {
	var oe *OverloadError
	switch {
	case errors.As(err, &oe):
		return "overloaded_" + oe.Reason
	case errors.Is(err, ErrBodyTooLarge):
		return "body_too_large"
	case errors.Is(err, ErrRequestTooLarge):
		return "request_too_large"
	case errors.Is(err, ErrBadSnappy):
		return "bad_snappy"
	case errors.Is(err, ErrBadProtobuf):
		return "bad_protobuf"
	}
	return "other"
}
