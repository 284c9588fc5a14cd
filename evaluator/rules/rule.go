package rules

import (
	"context"
	"sync"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
)

// Rule is a recording or an alerting rule.
type Rule interface {
	Name() string
	Spec() RuleSpec
	// Eval evaluates the rule at ts (the query runs at ts-queryOffset)
	// and returns the samples to store. limit > 0 bounds the series
	// (recording) or alerts (alerting) it may produce.
	Eval(ctx context.Context, ts time.Time, queryOffset time.Duration, query QueryFunc, limit int) (evaluator.Vector, error)
	Health() RuleHealth
	setHealth(err error, at time.Time, took time.Duration)
	setHealthFrom(h RuleHealth)
}

// Health of a rule after its last evaluation, as /api/v1/rules shows it.
type Health string

const (
	HealthUnknown Health = "unknown"
	HealthGood    Health = "ok"
	HealthBad     Health = "err"
)

// RuleHealth is a rule's last evaluation outcome.
type RuleHealth struct {
	Health         Health
	LastError      string
	LastEvaluation time.Time
	EvaluationTime time.Duration
}

// ruleHealth holds a rule's RuleHealth under its own lock.
type ruleHealth struct {
	mu sync.Mutex
	h  RuleHealth
}

func (r *ruleHealth) Health() RuleHealth {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.h
	if h.Health == "" {
		h.Health = HealthUnknown
	}
	return h
}

func (r *ruleHealth) setHealth(err error, at time.Time, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h = RuleHealth{Health: HealthGood, LastEvaluation: at, EvaluationTime: took}
	if err != nil {
		r.h.Health, r.h.LastError = HealthBad, err.Error()
	}
}

// newRule builds the rule for a valid spec.
func newRule(spec RuleSpec, externalLabels map[string]string, externalURL string) Rule {
	if spec.Alert != "" {
		return NewAlertingRule(spec, externalLabels, externalURL)
	}
	return NewRecordingRule(spec)
}

func (r *ruleHealth) setHealthFrom(h RuleHealth) {
	r.mu.Lock()
	r.h = h
	r.mu.Unlock()
}
