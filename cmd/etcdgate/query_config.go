package main

import (
	"errors"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
)

// QueryConfig bounds PromQL evaluation for the query API, so that one
// query cannot take the node down. Every key reloads live.
type QueryConfig struct {
	// LookbackDelta is how far back an instant selector looks for a
	// sample (Prometheus's --query.lookback-delta).
	LookbackDelta Duration `yaml:"lookback_delta"`
	// Timeout bounds one query; a request's timeout parameter can only
	// shorten it.
	Timeout Duration `yaml:"timeout"`
	// MaxSamples bounds the samples one query holds in memory at once.
	MaxSamples int64 `yaml:"max_samples"`
	// MaxConcurrency bounds the queries evaluated at once; more wait for
	// a slot until their timeout.
	MaxConcurrency int `yaml:"max_concurrency"`
}

func defaultQueryConfig() QueryConfig {
	return QueryConfig{
		LookbackDelta:  Duration(evaluator.DefaultLookbackDelta),
		Timeout:        Duration(evaluator.DefaultTimeout),
		MaxSamples:     evaluator.DefaultMaxSamples,
		MaxConcurrency: evaluator.DefaultMaxConcurrent,
	}
}

// Validate refuses bounds that would disable a limit by accident.
func (q QueryConfig) Validate() error {
	switch {
	case q.LookbackDelta <= 0:
		return errors.New("query: lookback_delta must be positive")
	case q.Timeout <= 0:
		return errors.New("query: timeout must be positive")
	case q.MaxSamples <= 0:
		return errors.New("query: max_samples must be positive")
	case q.MaxConcurrency <= 0:
		return errors.New("query: max_concurrency must be positive")
	}
	return nil
}

// EngineOptions translates the settings for evaluator.NewEngine.
func (q QueryConfig) EngineOptions() evaluator.Options {
	return evaluator.Options{
		LookbackDelta: time.Duration(q.LookbackDelta),
		Timeout:       time.Duration(q.Timeout),
		MaxSamples:    q.MaxSamples,
		MaxConcurrent: q.MaxConcurrency,
	}
}
