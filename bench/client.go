package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// writeClient posts remote-write requests to one target and retries them
// as Prometheus does: 429, 5xx and connection failures are retried with
// back-off until the run's context ends; any other 4xx drops the request,
// since sending the same bad data again cannot succeed.
type writeClient struct {
	url                    string
	http                   *http.Client
	minBackoff, maxBackoff time.Duration
	stats                  *stats
	// sleep waits d before a retry, false when ctx ended first; tests
	// replace it to see the back-off without waiting for it.
	sleep func(ctx context.Context, d time.Duration) bool
}

func newWriteClient(url string, h *http.Client, o SendOptions, st *stats) *writeClient {
	return &writeClient{url: url, http: h, minBackoff: o.MinBackoff, maxBackoff: o.MaxBackoff, stats: st, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// write sends one request body of n samples. It blocks through the
// retries: the sender it belongs to waits, as a queue manager shard does.
func (c *writeClient) write(ctx context.Context, body []byte, n int) {
	c.stats.samplesSent.Add(int64(n))
	bo := newBackoff(c.minBackoff, c.maxBackoff)
	for {
		code, written, after, err := c.post(ctx, body)
		switch {
		case err != nil && ctx.Err() != nil:
			c.stats.samplesFailed.Add(int64(n))
			return
		case err != nil:
			c.stats.netErrors.Add(1)
			c.stats.noteError(0, err.Error())
		case code/100 == 2:
			if written < 0 {
				written = n
			}
			c.stats.samplesAccepted.Add(int64(written))
			return
		case code == http.StatusTooManyRequests || code/100 == 5:
			c.stats.code(code).retries.Add(1)
		default:
			// Refused as the client's fault: the target may have kept
			// part of the request and says how much.
			written = max(written, 0)
			c.stats.samplesAccepted.Add(int64(written))
			c.stats.samplesDropped.Add(int64(n - written))
			c.stats.code(code).dropped.Add(int64(n - written))
			return
		}
		if !c.sleep(ctx, bo.wait(after)) {
			c.stats.samplesFailed.Add(int64(n))
			return
		}
	}
}

// post makes one attempt. written is the target's
// X-Prometheus-Remote-Write-Samples-Written, or -1 when it sent none.
func (c *writeClient) post(ctx context.Context, body []byte) (code, written int, after time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, -1, 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "etcdgate-bench")
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, -1, 0, err
	}
	msg := drain(resp)
	c.stats.latency.observe(time.Since(start))
	c.stats.code(resp.StatusCode).requests.Add(1)
	if resp.StatusCode/100 != 2 {
		c.stats.noteError(resp.StatusCode, msg)
	}
	written = -1
	if v := resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"); v != "" {
		if k, err := strconv.Atoi(v); err == nil {
			written = k
		}
	}
	return resp.StatusCode, written, retryAfter(resp.Header, time.Now()), nil
}

// drain reads and closes the body so the connection is reused, and
// returns its start for error reports.
func drain(resp *http.Response) string {
	defer resp.Body.Close()
	var head [256]byte
	n, _ := io.ReadFull(resp.Body, head[:])
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return strings.TrimSpace(string(head[:n]))
}

// newHTTPClient returns a client with a kept-alive connection per sender.
func newHTTPClient(conns int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns * 2
	tr.MaxIdleConnsPerHost = conns * 2
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: timeout}
}
