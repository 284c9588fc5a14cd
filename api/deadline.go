package api

import (
	"net/http"
	"time"
)

// DefaultReadTimeout is Prometheus's --web.read-timeout.
const DefaultReadTimeout = 5 * time.Minute

// withDeadline bounds the whole of a request by the read timeout: its
// body, and its answer to a client that reads it slowly or not at all.
// The server itself sets no ReadTimeout or WriteTimeout, so each handler
// gets its deadlines here; the write handler narrows them to
// limits.write_request_timeout. The write deadline is cleared after the
// handler, so that it cannot reach the next request of the connection.
func (a *API) withDeadline(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadline := time.Now().Add(a.opts.ReadTimeout)
		if err := rc.SetReadDeadline(deadline); err == nil {
			_ = rc.SetWriteDeadline(deadline)
			defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
		}
		next(w, r)
	}
}
