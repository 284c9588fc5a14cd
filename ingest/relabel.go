package ingest

import "github.com/prometheus/prometheus/model/labels"

// Relabeler decides the labels a validated series is stored with
// (relabel_configs, registry enrichment). relabel.Pipeline implements it;
// ingest only needs this much of it.
type Relabeler interface {
	// Relabel returns the labels to store for in, or keep=false to drop
	// the series. in is scratch memory, valid only during the call; out
	// must stay valid after it. measured asks for Measure calls.
	Relabel(in labels.Labels) (out labels.Labels, keep, measured bool)
	// Measure passes the latest value of a measured series (by its stored
	// labels), once per request.
	Measure(out labels.Labels, v float64)
}
