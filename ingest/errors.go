package ingest

import "errors"

// Sentinel errors of the write path. Each names a class of client fault;
// api maps the classes to HTTP status codes in one place (api/errors.go).
var (
	// ErrUnsupportedMediaType: the request is not snappy-compressed protobuf.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrBodyTooLarge: the compressed or decompressed body exceeds its limit.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrRequestTooLarge: the request holds more series, labels or
	// samples than one request may (limits.max_*_per_request).
	ErrRequestTooLarge = errors.New("request too large")
	// ErrOverloaded: the node is serving as many writes, or holds as much
	// memory, as it may; the sender should retry later (429). Errors of
	// this class are *OverloadError and say when.
	ErrOverloaded = errors.New("overloaded")
	// ErrBadSnappy: the body is not a valid snappy block.
	ErrBadSnappy = errors.New("malformed snappy block")
	// ErrBadProtobuf: the decompressed body is not a valid WriteRequest.
	ErrBadProtobuf = errors.New("malformed protobuf WriteRequest")
	// ErrInvalidSeries: a series failed validation (label names, limits,
	// timestamps). Its samples were refused; other series were kept.
	ErrInvalidSeries = errors.New("invalid series")
	// ErrRejectedSamples: the store refused some samples (out of order,
	// too old, duplicate timestamp). Other samples were kept.
	ErrRejectedSamples = errors.New("rejected samples")
)
