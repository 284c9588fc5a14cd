package evaluator

import (
	"errors"
	"fmt"
)

// Errors a query can end with. The API maps them to Prometheus's error
// types: ErrBadQuery is bad_data, ErrTimeout timeout, ErrCanceled
// canceled, ErrQueueFull unavailable, ErrInternal (a *PanicError)
// internal, and everything else (ErrTooManySamples, ErrTooManySteps,
// runtime errors such as a bad label_replace regex) execution.
var (
	ErrBadQuery       = errors.New("bad query")
	ErrTimeout        = errors.New("query timed out")
	ErrCanceled       = errors.New("query was canceled")
	ErrTooManySamples = errors.New("query processing would load too many samples into memory in query execution")
	ErrTooManySteps   = errors.New("query would evaluate too many steps")
	ErrQueueFull      = errors.New("too many queries waiting for a slot")
	ErrInternal       = errors.New("unexpected error evaluating the query")
)

// Errors of aggregation pushdown (pushdown.go).
var (
	// ErrNotPushed is what a Pushdown store returns (wrapped or not)
	// when it declines an aggregation: the engine then evaluates it as
	// usual, through the same store.
	ErrNotPushed = errors.New("evaluator: aggregation not pushed down")
	// ErrBadPartial is a malformed or oversized partial aggregate on the
	// wire (DecodePartialAggregate).
	ErrBadPartial = errors.New("malformed partial aggregate")
)

// PanicError is a panic recovered from the evaluation of one query: a
// bug. Its message is short, for the client; Stack is for the log.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("%v: %v", ErrInternal, e.Value) }

func (e *PanicError) Unwrap() error { return ErrInternal }

// badQuery wraps a parse or type error of the query text.
func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadQuery, fmt.Sprintf(format, args...))
}

// evalError is a runtime error of the query; it aborts evaluation through
// panic so that deep recursion needs no error plumbing, and Engine turns
// it back into an error.
type evalError struct{ err error }

func raise(format string, args ...any) {
	panic(evalError{fmt.Errorf(format, args...)})
}

func raiseErr(err error) { panic(evalError{err}) }
