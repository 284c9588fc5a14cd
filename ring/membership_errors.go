package ring

import "errors"

// Sentinel errors of membership. Callers test them with errors.Is.
var (
	// ErrNameTaken: another live node holds a record under this name.
	ErrNameTaken = errors.New("ring.node_name: a live node already holds this name")
	// ErrBadRecord: a record under the prefix is malformed or oversized.
	ErrBadRecord = errors.New("ring: bad membership record")
	// ErrNotJoined: the call needs a joined membership.
	ErrNotJoined = errors.New("ring: not joined")
	// ErrJoined: Join was called twice.
	ErrJoined = errors.New("ring: already joined")
)

// Sentinel errors of forwarding and write quorum.
var (
	// ErrPeerOverloaded: a peer is at its in-flight bound on this node,
	// or answered 429 or 503. The write is retryable later (503 with
	// Retry-After to the sender).
	ErrPeerOverloaded = errors.New("ring: peer overloaded")
	// ErrQuorumFailed: some series of a write could not reach the write
	// quorum of its owners.
	ErrQuorumFailed = errors.New("ring: write quorum not reached")
	// ErrTooFewOwners: a series has fewer owners than its quorum (too few
	// ACTIVE nodes); errors carrying it also wrap ErrQuorumFailed.
	ErrTooFewOwners = errors.New("ring: fewer owners than the write quorum")
)

// Sentinel errors of fan-out reads.
var (
	// ErrPartialResponse: more ACTIVE nodes failed to answer a read than
	// the replication factor covers, and the request refused a partial
	// answer (partial_response=false or query.partial_response: false).
	ErrPartialResponse = errors.New("ring: partial response refused")
	// ErrBadSelectStream: a node's select answer is malformed, truncated
	// or past the decoder's limits.
	ErrBadSelectStream = errors.New("ring: bad select stream")
	// ErrReadTooLarge: the answers of the nodes to one fan-out read
	// passed FanoutOptions.MaxBytesPerRead; the read fails (422), it is
	// not a missing node.
	ErrReadTooLarge = errors.New("ring: fan-out read too large")
)
