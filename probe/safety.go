package probe

import (
	"fmt"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Bounds on what one run may hold or publish, whatever a cluster answers.
const (
	// DefaultMaxResponseBytes bounds one etcd answer: gRPC refuses a
	// larger message from its length prefix, before allocating it.
	DefaultMaxResponseBytes = 16 << 20
	// maxMessage bounds a record's message.
	maxMessage = 4 << 10
	// maxFindings bounds the series one run emits.
	maxFindings = 10000
	// maxListed bounds the members and alarms a health run keeps.
	maxListed = 1000
	// maxMemberErrors bounds the errors a member's status may add to a
	// message.
	maxMemberErrors = 10
)

// panicError is a panic of an inspection run, turned into an error. It
// wraps ErrPanic and keeps the stack for the log.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("%s: %v", ErrPanic, e.value) }
func (e *panicError) Unwrap() error { return ErrPanic }

// recoverInto turns a panic of the calling goroutine into *err. Use it as
// the deferred call itself, `defer recoverInto(&err)`, at the top of every
// goroutine an inspection runs: a panic escaping one would end the node.
func recoverInto(err *error) {
	if v := recover(); v != nil {
		*err = &panicError{value: v, stack: debug.Stack()}
	}
}

// needHeader fails an answer without its response header: revisions and
// member IDs are read from it. The session's interceptor refuses such
// answers already; this is the check at the point of use.
func needHeader(h *pb.ResponseHeader, what string) error {
	if h == nil {
		return fmt.Errorf("%s: %w", what, ErrNoHeader)
	}
	return nil
}

// truncate cuts s to at most n bytes of valid UTF-8, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "…"
}
