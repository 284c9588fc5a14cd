package probe

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
)

// Inspection is one kind of check of an etcd cluster. Implementations are
// safe for concurrent use: one value inspects every target, and what an
// inspection must remember of a target between runs (counts to compute
// growth, the last leader) travels in Result.State.
type Inspection interface {
	// Name is the inspection's name in config, records and the
	// inspection label: consistency, health, big_values, key_count,
	// hot_keys.
	Name() string
	// Inspect inspects the cluster s is connected to. prev is the State
	// of the previous successful run on the same target, nil on the
	// first. An error means the inspection could not be done (the record
	// is failed); problems found in the cluster are a Result with
	// Status StatusWarning.
	Inspect(ctx context.Context, s *Session, prev any) (Result, error)
}

// Status is the outcome of one inspection run.
type Status string

const (
	// StatusSuccess: the inspection ran and found nothing wrong.
	StatusSuccess Status = "success"
	// StatusWarning: the inspection ran and found a problem, named in
	// the message.
	StatusWarning Status = "warning"
	// StatusFailed: the inspection could not be done (unreachable
	// cluster, TLS failure, timeout).
	StatusFailed Status = "failed"
)

// ParseStatus checks a status named in a query or flag.
func ParseStatus(s string) (Status, bool) {
	switch st := Status(s); st {
	case StatusSuccess, StatusWarning, StatusFailed:
		return st, true
	}
	return "", false
}

// Result is what one run of an inspection found.
type Result struct {
	Status   Status // StatusSuccess or StatusWarning; empty means success
	Message  string // for a person: "total key num is 122143, nodeKeyDiff is 0"
	Findings []Finding
	// State is handed back as prev on the next run against the same
	// target. It must not be modified after it is returned.
	State any
}

// Finding is one figure an inspection found, emitted as one sample. Name
// is the full metric name (etcdgate_inspection_*); Labels are added to the
// target's standard labels (member, prefix, key...).
type Finding struct {
	Name   string
	Labels []labels.Label
	Value  float64
}

// Series is one series of findings, labeled with the target's standard
// labels, as handed to an Emitter.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// Sample is one value at a time in milliseconds since the epoch.
type Sample struct {
	T int64
	V float64
}

// Emitter receives the series of every inspection run, for example to
// store them through the same path as remote-write samples. Emit must not
// keep series after it returns.
type Emitter interface {
	Emit(series []Series) error
}
