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
