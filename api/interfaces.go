package api

import (
	"context"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// The API reads the rule manager, the SLOs and the prober through the
// small interfaces and plain snapshot types of this file, which
// cmd/etcdgate implements over the real components and hands over in
// Options. api imports no type of evaluator/rules or probe: their
// internals can change without touching the HTTP surface, and tests
// serve fakes.

// RuleGroups is what /api/v1/rules and /api/v1/alerts read of the rule
// manager.
type RuleGroups interface {
	// RuleGroups returns a snapshot of the running groups, sorted by file
	// and name. The caller may keep it.
	RuleGroups() []RuleGroup
}

// RuleGroup is a snapshot of one rule group.
type RuleGroup struct {
	Name, File string
	// Owner is the node of the ring that evaluates the group (empty
	// outside a ring).
	Owner          string
	Interval       time.Duration
	Limit          int
	LastEvaluation time.Time
	EvaluationTime time.Duration
	Rules          []Rule
}

// Rule is a snapshot of one recording or alerting rule.
type Rule struct {
	Alerting bool
	// Name is the recorded series or the alert name.
	Name, Query         string
	Labels, Annotations map[string]string
	// For, KeepFiringFor, State (inactive, pending or firing) and Alerts
	// are those of an alerting rule.
	For, KeepFiringFor time.Duration
	State              string
	Alerts             []Alert
	// Health is ok, err or unknown.
	Health         string
	LastError      string
	LastEvaluation time.Time
	EvaluationTime time.Duration
}

// Alert is a snapshot of one active alert of an alerting rule.
type Alert struct {
	Labels, Annotations labels.Labels
	State               string // pending or firing
	Value               float64
	ActiveAt            time.Time
	KeepFiringSince     time.Time // zero unless keep_firing_for keeps it firing
}

// SLOStatus computes what /api/v1/slo serves: each SLO with its error
// budget left and burn rates per cluster and rolled up per scenario and
// region. A function, so that api does not run queries itself.
type SLOStatus func(ctx context.Context, t time.Time) (any, error)

// InspectionRecords is what /api/v1/inspections reads: the records of
// recent inspection runs.
type InspectionRecords interface {
	// Inspections returns the records f selects, newest first.
	Inspections(f InspectionFilter) []InspectionRecord
	// InspectionNames returns the names a filter may ask for.
	InspectionNames() []string
}

// InspectionFilter selects inspection records; empty fields match any.
type InspectionFilter struct {
	Cluster    string
	Inspection string
	Status     string // success, warning or failed
	Limit      int    // at most this many (newest first); 0: all
}

// InspectionRecord is what one inspection run found, as
// /api/v1/inspections serves it.
type InspectionRecord struct {
	Cluster    string            `json:"cluster"`
	Inspection string            `json:"inspection"`
	Labels     map[string]string `json:"labels,omitempty"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Status     string            `json:"status"`
	Message    string            `json:"message"`
	Requests   int64             `json:"requests"`
	BytesRead  int64             `json:"bytesRead"`
	// Owner is the node of the ring that ran the inspection (empty
	// outside a ring).
	Owner string `json:"owner,omitempty"`
}

// inspectionStatuses are the statuses a record has.
var inspectionStatuses = []string{"success", "warning", "failed"}
