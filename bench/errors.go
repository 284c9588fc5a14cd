package bench

import "errors"

// Sentinel errors of the package.
var (
	// ErrInvalidOptions wraps every problem Options.Validate finds.
	ErrInvalidOptions = errors.New("invalid bench options")
	// ErrTargetUnreachable is returned when a target does not answer
	// before the run starts.
	ErrTargetUnreachable = errors.New("target unreachable")
	// ErrBadCapture is returned when the etcd capture cannot be turned
	// into series templates.
	ErrBadCapture = errors.New("bad etcd capture")
)
