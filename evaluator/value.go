package evaluator

import (
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// ValueType names the kind of a query result, as the Prometheus API's
// resultType does.
type ValueType string

const (
	ValueTypeVector ValueType = "vector"
	ValueTypeMatrix ValueType = "matrix"
	ValueTypeScalar ValueType = "scalar"
	ValueTypeString ValueType = "string"
)

// Value is a query result: Vector, Matrix, Scalar or String.
type Value interface {
	Type() ValueType
}

// Sample is one series' value at one instant.
type Sample struct {
	Metric labels.Labels
	T      int64
	F      float64
}

// Vector is an instant vector: at most one sample per series.
type Vector []Sample

// FPoint is a sample of a series in a Matrix.
type FPoint struct {
	T int64
	F float64
}

// Series is one series of a Matrix with its points in time order.
type Series struct {
	Metric labels.Labels
	Floats []FPoint
}

// Matrix is the result of a range query or of a range-vector expression.
type Matrix []Series

// points is the number of points of m.
func (m Matrix) points() int {
	n := 0
	for _, s := range m {
		n += len(s.Floats)
	}
	return n
}

// Scalar is a single number at an instant.
type Scalar struct {
	T int64
	V float64
}

// String is a string literal result.
type String struct {
	T int64
	V string
}

func (Vector) Type() ValueType { return ValueTypeVector }
func (Matrix) Type() ValueType { return ValueTypeMatrix }
func (Scalar) Type() ValueType { return ValueTypeScalar }
func (String) Type() ValueType { return ValueTypeString }

// Result is what an evaluation returns besides the value.
type Result struct {
	Value    Value
	Warnings Annotations
	Stats    Stats
}

// Stats counts the work a query did.
type Stats struct {
	// SamplesLoaded is the number of samples read from the store.
	SamplesLoaded int64
	// SeriesLoaded is the number of series read from the store.
	SeriesLoaded int64
	// QueryableSamples is the number of samples the selectors handed to
	// the evaluation, summed over the steps (Prometheus's
	// totalQueryableSamples); PerStep splits it by step when the query
	// asked for it (QueryOpts.PerStepStats).
	QueryableSamples int64
	PerStep          []StepSamples
	// SamplesRead counts each sample the selectors read once, at the
	// first step that reads it (Prometheus's samplesRead, whose per-step
	// split is ReadPerStep); SamplesLoaded also counts what the store
	// returned that no step used.
	SamplesRead int64
	ReadPerStep []StepSamples
	// PeakSamples is the most points the query held at once.
	PeakSamples int64
	// Timings of the query: waiting for a slot, parsing, evaluating,
	// shaping the result, and all of it.
	QueueTime, PrepareTime, EvalTime, ResultTime, TotalTime time.Duration
}
