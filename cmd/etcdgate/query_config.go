package main

import (
	"errors"
	"time"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator"
)

// QueryConfig bounds PromQL evaluation for the query API, and the listing
// endpoints, so that no request can take the node down. Every key reloads
// live.
type QueryConfig struct {
	// LookbackDelta is how far back an instant selector looks for a
	// sample (Prometheus's --query.lookback-delta).
	LookbackDelta Duration `yaml:"lookback_delta"`
	// Timeout bounds one query; a request's timeout parameter can only
	// shorten it.
	Timeout Duration `yaml:"timeout"`
	// MaxSamples bounds the samples one query holds in memory at once.
	MaxSamples int64 `yaml:"max_samples"`
	// MaxSeries bounds the series one selector of a query may match; the
	// store stops collecting past it and the query fails (422).
	MaxSeries int `yaml:"max_series"`
	// MaxConcurrency bounds the queries evaluated at once; more wait for
	// a slot until their timeout.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MaxQueued bounds the queries waiting for a slot; past it a query
	// is answered 503 at once.
	MaxQueued int `yaml:"max_queued"`
	// MaxQueryLength bounds query text (and each match[] selector), in
	// bytes, before it is parsed.
	MaxQueryLength int `yaml:"max_query_length"`
	// MaxQueryDepth bounds how deeply query text nests (brackets and
	// operator chains), before it is parsed.
	MaxQueryDepth int `yaml:"max_query_depth"`
	// MaxPointsPerSeries bounds a range query's steps ((end-start)/step).
	MaxPointsPerSeries int64 `yaml:"max_points_per_series"`
	// MaxSubquerySteps bounds the steps of every subquery.
	MaxSubquerySteps int64 `yaml:"max_subquery_steps"`
	// ListingTimeout caps the time of /api/v1/series, /labels,
	// /label/<name>/values, /status/tsdb and /slo.
	ListingTimeout Duration `yaml:"listing_timeout"`
	// ListingMaxConcurrency bounds those requests served at once, in
	// slots apart from the queries'.
	ListingMaxConcurrency int `yaml:"listing_max_concurrency"`
	// ListingMaxResults caps the entries one listing returns.
	ListingMaxResults int `yaml:"listing_max_results"`
	// PartialResponse: in a ring, a read that more nodes failed than the
	// replication covers answers what it has with a warning (true), or
	// fails with 503 (false). A request's partial_response parameter
	// overrides it.
	PartialResponse bool `yaml:"partial_response"`
}

func defaultQueryConfig() QueryConfig {
	return QueryConfig{
		LookbackDelta:         Duration(evaluator.DefaultLookbackDelta),
		Timeout:               Duration(evaluator.DefaultTimeout),
		MaxSamples:            evaluator.DefaultMaxSamples,
		MaxSeries:             evaluator.DefaultMaxSeries,
		MaxConcurrency:        evaluator.DefaultMaxConcurrent,
		MaxQueued:             evaluator.DefaultMaxQueued,
		MaxQueryLength:        evaluator.DefaultMaxQueryLength,
		MaxQueryDepth:         evaluator.DefaultMaxQueryDepth,
		MaxPointsPerSeries:    evaluator.DefaultMaxPointsPerSeries,
		MaxSubquerySteps:      evaluator.DefaultMaxSubquerySteps,
		ListingTimeout:        Duration(api.DefaultListingTimeout),
		ListingMaxConcurrency: api.DefaultListingConcurrency,
		ListingMaxResults:     api.DefaultListingMaxResults,
		PartialResponse:       true,
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
	case q.MaxSeries <= 0:
		return errors.New("query: max_series must be positive")
	case q.MaxConcurrency <= 0:
		return errors.New("query: max_concurrency must be positive")
	case q.MaxQueued <= 0:
		return errors.New("query: max_queued must be positive")
	case q.MaxQueryLength <= 0:
		return errors.New("query: max_query_length must be positive")
	case q.MaxQueryDepth <= 0:
		return errors.New("query: max_query_depth must be positive")
	case q.MaxPointsPerSeries <= 0:
		return errors.New("query: max_points_per_series must be positive")
	case q.MaxSubquerySteps <= 0:
		return errors.New("query: max_subquery_steps must be positive")
	case q.ListingTimeout <= 0:
		return errors.New("query: listing_timeout must be positive")
	case q.ListingMaxConcurrency <= 0:
		return errors.New("query: listing_max_concurrency must be positive")
	case q.ListingMaxResults <= 0:
		return errors.New("query: listing_max_results must be positive")
	}
	return nil
}

// parseLimits are the bounds on query and selector text.
func (q QueryConfig) parseLimits() evaluator.ParseLimits {
	return evaluator.ParseLimits{MaxLength: q.MaxQueryLength, MaxDepth: q.MaxQueryDepth}
}

// EngineOptions translates the settings for evaluator.NewEngine, for the
// engine of rule groups: its queue has no bound (there are as many
// waiting evaluations as configured groups at most).
func (q QueryConfig) EngineOptions() evaluator.Options {
	return evaluator.Options{
		LookbackDelta:      time.Duration(q.LookbackDelta),
		Timeout:            time.Duration(q.Timeout),
		MaxSamples:         q.MaxSamples,
		MaxSeries:          q.MaxSeries,
		MaxConcurrent:      q.MaxConcurrency,
		MaxPointsPerSeries: q.MaxPointsPerSeries,
		MaxSubquerySteps:   q.MaxSubquerySteps,
		ParseLimits:        q.parseLimits(),
	}
}

// APIEngineOptions are EngineOptions for the query API's engine, whose
// queue is bounded by max_queued: past it, 503 at once.
func (q QueryConfig) APIEngineOptions() evaluator.Options {
	o := q.EngineOptions()
	o.MaxQueued = q.MaxQueued
	return o
}

// ReadLimits translates the settings for api.SetReadLimits.
func (q QueryConfig) ReadLimits() api.ReadLimits {
	return api.ReadLimits{
		ListingTimeout:     time.Duration(q.ListingTimeout),
		ListingConcurrency: q.ListingMaxConcurrency,
		ListingMaxResults:  q.ListingMaxResults,
		Parse:              q.parseLimits(),
		SelectMaxSeries:    q.MaxSeries,
		SelectTimeout:      time.Duration(q.Timeout),
		// Remote read: the samples and concurrency of queries.
		RemoteReadMaxSamples:  q.MaxSamples,
		RemoteReadConcurrency: q.MaxConcurrency,
	}
}
