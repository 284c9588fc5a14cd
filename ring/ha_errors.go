package ring

import "errors"

// Sentinel errors of HA-pair dedup. Callers test them with errors.Is; both
// refusals are the sender's fault (a 4xx for the series concerned, the
// rest of the request kept), like the series limit.
var (
	// ErrHAValue: a cluster or replica label value is longer than
	// HAMaxValueBytes or not valid UTF-8.
	ErrHAValue = errors.New("ring: ha_dedup: bad cluster or replica label value")
	// ErrHATooManyClusters: the tracker already follows MaxClusters
	// clusters; a new one is refused until records of old ones expire.
	ErrHATooManyClusters = errors.New("ring: ha_dedup: too many HA clusters")
	// ErrHAStarted: Start was called twice.
	ErrHAStarted = errors.New("ring: ha_dedup: tracker already started")
)
