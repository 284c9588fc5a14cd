package rules

import (
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// AlertState is the state of one alert of an alerting rule.
type AlertState int

const (
	// StateInactive: the alert's expression no longer returns it. A
	// resolved alert stays inactive for resolvedRetention so that its
	// resolution reaches the Alertmanagers.
	StateInactive AlertState = iota
	// StatePending: returned, but for less than the rule's 'for'.
	StatePending
	// StateFiring: returned for at least 'for', or kept firing by
	// keep_firing_for.
	StateFiring
)

func (s AlertState) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateFiring:
		return "firing"
	}
	return "inactive"
}

// resolvedRetention is how long a resolved alert is kept and re-sent, so
// that an Alertmanager that missed the first resolution still gets it.
const resolvedRetention = 15 * time.Minute

// Alert is one label set returned by an alerting rule's expression.
type Alert struct {
	State       AlertState
	Labels      labels.Labels
	Annotations labels.Labels
	// Value is the expression's value at the last evaluation that
	// returned the alert.
	Value float64
	// ActiveAt is when the alert was first returned (restored across
	// restarts); FiredAt when it started firing; ResolvedAt when it
	// stopped. LastSentAt is the last notification; ValidUntil the end
	// of the last notification's validity. KeepFiringSince is when the
	// expression stopped returning a firing alert that keep_firing_for
	// keeps firing.
	ActiveAt, FiredAt, ResolvedAt, LastSentAt, ValidUntil, KeepFiringSince time.Time
}

// needsSending reports whether the alert is due for a notification at
// ts: firing alerts every resendDelay, resolved alerts once more right
// away and then every resendDelay while they are retained.
func (a *Alert) needsSending(ts time.Time, resendDelay time.Duration) bool {
	if a.State == StatePending {
		return false
	}
	if a.ResolvedAt.After(a.LastSentAt) {
		return true
	}
	return !a.LastSentAt.Add(resendDelay).After(ts)
}
