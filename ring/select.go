package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// SelectPath is the internal read endpoint every node of a ring serves:
// the series (or label names, or label values) of its LOCAL store that
// match one selector over a time range, as a compressed frame stream
// (select_codec.go). It never fans out again.
//
// Parameters (form-encoded, GET or POST): mode (series, labels, names or
// values; default series), match[] (at most one selector; required for
// series and labels), start and end (milliseconds, start <= end), limit
// (series: the select fails past it; labels: at most this many label
// sets; names and values: the series limit of the lookup; 1 to the
// node's query.max_series), name (the label of mode values).
const SelectPath = "/internal/v1/select"

// Select modes.
const (
	SelectSeries = "series" // label sets with their samples
	SelectLabels = "labels" // label sets only (/api/v1/series)
	SelectNames  = "names"  // label names
	SelectValues = "values" // values of one label
	// SelectDigests answers each series' key and content digest
	// (select_digests.go): the first phase of a pushed-down aggregation.
	SelectDigests = "digests"
)

// SelectRequest is one question to a node's select endpoint.
type SelectRequest struct {
	Mode       string
	Matchers   []*labels.Matcher
	Mint, Maxt int64
	Limit      int
	Name       string // label name of SelectValues
	// Chunks asks for the series the store holds as in-order chunks as
	// chunk frames (select_chunks.go): mode series only.
	Chunks bool
	// Keys, when not nil, restricts modes series and digests to the
	// series with these SeriesKeys (sorted, no repeats: SetKeys).
	Keys keySet
}

// SetKeys restricts the request to the series with these keys (sorted in
// place).
func (r *SelectRequest) SetKeys(keys []uint64) { r.Keys = newKeySet(keys) }

// Selector formats ms as a Prometheus selector, {a="b",c=~"d"}.
func Selector(ms []*labels.Matcher) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.Name)
		b.WriteString(m.Type.String())
		b.WriteString(strconv.Quote(m.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// form encodes the request as the endpoint's parameters.
func (r *SelectRequest) form() url.Values {
	v := url.Values{}
	v.Set("mode", r.Mode)
	if len(r.Matchers) > 0 {
		v.Set("match[]", Selector(r.Matchers))
	}
	v.Set("start", strconv.FormatInt(r.Mint, 10))
	v.Set("end", strconv.FormatInt(r.Maxt, 10))
	if r.Limit > 0 {
		v.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.Name != "" {
		v.Set("name", r.Name)
	}
	if r.Chunks {
		v.Set("chunks", "1")
	}
	if r.Keys != nil {
		v.Set("keys", EncodeKeys(r.Keys))
	}
	return v
}

// SelectResult is a node's answer: series in no particular order (a
// long series comes as several consecutive entries with the same labels,
// in time order), or strings. The caller owns it.
type SelectResult struct {
	Series  []SelectedSeries
	Strings []string
	Digests []SeriesDigest
	// WireBytes is the size of the compressed answer read.
	WireBytes int64
}

// SelectedSeries is one series of an answer: its samples, or (from a
// chunk frame) its chunks.
type SelectedSeries struct {
	Labels  labels.Labels
	Samples []Sample
	Chunks  []tsdb.Chunk
}

// Select asks node n's select endpoint (POST n.URL+SelectPath) with the
// peers' client and credentials, and decodes its answer within lim. ctx
// bounds the whole exchange. A node's series limit comes back as an
// error wrapping tsdb.ErrTooManySeries; a malformed, truncated or
// oversized answer as ErrBadSelectStream; any other failure names the
// node.
func (p *Peers) Select(ctx context.Context, n *Node, sr SelectRequest, lim SelectLimits) (*SelectResult, error) {
	fs := p.fanout.forPeer(n.Name)
	start := time.Now()
	res, err := p.selectFrom(ctx, n, sr, lim)
	fs.duration.Observe(time.Since(start).Seconds())
	if res != nil {
		fs.bytes.Add(float64(res.WireBytes))
	}
	if err != nil {
		fs.failed.Inc()
		if ctx.Err() == nil && !errors.Is(err, tsdb.ErrTooManySeries) {
			if ok, held := p.logs.Allow("select/"+n.Name, time.Now()); ok {
				p.opts.Logger.Warn("ring fan-out read failed", "peer", n.Name, "err", err, "suppressed", held)
			}
		}
		return res, err
	}
	fs.success.Inc()
	return res, nil
}

func (p *Peers) selectFrom(ctx context.Context, n *Node, sr SelectRequest, lim SelectLimits) (*SelectResult, error) {
	body := sr.form().Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(n.URL, "/")+SelectPath, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("ring: select from %s: %w", n.Name, stripURLError(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "etcdgate-ring")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ring: select from %s (%s): %w", n.Name, redactURL(n.URL), stripURLError(err))
	}
	defer resp.Body.Close()
	cr := &countingReader{r: resp.Body}
	res := &SelectResult{}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(cr, maxResponseBytes))
		res.WireBytes = cr.n
		return res, fmt.Errorf("ring: select from %s: answer %d: %s", n.Name, resp.StatusCode, message(b))
	}
	err = decodeSelect(NewSelectDecoder(cr, lim), res)
	res.WireBytes = cr.n
	if err != nil {
		var se *SelectError
		if errors.As(err, &se) && se.TooManySeries {
			return res, fmt.Errorf("%w: node %s: %s", tsdb.ErrTooManySeries, n.Name, se.Message)
		}
		return res, fmt.Errorf("ring: select from %s: %w", n.Name, err)
	}
	return res, nil
}

// decodeSelect reads every frame of d into res. The samples of the
// series share arena slices of sampleArenaLen, one allocation per few
// thousand series rather than one per series; chunk data likewise share
// byte arenas. The frames of a series split in several (consecutive,
// with the same labels) become one entry.
func decodeSelect(d *SelectDecoder, res *SelectResult) error {
	var f Frame
	var arena []Sample
	var carena []tsdb.Chunk
	var data []byte
	for {
		err := d.Next(&f)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch f.Kind {
		case frameSeries:
			if cap(arena)-len(arena) < len(f.Samples) {
				arena = make([]Sample, 0, max(sampleArenaLen, len(f.Samples)))
			}
			n := len(arena)
			arena = append(arena, f.Samples...)
			res.Series = append(res.Series, SelectedSeries{Labels: f.Labels, Samples: arena[n:len(arena):len(arena)]})
		case frameChunks:
			last := len(res.Series) - 1
			if last >= 0 && len(res.Series[last].Chunks) > 0 && labels.Equal(res.Series[last].Labels, f.Labels) {
				// The next frame of a long series (rare): its own slice.
				chunks := slices.Clip(res.Series[last].Chunks)
				for _, c := range f.Chunks {
					if c.MinT <= chunks[len(chunks)-1].MaxT {
						return fmt.Errorf("%w: chunk frames of %s out of order", ErrBadSelectStream, f.Labels)
					}
					chunks = append(chunks, copyChunk(&data, c))
				}
				res.Series[last].Chunks = chunks
				continue
			}
			if cap(carena)-len(carena) < len(f.Chunks) {
				carena = make([]tsdb.Chunk, 0, max(chunkSliceArenaLen, len(f.Chunks)))
			}
			start := len(carena)
			for _, c := range f.Chunks {
				carena = append(carena, copyChunk(&data, c))
			}
			res.Series = append(res.Series, SelectedSeries{Labels: f.Labels, Chunks: carena[start:len(carena):len(carena)]})
		case frameString:
			res.Strings = append(res.Strings, f.String)
		case frameDigests:
			res.Digests = append(res.Digests, f.Digests...)
		}
	}
}

// copyChunk copies c's data to the arena *data (a new one when it is
// full): the frame's buffer is reused by the next frame.
func copyChunk(data *[]byte, c tsdb.Chunk) tsdb.Chunk {
	if cap(*data)-len(*data) < len(c.Data) {
		*data = make([]byte, 0, max(chunkArenaBytes, len(c.Data)))
	}
	n := len(*data)
	*data = append(*data, c.Data...)
	c.Data = (*data)[n:len(*data):len(*data)]
	return c
}

// chunkArenaBytes is the size of a chunk data arena of decodeSelect;
// chunkSliceArenaLen the length of an arena of series' chunk lists.
const (
	chunkArenaBytes    = 256 << 10
	chunkSliceArenaLen = 4096
)

// sampleArenaLen is the length of a sample arena of decodeSelect (64 KiB
// of samples): big enough to amortise, small enough that a few series
// kept from a large answer pin little.
const sampleArenaLen = 4096

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fanoutPeerMetrics are the per-peer metrics of fan-out reads.
type fanoutPeerMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec

	mu     sync.Mutex
	byPeer map[string]*fanoutPeerSeries // guarded by mu
}

