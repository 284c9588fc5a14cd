package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// Remote read: POST /api/v1/read, the protocol Prometheus serves
// (storage/remote/read_handler.go of v0.316.0): a snappy-compressed
// prompb.ReadRequest in, and, as the request's accepted_response_types
// negotiate, either a snappy-compressed prompb.ReadResponse (SAMPLES)
// or a stream of CRC-checked prompb.ChunkedReadResponse frames
// (STREAMED_XOR_CHUNKS, remote_read_stream.go).
//
// A read goes through what the query engine reads (readStore: the
// ring's fan-out on a node of a ring) under the query limits: the
// node's query timeout (query.timeout), its series limit per selector
// (query.max_series), and, for SAMPLES, whose answer is built whole
// before it is sent, the samples of the whole request
// (query.max_samples). The body and the number of queries are bounded
// before anything is decoded, and remote reads run in slots of their
// own (RemoteReadConcurrency). Errors are plain text, as Prometheus
// answers them; the client's fault is a 4xx.

// Sentinel errors of remote read; remoteReadStatus maps them to codes.
var (
	// errReadBadRequest: the request is not a valid ReadRequest (bad
	// snappy, bad protobuf, bad matchers or times, no queries).
	errReadBadRequest = errors.New("bad remote read request")
	// errReadTooLarge: the decoded body exceeds the limit.
	errReadTooLarge = errors.New("remote read request too large")
	// errReadTooManyQueries: more queries than RemoteReadMaxQueries.
	errReadTooManyQueries = errors.New("too many queries in one remote read request")
	// errReadUnsupportedType: none of the accepted response types is
	// served.
	errReadUnsupportedType = errors.New("no supported response type accepted")
	// errReadSampleLimit: a SAMPLES answer would hold more samples than
	// query.max_samples.
	errReadSampleLimit = errors.New("remote read exceeds the sample limit (query.max_samples)")
	// errReadBusy: no remote read slot freed up before the timeout.
	errReadBusy = errors.New("too many remote reads under way (query.max_concurrency)")
)

// Content types of the answers.
const (
	remoteReadSamplesType = "application/x-protobuf"
	remoteReadStreamType  = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
)

// Default remote read limits (ReadLimits).
const (
	// DefaultRemoteReadMaxBodyBytes bounds a request's body, compressed
	// and decompressed. A query is a few matchers and times: Prometheus
	// sends one per request.
	DefaultRemoteReadMaxBodyBytes = 4 << 20
	// DefaultRemoteReadMaxQueries bounds the queries of one request.
	DefaultRemoteReadMaxQueries = 64
	// DefaultRemoteReadConcurrency is Prometheus's
	// --storage.remote.read-concurrent-limit.
	DefaultRemoteReadConcurrency = 10
	// remoteReadFrameBytes is Prometheus's
	// --storage.remote.read-max-bytes-in-frame: no frame of a streamed
	// answer is larger.
	remoteReadFrameBytes = 1 << 20
)

// remoteReadMetrics count remote reads by the response type served.
type remoteReadMetrics struct {
	requests *prometheus.CounterVec
}

func newRemoteReadMetrics(reg prometheus.Registerer) *remoteReadMetrics {
	m := &remoteReadMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "etcdgate_remote_read_requests_total",
		Help: "Remote read requests decoded and started, by the response type negotiated (SAMPLES or STREAMED_XOR_CHUNKS).",
	}, []string{"type"})}
	for _, t := range []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS} {
		m.requests.WithLabelValues(t.String())
	}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}

// readQuery is one decoded query of a ReadRequest, its matchers checked.
type readQuery struct {
	mint, maxt int64
	matchers   []*labels.Matcher
	// seriesOnly: hints.func is "series", the caller wants labels only
	// (Prometheus's querier then loads no samples).
	seriesOnly bool
}

// remoteReadLimits are the bounds decodeReadRequest applies.
type remoteReadLimits struct {
	maxBodyBytes int
	maxQueries   int
	// maxMatcherBytes bounds a matcher's value (query.max_query_length):
	// a regexp is compiled.
	maxMatcherBytes int
}

func (l ReadLimits) remoteRead() remoteReadLimits {
	maxMatcher := l.Parse.MaxLength
	if maxMatcher <= 0 {
		maxMatcher = evaluator.DefaultMaxQueryLength
	}
	return remoteReadLimits{maxBodyBytes: l.RemoteReadMaxBodyBytes, maxQueries: l.RemoteReadMaxQueries,
		maxMatcherBytes: maxMatcher}
}

