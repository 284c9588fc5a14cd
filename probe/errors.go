package probe

import "errors"

// Sentinel errors of the probe. Records carry their messages; callers
// match them with errors.Is.
var (
	// ErrPanic: an inspection run panicked (a bug, or an answer the code
	// did not expect). The run is a failed record; the node goes on.
	ErrPanic = errors.New("inspection panicked")
	// ErrNoHeader: an etcd answer lacks its response header (a buggy
	// member, a fake, a proxy). Revisions and member IDs come from it.
	ErrNoHeader = errors.New("etcd answered without a response header")
	// ErrNoKeyValue: a watch event without its key-value.
	ErrNoKeyValue = errors.New("etcd sent a watch event without its key-value")
	// ErrResponseTooLarge: one etcd answer exceeds the probe's
	// max_response_bytes, even at a page of one key.
	ErrResponseTooLarge = errors.New("etcd answer exceeds max_response_bytes")
	// ErrTooManyKeys: a keyspace scan reached its max_keys.
	ErrTooManyKeys = errors.New("keyspace scan reached max_keys")
)
