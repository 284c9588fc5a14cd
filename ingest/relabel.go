package ingest

import (
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/relabel"
)

// Relabeler decides the labels a validated series is stored with
// (relabel_configs, registry enrichment). relabel.Pipeline implements it.
type Relabeler interface {
	// RelabelOutcome returns the labels to store for in, or keep=false to
	// drop the series, and a handle on that outcome. in is scratch
	// memory, valid only during the call; out stays valid after it.
	// measured asks for Measure calls.
	RelabelOutcome(in labels.Labels) (out labels.Labels, keep, measured bool, o relabel.Outcome)
	// Current reports whether an outcome still holds (no rule, registry
	// record or derived size it depends on changed).
	Current(o relabel.Outcome) bool
	// Measure passes the latest value of a measured series (by its stored
	// labels), once per request.
	Measure(out labels.Labels, v float64)
}
