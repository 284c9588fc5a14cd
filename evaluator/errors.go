package evaluator

import (
	"errors"
	"fmt"
)

// Errors a query can end with. The API maps them to Prometheus's error
// types: ErrBadQuery is bad_data, ErrTimeout timeout, ErrCanceled
// canceled, and everything else (ErrTooManySamples, runtime errors such as
// a bad label_replace regex) execution.
var (
	ErrBadQuery       = errors.New("bad query")
	ErrTimeout        = errors.New("query timed out")
	ErrCanceled       = errors.New("query was canceled")
	ErrTooManySamples = errors.New("query processing would load too many samples into memory in query execution")
)

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