// decodeReadRequest decodes a snappy-compressed prompb.ReadRequest and
// checks it. Every bound comes before the work it bounds: the decoded
// length (from snappy's header) before decompressing, the number of
// queries (a scan of the wire format) before unmarshaling, a matcher's
// length before its regexp is compiled.
func decodeReadRequest(compressed []byte, lim remoteReadLimits) ([]readQuery, prompb.ReadRequest_ResponseType, error) {
	n, err := snappy.DecodedLen(compressed)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w: %v", errReadBadRequest, ingest.ErrBadSnappy, err)
	}
	if n > lim.maxBodyBytes {
		return nil, 0, fmt.Errorf("%w: %d bytes decoded, limit %d", errReadTooLarge, n, lim.maxBodyBytes)
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w: %v", errReadBadRequest, ingest.ErrBadSnappy, err)
	}
	nq, err := countQueries(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: malformed protobuf ReadRequest: %v", errReadBadRequest, err)
	}
	if nq > lim.maxQueries {
		return nil, 0, fmt.Errorf("%w: %d queries, limit %d", errReadTooManyQueries, nq, lim.maxQueries)
	}
	var req prompb.ReadRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, 0, fmt.Errorf("%w: malformed protobuf ReadRequest: %v", errReadBadRequest, err)
	}
	if len(req.Queries) == 0 {
		return nil, 0, fmt.Errorf("%w: no queries", errReadBadRequest)
	}
	typ, err := negotiateReadType(req.AcceptedResponseTypes)
	if err != nil {
		return nil, 0, err
	}
	qs := make([]readQuery, len(req.Queries))
	for i, q := range req.Queries {
		if qs[i], err = checkReadQuery(q, lim); err != nil {
			return nil, 0, fmt.Errorf("%w: query %d: %v", errReadBadRequest, i, err)
		}
	}
	return qs, typ, nil
}

// countQueries counts the queries (field 1) of an encoded ReadRequest
// without decoding them:
//
//	message ReadRequest {
//	  repeated Query queries = 1;
//	  repeated ResponseType accepted_response_types = 2;
//	}
//
// It reads the wire format as prompb's generated decoder does (its
// varints, field numbers truncated to int32, skipped groups), so that
// it accepts what that decoder accepts and counts what it would decode;
// it may accept more, which the decoder then refuses.
func countQueries(b []byte) (int, error) {
	n := 0
	for i := 0; i < len(b); {
		tag, l := pbVarint(b[i:])
		if l < 0 {
			return 0, errors.New("bad field tag")
		}
		num, typ := int32(tag>>3), tag&7
		if num == 1 && typ == 2 {
			n++
		} else if num == 1 || num <= 0 || typ == 4 {
			return 0, fmt.Errorf("illegal tag %d (wire type %d)", num, typ)
		}
		skip, err := pbSkip(b[i:])
		if err != nil {
			return 0, err
		}
		i += skip
	}
	return n, nil
}

