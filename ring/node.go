package ring

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is where a node is in its life in the ring. Only ACTIVE nodes
// own series; a JOINING node registers before it takes writes, a LEAVING
// node is stopping and takes no new ones.
type State uint8

const (
	StateJoining State = iota + 1
	StateActive
	StateLeaving
)

var stateNames = map[State]string{StateJoining: "JOINING", StateActive: "ACTIVE", StateLeaving: "LEAVING"}

func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalJSON writes the state by name, as etcd and the status API show it.
func (s State) MarshalJSON() ([]byte, error) {
	n, ok := stateNames[s]
	if !ok {
		return nil, fmt.Errorf("ring: unknown state %d", uint8(s))
	}
	return json.Marshal(n)
}

// UnmarshalJSON reads a state name; an unknown one is an error, so that a
// record written by a newer or hostile node is refused, not misread.
func (s *State) UnmarshalJSON(b []byte) error {
	var n string
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("ring: state: %w", err)
	}
	for st, name := range stateNames {
		if name == n {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("ring: unknown state %q", n)
}

// Node is one etcdgate node as it registers itself in etcd. A Node in a
// Snapshot is immutable: its Tokens slice is shared and never written.
type Node struct {
	Name string `json:"name"`
	// URL is how peers reach the node (ring.advertise_url).
	URL   string `json:"advertise_url"`
	Zone  string `json:"zone,omitempty"`
	State State  `json:"state"`
	// Tokens are the node's points on the hash circle, sorted ascending,
	// without duplicates.
	Tokens []uint32 `json:"tokens"`
	// Heartbeat is when the node last wrote its record.
	Heartbeat time.Time `json:"heartbeat"`
}
