package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/etcdgate/etcdgate/evaluator"
)

// ReadLimits bound the listing endpoints (/api/v1/series, /labels,
// /label/<name>/values, /status/tsdb, /slo) and the text of match[]
// selectors. Zero fields take the defaults.
type ReadLimits struct {
	// ListingTimeout caps a listing's time; a request's timeout
	// parameter can only shorten it. Default 30s.
	ListingTimeout time.Duration
	// ListingConcurrency bounds the listings served at once. They have
	// slots of their own, apart from the query engine's (and rule
	// evaluation has an engine of its own), so that listings cannot
	// starve queries or rules. More wait for a slot until their timeout,
	// then get 503. Default 4.
	ListingConcurrency int
	// ListingMaxResults caps the entries a listing returns: the request's
	// limit parameter, or this when the limit is absent or larger. Entries
	// are collected up to the cap and one more, and a truncated answer
	// carries a warning. Default 100,000.
	ListingMaxResults int
	// Parse bounds match[] selectors as query text is bounded.
	Parse evaluator.ParseLimits
	// SelectMaxSeries is the largest limit a peer's internal select may
	// ask for (query.max_series); SelectTimeout bounds one internal
	// select (query.timeout). Defaults: the engine's.
	SelectMaxSeries int
	SelectTimeout   time.Duration
	// Remote read (remote_read.go) runs under SelectTimeout and
	// SelectMaxSeries too. RemoteReadMaxSamples bounds the samples of a
	// SAMPLES answer, built whole before it is sent (query.max_samples);
	// RemoteReadConcurrency the remote reads served at once, in slots of
	// their own (more wait until their timeout, then get 503);
	// RemoteReadMaxBodyBytes a request's body, compressed and decoded;
	// RemoteReadMaxQueries its queries. Defaults: the engine's
	// max_samples, and DefaultRemoteRead*.
	RemoteReadMaxSamples   int64
	RemoteReadConcurrency  int
	RemoteReadMaxBodyBytes int
	RemoteReadMaxQueries   int
}

// Default read limits.
const (
	DefaultListingTimeout     = 30 * time.Second
	DefaultListingConcurrency = 4
	DefaultListingMaxResults  = 100_000
)

func (l ReadLimits) withDefaults() ReadLimits {
	if l.ListingTimeout <= 0 {
		l.ListingTimeout = DefaultListingTimeout
	}
	if l.ListingConcurrency <= 0 {
		l.ListingConcurrency = DefaultListingConcurrency
	}
	if l.ListingMaxResults <= 0 {
		l.ListingMaxResults = DefaultListingMaxResults
	}
	if l.SelectMaxSeries <= 0 {
		l.SelectMaxSeries = evaluator.DefaultMaxSeries
	}
	if l.SelectTimeout <= 0 {
		l.SelectTimeout = evaluator.DefaultTimeout
	}
	if l.RemoteReadMaxSamples <= 0 {
		l.RemoteReadMaxSamples = evaluator.DefaultMaxSamples
	}
	if l.RemoteReadConcurrency <= 0 {
		l.RemoteReadConcurrency = DefaultRemoteReadConcurrency
	}
	if l.RemoteReadMaxBodyBytes <= 0 {
		l.RemoteReadMaxBodyBytes = DefaultRemoteReadMaxBodyBytes
	}
	if l.RemoteReadMaxQueries <= 0 {
		l.RemoteReadMaxQueries = DefaultRemoteReadMaxQueries
	}
	return l
}

// listingState is one generation of read limits with its slots: a
// listing releases the slot it took to the channel it took it from, so a
// reload that changes the limits never mixes the two.
type listingState struct {
	limits ReadLimits
	slots  chan struct{}
	// remoteReads are the slots of remote reads.
	remoteReads chan struct{}
}

// SetReadLimits sets the bounds of the listing endpoints. Listings under
// way keep the slots they hold.
func (a *API) SetReadLimits(l ReadLimits) {
	l = l.withDefaults()
	a.listing.Store(&listingState{limits: l, slots: make(chan struct{}, l.ListingConcurrency),
		remoteReads: make(chan struct{}, l.RemoteReadConcurrency)})
}

func (a *API) listingState() *listingState {
	if s := a.listing.Load(); s != nil {
		return s
	}
	a.listing.CompareAndSwap(nil, &listingState{limits: ReadLimits{}.withDefaults(),
		slots: make(chan struct{}, DefaultListingConcurrency), remoteReads: make(chan struct{}, DefaultRemoteReadConcurrency)})
	return a.listing.Load()
}

var errListingBusy = errors.New("too many listing requests under way (query.listing_max_concurrency)")

// startListing bounds a listing: it applies the request's timeout capped
// by ListingTimeout and takes a listing slot, waiting at most until that
// timeout. On failure it has answered the client and returns a nil
// release. The caller calls release when the work is done (which may be
// after it answered, for work that cannot be interrupted).
func (a *API) startListing(w http.ResponseWriter, r *http.Request) (ctx context.Context, st *listingState, release func()) {
	st = a.listingState()
	timeout := st.limits.ListingTimeout
	if s := r.FormValue("timeout"); s != "" {
		d, err := parseDuration(s)
		if err != nil || d <= 0 {
			respondError(w, badData(fmt.Errorf("invalid parameter \"timeout\": %q is not a positive duration", s)))
			return nil, nil, nil
		}
		timeout = min(timeout, d)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	select {
	case st.slots <- struct{}{}:
	case <-ctx.Done():
		cancel()
		respondError(w, &apiError{typ: errorUnavailable, err: errListingBusy})
		return nil, nil, nil
	}
	return ctx, st, func() {
		<-st.slots
		cancel()
	}
}

// effectiveLimit is the number of entries a listing returns at most.
func (l ReadLimits) effectiveLimit(requested int) int {
	if requested <= 0 || requested > l.ListingMaxResults {
		return l.ListingMaxResults
	}
	return requested
}

// truncation returns the warning for a listing that found more than
// limit entries, naming which bound cut it.
func truncation(limit, requested int) []string {
	if requested > 0 && limit == requested {
		return []string{truncatedWarning}
	}
	return []string{fmt.Sprintf("%s: at most %d entries are returned (query.listing_max_results)", truncatedWarning, limit)}
}

// panicLog logs panics recovered from queries, at most once per
// interval, counting those it left out, so that a query that triggers a
// bug cannot flood the log.
type panicLog struct {
	last       atomic.Int64 // unix nanoseconds of the last record
	suppressed atomic.Int64
}

const panicLogInterval = 10 * time.Second

func (p *panicLog) log(logger *slog.Logger, query string, pe *evaluator.PanicError) {
	now := time.Now().UnixNano()
	last := p.last.Load()
	if now-last < int64(panicLogInterval) || !p.last.CompareAndSwap(last, now) {
		p.suppressed.Add(1)
		return
	}
	logger.Error("query evaluation panicked: a bug", "query", truncateForLog(query), "panic", fmt.Sprint(pe.Value),
		"suppressed_since_last", p.suppressed.Swap(0), "stack", string(pe.Stack))
}

func truncateForLog(s string) string {
	const max = 1024
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
