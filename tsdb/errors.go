package tsdb

import "errors"

// Errors returned for samples the head refuses. Each refuses one sample;
// other samples of the same request are unaffected.
var (
	// ErrOutOfOrderSample: the sample is older than the newest sample of its
	// series and out-of-order ingestion is disabled.
	ErrOutOfOrderSample = errors.New("out of order sample")
	// ErrTooOldSample: the sample is older than the newest sample of its
	// series by more than the out-of-order window.
	ErrTooOldSample = errors.New("sample is too old: outside the out-of-order window")
	// ErrDuplicateSampleForTimestamp: the series already has a different
	// value at this timestamp.
	ErrDuplicateSampleForTimestamp = errors.New("duplicate sample for timestamp with a different value")
	// ErrSeriesLimit: a new series was refused because the head holds
	// limits.max_series active series.
	ErrSeriesLimit = errors.New("series limit reached")
	// ErrHeadBytesLimit: a new series was refused because the head's
	// memory reached limits.max_head_bytes.
	ErrHeadBytesLimit = errors.New("head memory limit reached")
	// ErrWALFailed: the WAL cannot write or fsync (a full disk, an I/O
	// error). Writes are refused, and DB.Err reports it, until the fault
	// clears and a checkpoint moves the head to a fresh segment; nothing
	// acknowledged before is lost. Retryable: the API answers 503.
	ErrWALFailed = errors.New("WAL failed")
	// ErrCommitTooLarge: one commit's WAL record would exceed the WAL's
	// record limit (64 MiB); nothing was stored. Permanent for the same
	// request: the API answers 413, so that senders split or drop it
	// rather than retry it forever.
	ErrCommitTooLarge = errors.New("commit too large for one WAL record")
	// ErrTooManySeries: a select matched more series than the limit its
	// context carries (WithSeriesLimit); it read no samples.
	ErrTooManySeries = errors.New("too many series selected")
	// ErrClosed: the head was closed.
	ErrClosed = errors.New("tsdb head closed")
)
