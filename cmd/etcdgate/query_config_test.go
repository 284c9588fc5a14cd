package main

import (
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/api"
	"github.com/etcdgate/etcdgate/evaluator"
)

func TestQueryLimitsConfig(t *testing.T) {
	cfg, err := LoadConfig("testdata/query_limits.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if eo := cfg.Query.EngineOptions(); eo.MaxQueued != 0 {
		t.Fatalf("the rules' engine has a bounded queue: %+v", eo)
	}
	eo := cfg.Query.APIEngineOptions()
	if eo.MaxQueued != 7 || eo.MaxSeries != 300 || eo.MaxPointsPerSeries != 20000 || eo.MaxSubquerySteps != 5000 ||
		eo.ParseLimits != (evaluator.ParseLimits{MaxLength: 4096, MaxDepth: 50}) {
		t.Fatalf("engine options %+v", eo)
	}
	want := api.ReadLimits{ListingTimeout: 5 * time.Second, ListingConcurrency: 2, ListingMaxResults: 1000,
		Parse: evaluator.ParseLimits{MaxLength: 4096, MaxDepth: 50}, SelectMaxSeries: 300, SelectTimeout: time.Duration(cfg.Query.Timeout),
		RemoteReadMaxSamples: cfg.Query.MaxSamples, RemoteReadConcurrency: cfg.Query.MaxConcurrency}
	if rl := cfg.Query.ReadLimits(); rl != want {
		t.Fatalf("read limits %+v, want %+v", rl, want)
	}
	if cfg.Query.PartialResponse {
		t.Fatal("query.partial_response: false read as true")
	}
	def := defaultQueryConfig()
	if def.MaxQueryLength != 64<<10 || def.MaxQueryDepth != 1000 || def.MaxPointsPerSeries != 11000 || def.MaxSeries != 2000000 ||
		def.ListingMaxResults != 100000 || !def.PartialResponse || def.Validate() != nil {
		t.Fatalf("defaults %+v", def)
	}
	for _, key := range []string{"max_series", "max_queued", "max_query_length", "max_query_depth", "max_points_per_series",
		"max_subquery_steps", "listing_timeout", "listing_max_concurrency", "listing_max_results"} {
		q := def
		switch key {
		case "max_series":
			q.MaxSeries = 0
		case "max_queued":
			q.MaxQueued = 0
		case "max_query_length":
			q.MaxQueryLength = -1
		case "max_query_depth":
			q.MaxQueryDepth = 0
		case "max_points_per_series":
			q.MaxPointsPerSeries = 0
		case "max_subquery_steps":
			q.MaxSubquerySteps = 0
		case "listing_timeout":
			q.ListingTimeout = 0
		case "listing_max_concurrency":
			q.ListingMaxConcurrency = 0
		case "listing_max_results":
			q.ListingMaxResults = 0
		}
		if err := q.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s at zero: %v", key, err)
		}
	}
}
