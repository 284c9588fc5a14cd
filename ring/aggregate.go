package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
)

// AggregatePath is the internal endpoint where a node evaluates one
// pushed-down aggregation over the series of its LOCAL store with the
// given keys, and answers the partial aggregate (the query engine's
// wire form, snappy block-compressed, Content-Type
// application/x-etcdgate-partial). The parameters are in the URL (expr,
// start, end, step, lookback: milliseconds); the body is the series
// keys, 8 bytes each little-endian, snappy block-compressed.
const AggregatePath = "/internal/v1/aggregate"

// PartialContentType is the media type of an aggregate answer.
const PartialContentType = "application/x-etcdgate-partial"

// AggregateRequest is one aggregation to evaluate where the series are:
// Expr is the aggregation alone (the engine's text of it); Start, End
// and Interval (>= 1) the steps it is evaluated at, LookbackDelta the
// query's, all in milliseconds. Matchers, Mint and Maxt are what its
// selector reads, for the digests phase; the nodes derive them from Expr.
type AggregateRequest struct {
	Expr                                string
	Start, End, Interval, LookbackDelta int64
	Matchers                            []*labels.Matcher
	Mint, Maxt                          int64
}

// AggregateFunc evaluates req over the series of this node's local store
// whose SeriesKeys are keys, and returns the partial aggregate's wire
// form. The node's aggregate endpoint and the asking node's own share
// both call it.
type AggregateFunc func(ctx context.Context, req AggregateRequest, keys []uint64) ([]byte, error)

// query encodes req's parameters for the endpoint's URL.
func (r *AggregateRequest) query() string {
	v := url.Values{}
	v.Set("expr", r.Expr)
	v.Set("start", strconv.FormatInt(r.Start, 10))
	v.Set("end", strconv.FormatInt(r.End, 10))
	v.Set("step", strconv.FormatInt(r.Interval, 10))
	v.Set("lookback", strconv.FormatInt(r.LookbackDelta, 10))
	return v.Encode()
}

// ParseAggregateRequest reads the endpoint's parameters and its body of
// keys, refusing more than maxKeys keys (or a body that could hold more)
// before it allocates them.
func ParseAggregateRequest(r *http.Request, maxKeys int) (AggregateRequest, []uint64, error) {
	var req AggregateRequest
	q := r.URL.Query()
	req.Expr = q.Get("expr")
	if req.Expr == "" {
		return req, nil, errors.New("no expr parameter")
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"start", &req.Start}, {"end", &req.End}, {"step", &req.Interval}, {"lookback", &req.LookbackDelta}} {
		v, err := strconv.ParseInt(q.Get(p.name), 10, 64)
		if err != nil {
			return req, nil, fmt.Errorf("invalid parameter %q: %q is not milliseconds", p.name, q.Get(p.name))
		}
		*p.dst = v
	}
	switch {
	case req.End < req.Start:
		return req, nil, errors.New("invalid parameter \"end\": before start")
	case req.Interval < 1:
		return req, nil, errors.New("invalid parameter \"step\": must be positive")
	case req.LookbackDelta < 0:
		return req, nil, errors.New("invalid parameter \"lookback\": negative")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(snappy.MaxEncodedLen(8*maxKeys))+1))
	if err != nil {
		return req, nil, fmt.Errorf("reading the series keys: %w", err)
	}
	n, err := snappy.DecodedLen(body)
	switch {
	case err != nil:
		return req, nil, fmt.Errorf("series keys: %w", err)
	case n > 8*maxKeys:
		return req, nil, fmt.Errorf("more than %d series keys", maxKeys)
	case n%8 != 0:
		return req, nil, fmt.Errorf("series keys: %d bytes, not a multiple of 8", n)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return req, nil, fmt.Errorf("series keys: %w", err)
	}
	keys := make([]uint64, len(raw)/8)
	for i := range keys {
		keys[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return req, keys, nil
}

// Aggregate asks node n to evaluate req over its series with keys, and
// returns the partial's wire form, at most maxBytes decompressed, and the
// size of the compressed answer.
func (p *Peers) Aggregate(ctx context.Context, n *Node, req AggregateRequest, keys []uint64, maxBytes int64) ([]byte, int64, error) {
	fs := p.fanout.forPeer(n.Name)
	start := time.Now()
	b, wire, err := p.aggregateFrom(ctx, n, req, keys, maxBytes)
	fs.duration.Observe(time.Since(start).Seconds())
	fs.bytes.Add(float64(wire))
	if err != nil {
		fs.failed.Inc()
		if ctx.Err() == nil {
			if ok, held := p.logs.Allow("aggregate/"+n.Name, time.Now()); ok {
				p.opts.Logger.Warn("ring pushed-down aggregation failed", "peer", n.Name, "err", err, "suppressed", held)
			}
		}
		return nil, wire, err
	}
	fs.success.Inc()
	return b, wire, nil
}

func (p *Peers) aggregateFrom(ctx context.Context, n *Node, req AggregateRequest, keys []uint64, maxBytes int64) ([]byte, int64, error) {
	raw := make([]byte, 0, 8*len(keys))
	for _, k := range keys {
		raw = binary.LittleEndian.AppendUint64(raw, k)
	}
	u := strings.TrimSuffix(n.URL, "/") + AggregatePath + "?" + req.query()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return nil, 0, fmt.Errorf("ring: aggregate on %s: %w", n.Name, stripURLError(err))
	}
	hreq.Header.Set("Content-Type", "application/octet-stream")
	hreq.Header.Set("User-Agent", "etcdgate-ring")
	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, 0, fmt.Errorf("ring: aggregate on %s (%s): %w", n.Name, redactURL(n.URL), stripURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		return nil, int64(len(b)), fmt.Errorf("ring: aggregate on %s: answer %d: %s", n.Name, resp.StatusCode, message(b))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(snappy.MaxEncodedLen(int(min(maxBytes, 1<<40))))+1))
	if err != nil {
		return nil, int64(len(body)), fmt.Errorf("ring: aggregate on %s: reading the answer: %w", n.Name, err)
	}
	size, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, int64(len(body)), fmt.Errorf("ring: aggregate on %s: %w", n.Name, err)
	}
	if int64(size) > maxBytes {
		return nil, int64(len(body)), fmt.Errorf("%w: the partial aggregate of %s is %d bytes, more than the limit of %d", ErrReadTooLarge, n.Name, size, maxBytes)
	}
	out, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, int64(len(body)), fmt.Errorf("ring: aggregate on %s: %w", n.Name, err)
	}
	return out, int64(len(body)), nil
}

// WriteAggregate answers an aggregate request with the partial's wire
// form b.
func WriteAggregate(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", PartialContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(snappy.Encode(nil, b))
}
