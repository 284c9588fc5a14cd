package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
)

// The widest time range, as Prometheus's API defines it: the extremes of
// time.Time that survive a round trip through milliseconds.
var (
	minTime          = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime          = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
	minTimeFormatted = minTime.Format(time.RFC3339Nano)
	maxTimeFormatted = maxTime.Format(time.RFC3339Nano)
)

// parseTime accepts a Unix timestamp in seconds with optional decimals or
// an RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTimeFormatted:
		return minTime, nil
	case maxTimeFormatted:
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid parameter %q: %w", name, err)
	}
	return t, nil
}

// parseRange reads start and end (defaults: all of time) in milliseconds.
func parseRange(r *http.Request) (mint, maxt int64, err error) {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return 0, 0, err
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		return 0, 0, err
	}
	if end.Before(start) {
		return 0, 0, errors.New("end timestamp must not be before start time")
	}
	return start.UnixMilli(), end.UnixMilli(), nil
}

// parseLimit reads the limit parameter; 0 means no limit.
func parseLimit(r *http.Request) (int, error) {
	s := r.FormValue("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid parameter \"limit\": cannot parse %q: must be a non-negative integer", s)
	}
	return n, nil
}

// maxMatchSelectors bounds the match[] parameters of one request: each
// one is a pass over the index.
const maxMatchSelectors = 1000

// parseMatchers parses every match[] selector. A selector with `or`
// groups yields one matcher set per group. Each set must contain a
// matcher that does not match the empty string, so that no selector
// selects every series by accident.
func parseMatchers(selectors []string, pl evaluator.ParseLimits) ([][]*labels.Matcher, error) {
	if len(selectors) > maxMatchSelectors {
		return nil, fmt.Errorf("%d match[] selectors, more than the limit of %d", len(selectors), maxMatchSelectors)
	}
	var sets [][]*labels.Matcher
	for _, s := range selectors {
		// Bounded like query text: the parser recurses.
		if err := evaluator.CheckQueryText(s, pl); err != nil {
			return nil, fmt.Errorf("invalid parameter \"match[]\": %w", err)
		}
		expr, err := metricsql.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("invalid parameter \"match[]\": %w", err)
		}
		me, ok := expr.(*metricsql.MetricExpr)
		if !ok {
			return nil, fmt.Errorf("invalid parameter \"match[]\": %q is not a series selector", s)
		}
		for _, group := range me.LabelFilterss {
			set, err := evaluator.Matchers(group)
			if err != nil {
				return nil, fmt.Errorf("invalid parameter \"match[]\": %w", err)
			}
			if !hasNonEmptyMatcher(set) {
				return nil, errors.New("match[] must contain at least one non-empty matcher")
			}
			sets = append(sets, set)
		}
	}
	return sets, nil
}

func hasNonEmptyMatcher(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches("") {
			return true
		}
	}
	return false
}