// pbVarint reads a varint as the generated decoders do: up to ten
// bytes, the bits past 64 dropped. l < 0: truncated or too long.
func pbVarint(b []byte) (v uint64, l int) {
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// pbSkip returns the length of the field at the start of b, tag
// included, as the generated decoders skip an unknown field (groups by
// their depth).
func pbSkip(b []byte) (int, error) {
	i, depth := 0, 0
	for i < len(b) {
		tag, l := pbVarint(b[i:])
		if l < 0 {
			return 0, errors.New("bad field tag")
		}
		i += l
		switch tag & 7 {
		case 0:
			if _, l = pbVarint(b[i:]); l < 0 {
				return 0, errors.New("bad varint")
			}
			i += l
		case 1:
			i += 8
		case 2:
			length, l := pbVarint(b[i:])
			if l < 0 || int(length) < 0 {
				return 0, errors.New("bad length")
			}
			i += l + int(length)
		case 3:
			depth++
		case 4:
			if depth == 0 {
				return 0, errors.New("unexpected end of group")
			}
			depth--
		case 5:
			i += 4
		default:
			return 0, fmt.Errorf("illegal wire type %d", tag&7)
		}
		if i < 0 || i > len(b) {
			return 0, errors.New("field past the end")
		}
		if depth == 0 {
			return i, nil
		}
	}
	return 0, errors.New("unterminated group")
}

// negotiateReadType picks the first accepted type that is served, as
// Prometheus does; none accepted means SAMPLES.
func negotiateReadType(accepted []prompb.ReadRequest_ResponseType) (prompb.ReadRequest_ResponseType, error) {
	if len(accepted) == 0 {
		return prompb.ReadRequest_SAMPLES, nil
	}
	for _, t := range accepted {
		if t == prompb.ReadRequest_SAMPLES || t == prompb.ReadRequest_STREAMED_XOR_CHUNKS {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: %v; served: SAMPLES, STREAMED_XOR_CHUNKS", errReadUnsupportedType, accepted)
}

// checkReadQuery converts and checks one query. Its time range is
// narrowed to the hints' start and end when they are given, as
// Prometheus's querier narrows it; a query must name at least one
// matcher that does not match the empty string, as a selector must.
func checkReadQuery(q *prompb.Query, lim remoteReadLimits) (readQuery, error) {
	rq := readQuery{mint: q.StartTimestampMs, maxt: q.EndTimestampMs}
	if rq.maxt < rq.mint {
		return rq, fmt.Errorf("end_timestamp_ms %d before start_timestamp_ms %d", rq.maxt, rq.mint)
	}
	if h := q.Hints; h != nil {
		if h.StartMs != 0 || h.EndMs != 0 {
			rq.mint, rq.maxt = max(rq.mint, h.StartMs), min(rq.maxt, h.EndMs)
		}
		rq.seriesOnly = h.Func == "series"
	}
	rq.matchers = make([]*labels.Matcher, 0, len(q.Matchers))
	for _, m := range q.Matchers {
		if m == nil {
			return rq, errors.New("empty matcher")
		}
		if lim.maxMatcherBytes > 0 && len(m.Value) > lim.maxMatcherBytes {
			return rq, fmt.Errorf("matcher %s: value of %d bytes, limit %d (query.max_query_length)", m.Name, len(m.Value), lim.maxMatcherBytes)
		}
		var typ labels.MatchType
		switch m.Type {
		case prompb.LabelMatcher_EQ:
			typ = labels.MatchEqual
		case prompb.LabelMatcher_NEQ:
			typ = labels.MatchNotEqual
		case prompb.LabelMatcher_RE:
			typ = labels.MatchRegexp
		case prompb.LabelMatcher_NRE:
			typ = labels.MatchNotRegexp
		default:
			return rq, fmt.Errorf("matcher %s: unknown type %d", m.Name, m.Type)
		}
		lm, err := labels.NewMatcher(typ, m.Name, m.Value)
		if err != nil {
			return rq, fmt.Errorf("matcher %s: %v", m.Name, err)
		}
		rq.matchers = append(rq.matchers, lm)
	}
	if !hasNonEmptyMatcher(rq.matchers) {
		return rq, errors.New("at least one matcher must not match the empty string")
	}
	return rq, nil
}

// remoteReadStatus maps a remote read error to its HTTP status code.
func remoteReadStatus(err error) int {
	switch {
	case errors.Is(err, ingest.ErrBodyTooLarge), errors.Is(err, errReadTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, errReadBadRequest), errors.Is(err, errReadTooManyQueries),
		errors.Is(err, errReadUnsupportedType), errors.Is(err, errTruncatedBody):
		return http.StatusBadRequest
	case errors.Is(err, errReadSampleLimit), errors.Is(err, tsdb.ErrTooManySeries):
		// The request is valid but asks for more than a query may
		// read, as the query API answers it.
		return http.StatusUnprocessableEntity
	case errors.Is(err, context.Canceled):
		return 499
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errReadBusy),
		errors.Is(err, ring.ErrPartialResponse):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func remoteReadError(w http.ResponseWriter, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("remote read timed out (query.timeout): %w", err)
	}
	http.Error(w, err.Error(), remoteReadStatus(err))
}

// remoteRead serves POST /api/v1/read.
func (a *API) remoteRead(w http.ResponseWriter, r *http.Request) {
	b := a.readyBackend(w, false)
	if b == nil {
		return
	}
	st := a.listingState()
	lim := st.limits
	allow, err := partialResponseParam(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	bufp := a.bodies.get()
	body, err := readBody(r, *bufp, lim.RemoteReadMaxBodyBytes)
	*bufp = body
	if err != nil {
		a.bodies.put(bufp)
		remoteReadError(w, err)
		return
	}
	queries, typ, err := decodeReadRequest(body, lim.remoteRead())
	a.bodies.put(bufp)
	if err != nil {
		remoteReadError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), lim.SelectTimeout)
	defer cancel()
	select {
	case st.remoteReads <- struct{}{}:
		defer func() { <-st.remoteReads }()
	case <-ctx.Done():
		remoteReadError(w, fmt.Errorf("%w: %w", errReadBusy, ctx.Err()))
		return
	}
	a.remoteReadMetrics.requests.WithLabelValues(typ.String()).Inc()
	ctx = tsdb.WithSeriesLimit(ctx, lim.SelectMaxSeries)
	if allow != nil {
		ctx = ring.WithPartialResponse(ctx, *allow)
	}
	ctx, ws := ring.WithWarnings(ctx)
	store := a.readStore(b)
	if typ == prompb.ReadRequest_STREAMED_XOR_CHUNKS {
		a.remoteReadStream(ctx, w, store, queries)
	} else {
		a.remoteReadSamples(ctx, w, store, queries, lim.RemoteReadMaxSamples)
	}
	if msgs := ws.Strings(); len(msgs) > 0 {
		// Remote read has no field for warnings: the answer was partial.
		if ok, held := a.remoteReadLogs.Allow("partial", time.Now()); ok {
			a.opts.Logger.Warn("remote read answered partially", "warnings", msgs, "suppressed", held)
		}
	}
}

// partialResponseParam reads the partial_response URL parameter (the
// body is protobuf, never a form); nil when absent.
func partialResponseParam(r *http.Request) (*bool, error) {
	s := r.URL.Query().Get("partial_response")
	if s == "" {
		return nil, nil
	}
	allow, err := strconv.ParseBool(s)
	if err != nil {
		return nil, fmt.Errorf("invalid parameter \"partial_response\": %q: want true or false", s)
	}
	return &allow, nil
}

// remoteReadSamples answers SAMPLES: every query's series with their
// samples in one snappy-compressed ReadResponse, built whole, so that
// the samples of the whole request are bounded by maxSamples, counted
// as they are read.
func (a *API) remoteReadSamples(ctx context.Context, w http.ResponseWriter, store tsdb.Queryable, queries []readQuery, maxSamples int64) {
	resp := prompb.ReadResponse{Results: make([]*prompb.QueryResult, len(queries))}
	var samples int64
	for i, q := range queries {
		res, err := readSamples(ctx, store, q, &samples, maxSamples)
		if err != nil {
			remoteReadError(w, err)
			return
		}
		resp.Results[i] = res
	}
	raw, err := resp.Marshal()
	if err != nil {
		remoteReadError(w, fmt.Errorf("marshal ReadResponse: %w", err))
		return
	}
	w.Header().Set("Content-Type", remoteReadSamplesType)
	w.Header().Set("Content-Encoding", "snappy")
	_, _ = w.Write(snappy.Encode(nil, raw)) // an error: the client went away
}

// readSamples reads one query's series in label order; series without
// samples in range are left out, but for a labels-only query.
func readSamples(ctx context.Context, store tsdb.Queryable, q readQuery, samples *int64, maxSamples int64) (*prompb.QueryResult, error) {
	res := &prompb.QueryResult{}
	if q.maxt < q.mint {
		return res, nil
	}
	qr, err := store.Querier(q.mint, q.maxt)
	if err != nil {
		return nil, err
	}
	defer qr.Close()
	set := qr.Select(ctx, q.matchers...)
	var (
		it tsdb.Iterator
		// scratch gathers a series' samples, copied out at their size.
		scratch []prompb.Sample
	)
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := set.At()
		ts := &prompb.TimeSeries{}
		if !q.seriesOnly {
			it = s.Iterator(it)
			scratch = scratch[:0]
			for it.Next() {
				if *samples++; *samples > maxSamples {
					return nil, fmt.Errorf("%w: more than %d samples", errReadSampleLimit, maxSamples)
				}
				t, v := it.At()
				scratch = append(scratch, prompb.Sample{Timestamp: t, Value: v})
			}
			if err := it.Err(); err != nil {
				return nil, err
			}
			if len(scratch) == 0 {
				continue
			}
			ts.Samples = slices.Clone(scratch)
		}
		ts.Labels = prompb.FromLabels(s.Labels(), nil)
		res.Timeseries = append(res.Timeseries, ts)
	}
	return res, set.Err()
}
