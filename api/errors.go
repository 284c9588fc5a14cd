package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

// errorType is the Prometheus API's errorType field.
type errorType string

const (
	errorBadData     errorType = "bad_data"
	errorExecution   errorType = "execution"
	errorTimeout     errorType = "timeout"
	errorCanceled    errorType = "canceled"
	errorInternal    errorType = "internal"
	errorUnavailable errorType = "unavailable"
)

// apiError is an error of the JSON API with its Prometheus error type.
type apiError struct {
	typ errorType
	err error
}

func (e *apiError) Error() string { return string(e.typ) + ": " + e.err.Error() }

func badData(err error) *apiError { return &apiError{typ: errorBadData, err: err} }

// statusOf maps an API error type to its HTTP status code, as Prometheus's
// web/api/v1 does.
func statusOf(t errorType) int {
	switch t {
	case errorBadData:
		return http.StatusBadRequest
	case errorExecution:
		return http.StatusUnprocessableEntity
	case errorCanceled:
		return 499
	case errorTimeout:
		return http.StatusServiceUnavailable
	case errorUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeStatusOf maps a write-path error to its HTTP status code. Client
// faults are 4xx so that senders drop the batch instead of retrying it
// forever; only server faults are 5xx, which senders retry.
func writeStatusOf(err error) int {
	switch {
	case errors.Is(err, ingest.ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ingest.ErrBodyTooLarge), errors.Is(err, ingest.ErrRequestTooLarge), errors.Is(err, tsdb.ErrCommitTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ingest.ErrOverloaded):
		return http.StatusTooManyRequests
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, ingest.ErrBadSnappy), errors.Is(err, ingest.ErrBadProtobuf),
		errors.Is(err, ingest.ErrInvalidSeries), errors.Is(err, ingest.ErrRejectedSamples),
		errors.Is(err, errTruncatedBody):
		return http.StatusBadRequest
	case errors.Is(err, tsdb.ErrWALFailed):
		// The disk refuses the WAL (full, I/O errors): retryable, and
		// the store retries the WAL on its own.
		return http.StatusServiceUnavailable
	case errors.Is(err, ring.ErrQuorumFailed) && errors.Is(err, ring.ErrPeerOverloaded):
		// Owners are at capacity: the sender should slow down (Retry-After).
		return http.StatusServiceUnavailable
	case errors.Is(err, ring.ErrQuorumFailed):
		// Too few owners reached: retryable, nothing is acknowledged.
		return http.StatusInternalServerError
	}
	return http.StatusInternalServerError
}

// storageRetryAfter is the Retry-After, in seconds, of a write refused
// because the store cannot accept writes: about the store's WAL recovery
// interval.
const storageRetryAfter = "5"

// storageHealth is implemented by a store that can fail as a whole
// (tsdb.DB: a failed WAL); Err names the cause, nil when healthy.
type storageHealth interface {
	Err() error
}

// storageErr returns why the backend's store refuses writes, or nil.
func storageErr(b *backend) error {
	if h, ok := b.storage.(storageHealth); ok {
		return h.Err()
	}
	return nil
}

// response is the envelope of every JSON API reply.
type response struct {
	Status    string    `json:"status"`
	Data      any       `json:"data,omitempty"`
	ErrorType errorType `json:"errorType,omitempty"`
	Error     string    `json:"error,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, resp response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(resp)
}

func respond(w http.ResponseWriter, data any, warnings []string) {
	writeJSON(w, http.StatusOK, response{Status: "success", Data: data, Warnings: warnings})
}

func respondError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, statusOf(e.typ), response{Status: "error", ErrorType: e.typ, Error: e.err.Error()})
}

// ErrAuthConfig marks an invalid web config file or authorization block
// (auth_config.go).
var ErrAuthConfig = errors.New("invalid web configuration")