type fanoutPeerSeries struct {
	success, failed prometheus.Counter
	duration        prometheus.Observer
	bytes           prometheus.Counter
}

func newFanoutPeerMetrics(reg prometheus.Registerer) *fanoutPeerMetrics {
	m := &fanoutPeerMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_fanout_requests_total",
			Help: "Fan-out read requests (internal select) to peers, by result: success or error.",
		}, []string{"peer", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcdgate_ring_fanout_duration_seconds",
			Help:    "Time of a fan-out read request to a peer, its whole answer read.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 60, 16),
		}, []string{"peer"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_fanout_received_bytes_total",
			Help: "Compressed bytes of fan-out read answers received from a peer.",
		}, []string{"peer"}),
		byPeer: map[string]*fanoutPeerSeries{},
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.bytes)
	}
	return m
}

func (m *fanoutPeerMetrics) forPeer(name string) *fanoutPeerSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.byPeer[name]; ok {
		return s
	}
	s := &fanoutPeerSeries{
		success:  m.requests.WithLabelValues(name, "success"),
		failed:   m.requests.WithLabelValues(name, "error"),
		duration: m.duration.WithLabelValues(name),
		bytes:    m.bytes.WithLabelValues(name),
	}
	m.byPeer[name] = s
	return s
}

// retain drops the series of the peers not in keep.
func (m *fanoutPeerMetrics) retain(keep map[string]struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.byPeer {
		if _, ok := keep[name]; !ok {
			delete(m.byPeer, name)
			l := prometheus.Labels{"peer": name}
			m.requests.DeletePartialMatch(l)
			m.duration.DeletePartialMatch(l)
			m.bytes.DeletePartialMatch(l)
		}
	}
}
