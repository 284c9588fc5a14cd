package ingest

import "errors"

// Sentinel errors of the write path. Each names a class of client fault;
// api maps the classes to HTTP status codes in one place (api/errors.go).
var (
	// ErrUnsupportedMediaType: the request is not snappy-compressed protobuf.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrBodyTooLarge: the compressed or decompressed body exceeds its limit.
	ErrBodyTooLarge = errors.New("request body too large")
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
