package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
)

var (
	errTruncatedBody = errors.New("truncated request body")
	errBodyTimeout   = errors.New("request body timed out (limits.write_request_timeout)")
)

// write serves POST /api/v1/write: Prometheus remote write 1.0, and 2.0
// when the Content-Type says proto=io.prometheus.write.v2.Request. Success
// is 204. A request with refused samples is 400 with a message naming the
// first problem, and its valid samples are stored all the same; replies
// are plain text, as Prometheus's receiver sends them. Every answer to a
// 2.0 request, errors included, carries the X-Prometheus-Remote-Write-
// *-Written headers.
func (a *API) write(w http.ResponseWriter, r *http.Request) {
	a.serveWrite(w, r, false)
}

// internalPush serves POST /internal/v1/push: another node of the ring
// forwards the share of a write that this node owns, its series already
// relabeled, always as remote write 1.0. It answers as write does, and
// never forwards again.
func (a *API) internalPush(w http.ResponseWriter, r *http.Request) {
	a.serveWrite(w, r, true)
}

// Response headers of remote write 2.0: what the request wrote.
const (
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// setWritten sets the 2.0 response headers.
func setWritten(h http.Header, samples, histograms, exemplars int) {
	h.Set(headerSamplesWritten, strconv.Itoa(samples))
	h.Set(headerHistogramsWritten, strconv.Itoa(histograms))
	h.Set(headerExemplarsWritten, strconv.Itoa(exemplars))
}

// serveWrite reads an admitted remote-write body and hands it to ingest.
func (a *API) serveWrite(w http.ResponseWriter, r *http.Request, internal bool) {
	v2, err := checkWriteHeaders(r.Header)
	if err == nil && v2 && internal {
		err = fmt.Errorf("%w: the internal push takes remote write 1.0 only", ingest.ErrUnsupportedMediaType)
	}
	if err != nil {
		http.Error(w, err.Error(), writeStatusOf(err))
		return
	}
	ingestBody := (*ingest.Admission).Write
	switch {
	case internal:
		ingestBody = (*ingest.Admission).WriteLocal
	case v2:
		ingestBody = (*ingest.Admission).WriteV2
		// Nothing written until the request says otherwise: every answer
		// carries the headers, refusals before decoding included.
		setWritten(w.Header(), 0, 0, 0)
	}
	b := a.readyBackend(w, false)
	if b == nil {
		return
	}
	if err := storageErr(b); err != nil { // refused before the body is read
		writeError(w, err)
		return
	}
	// Admitted before the body is read: a refused request costs nothing
	// but its headers.
	adm, err := b.ingester.Admit(r.ContentLength)
	if err != nil {
		writeError(w, err)
		return
	}
	defer adm.Release()
	lim := adm.Limits()
	// A body that trickles, or an answer never read, must not hold the
	// slot: both get a deadline. The server sets neither ReadTimeout nor
	// WriteTimeout, which would cut queries and remote read streams too.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(lim.WriteRequestTimeout)
	if err := errors.Join(rc.SetReadDeadline(deadline), rc.SetWriteDeadline(deadline.Add(answerSlack))); err != nil {
		// Only a ResponseWriter wrapper without Unwrap gets here: a bug.
		a.opts.Logger.Error("BUG: write deadlines not set", "err", err)
	}
	defer func() {
		// The next request on this connection has its own deadlines.
		_ = rc.Flush()
		_ = rc.SetWriteDeadline(time.Time{})
	}()
	body := a.bodies.get()
	defer a.bodies.put(body)
	*body, err = readBody(r, *body, lim.MaxCompressedBodyBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	// The whole body is in: an expired deadline must not fail the
	// server's background read of the connection while the write runs.
	_ = rc.SetReadDeadline(time.Time{})
	res, err := ingestBody(&adm, *body)
	if err != nil {
		// A request-level failure acknowledges nothing (the headers stay
		// at 0): the sender retries it whole or drops it whole.
		if writeStatusOf(err) >= 500 {
			a.logWriteFailure(err)
		}
		writeError(w, err)
		return
	}
	if v2 {
		samples, histograms, exemplars := res.Written()
		setWritten(w.Header(), samples, histograms, exemplars)
	} else {
		w.Header().Set(headerSamplesWritten, strconv.Itoa(res.Accepted))
	}
	if err := res.Err(); err != nil {
		http.Error(w, err.Error(), writeStatusOf(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// logWriteFailure logs a write that failed on the node's side (5xx), at
// most once per 10 s with the number of failures left out.
func (a *API) logWriteFailure(err error) {
	if ok, held := a.writeLogs.Allow("write", time.Now()); ok {
		a.opts.Logger.Error("write failed (logged at most every 10s)", "err", err, "suppressed", held)
	}
}

// answerSlack is how long past the body's deadline the answer may take,
// so that a body cut at its deadline still gets its 408.
const answerSlack = 10 * time.Second

// peerRetryAfter is the Retry-After, in seconds, of a write whose
// series missed their quorum because owners were at capacity.
const peerRetryAfter = "1"

// writeError answers a write with err's status code and message, and
// with Retry-After when the node is overloaded.
func writeError(w http.ResponseWriter, err error) {
	var oe *ingest.OverloadError
	code := writeStatusOf(err)
	switch {
	case errors.As(err, &oe):
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(oe.RetryAfter.Round(time.Second)/time.Second))))
	case errors.Is(err, ring.ErrPeerOverloaded):
		w.Header().Set("Retry-After", peerRetryAfter)
	case code == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", storageRetryAfter)
	}
	http.Error(w, err.Error(), code)
}

// Content-Type proto parameters of the remote write messages.
const (
	protoV1 = "prometheus.WriteRequest"
	protoV2 = "io.prometheus.write.v2.Request"
)

// checkWriteHeaders negotiates the remote write version as the 2.0 spec
// says: Content-Type application/x-protobuf with no proto parameter or
// proto=prometheus.WriteRequest is 1.0, with
// proto=io.prometheus.write.v2.Request 2.0, and anything else is refused
// (415), as is a Content-Encoding other than snappy. Absent headers are
// tolerated as 1.0, since old 1.0 senders may send neither.
func checkWriteHeaders(h http.Header) (v2 bool, err error) {
	if ct := h.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-protobuf" {
			return false, fmt.Errorf("%w: Content-Type %q, want application/x-protobuf", ingest.ErrUnsupportedMediaType, ct)
		}
		switch p, ok := params["proto"]; {
		case !ok || p == protoV1:
		case p == protoV2:
			v2 = true
		default:
			return false, fmt.Errorf("%w: proto %q, want %s (remote write 1.0) or %s (2.0)", ingest.ErrUnsupportedMediaType, p, protoV1, protoV2)
		}
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "snappy") {
		return false, fmt.Errorf("%w: Content-Encoding %q, want snappy", ingest.ErrUnsupportedMediaType, ce)
	}
	return v2, nil
}

// readBody reads at most limit bytes of the body into buf.
func readBody(r *http.Request, buf []byte, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return buf, fmt.Errorf("%w: Content-Length %d, limit %d", ingest.ErrBodyTooLarge, r.ContentLength, limit)
	}
	buf = buf[:0]
	lr := io.LimitReader(r.Body, int64(limit)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return buf, fmt.Errorf("%w: %d bytes of the body arrived before the deadline", errBodyTimeout, len(buf))
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return buf, fmt.Errorf("%w after %d bytes", errTruncatedBody, len(buf))
			}
			return buf, fmt.Errorf("%w: %v", errTruncatedBody, err)
		}
	}
	if len(buf) > limit {
		return buf, fmt.Errorf("%w: more than %d bytes", ingest.ErrBodyTooLarge, limit)
	}
	return buf, nil
}

// bodyPool recycles request body buffers between requests.
type bodyPool struct{ pool sync.Pool }

func (p *bodyPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

// put keeps buffers up to 4 MiB: one huge request must not pin its
// buffer forever.
func (p *bodyPool) put(b *[]byte) {
	if cap(*b) > 4<<20 {
		return
	}
	*b = (*b)[:0]
	p.pool.Put(b)
}
