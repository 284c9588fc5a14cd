package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/etcdgate/etcdgate/ingest"
)

// GET /api/v1/status/targets lists the scrape targets whose samples
// arrive, with their collection completeness (ingest/targets.go):
//
//	{"status":"success","data":{"targets":[{"cluster":"…","job":"…","instance":"…",
//	  "scrape_interval_seconds":15,"series":1830,"last_seen":"…",
//	  "completeness":{"5m":1,"1h":0.99,"1d":0.9999}}]}}
//
// Parameters: cluster, job, instance (exact values; absent: any), below (a
// ratio: only targets whose completeness over window is below it),
// window (5m, 1h or 1d; default 1h), limit (default 1000, at most the
// listing limit). A completeness not known yet (fewer than two scrapes)
// is null. In a ring each node counts what it received: every node's
// tallies, taken at the same time, are merged (TargetsPartPath).

// TargetsPartPath is the internal endpoint (role read) at which a node of
// a ring serves its own tallies.
const TargetsPartPath = "/internal/v1/targets"

// TargetSource counts samples by scrape target (ingest.Targets).
type TargetSource interface {
	Tallies(now time.Time, keep func(ingest.TargetKey) bool, limit int) []ingest.TargetTally
}

// targetsQuery holds the parameters of /api/v1/status/targets.
type targetsQuery struct {
	key    ingest.TargetKey // filters; "" matches any
	below  float64          // 0: no filter
	window int
	limit  int
	now    time.Time
}

func parseTargetsQuery(r *http.Request, maxLimit int) (targetsQuery, error) {
	q := targetsQuery{key: ingest.TargetKey{Cluster: r.FormValue("cluster"), Job: r.FormValue("job"), Instance: r.FormValue("instance")},
		window: 1, limit: min(1000, maxLimit), now: time.Now()}
	if s := r.FormValue("window"); s != "" {
		q.window = -1
		for i, w := range ingest.TargetWindows {
			if w.Name == s {
				q.window = i
			}
		}
		if q.window < 0 {
			return q, fmt.Errorf("invalid parameter \"window\": %q: want 5m, 1h or 1d", s)
		}
	}
	if s := r.FormValue("below"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !(v > 0 && v <= 1) {
			return q, fmt.Errorf("invalid parameter \"below\": %q: want a ratio in (0, 1]", s)
		}
		q.below = v
	}
	if s := r.FormValue("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return q, fmt.Errorf("invalid parameter \"limit\": %q: want 1 to %d", s, maxLimit)
		}
		q.limit = n
	}
	if s := r.FormValue("time"); s != "" { // set by the asking node of a ring
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return q, fmt.Errorf("invalid parameter \"time\": %q: want milliseconds", s)
		}
		q.now = time.UnixMilli(ms)
	}
	return q, nil
}

func (q targetsQuery) keep(k ingest.TargetKey) bool {
	return (q.key.Cluster == "" || k.Cluster == q.key.Cluster) && (q.key.Job == "" || k.Job == q.key.Job) &&
		(q.key.Instance == "" || k.Instance == q.key.Instance)
}

// partValues is the query string a peer is asked with: the filters and
// this node's time, so that every node's windows end together.
func (q targetsQuery) partValues() url.Values {
	v := url.Values{"time": {strconv.FormatInt(q.now.UnixMilli(), 10)}}
	for name, val := range map[string]string{"cluster": q.key.Cluster, "job": q.key.Job, "instance": q.key.Instance} {
		if val != "" {
			v.Set(name, val)
		}
	}
	return v
}

// TargetStatuses returns the completeness of the targets keep accepts
// (nil: all) at now, of the whole ring in a ring, with warnings naming
// the nodes whose counts are missing.
func (a *API) TargetStatuses(ctx context.Context, now time.Time, keep func(ingest.TargetKey) bool) ([]ingest.TargetStatus, []string) {
	return a.targetStatuses(ctx, targetsQuery{now: now}, keep)
}

func (a *API) targetStatuses(ctx context.Context, q targetsQuery, keep func(ingest.TargetKey) bool) ([]ingest.TargetStatus, []string) {
	if a.opts.Targets == nil {
		return nil, nil
	}
	parts := [][]ingest.TargetTally{a.opts.Targets.Tallies(q.now, keep, 0)}
	var warnings []string
	if a.opts.RingParts != nil {
		var peers [][]ingest.TargetTally
		peers, warnings = gatherParts(ctx, a.opts.RingParts, TargetsPartPath+"?"+q.partValues().Encode(), "target counts",
			func(_ string, data json.RawMessage) ([]ingest.TargetTally, error) {
				var t []ingest.TargetTally
				err := json.Unmarshal(data, &t)
				return t, err
			})
		parts = append(parts, peers...)
	}
	merged := ingest.MergeTallies(parts...)
	out := make([]ingest.TargetStatus, 0, len(merged))
	for i := range merged {
		if keep == nil || keep(merged[i].TargetKey) { // a peer answers what it was asked
			out = append(out, merged[i].Status(q.now))
		}
	}
	return out, warnings
}

// statusTargets is a listing: it takes a listing slot and the listing
// timeout, as every target's counts are copied and merged.
func (a *API) statusTargets(w http.ResponseWriter, r *http.Request) {
	q, err := parseTargetsQuery(r, a.listingState().limits.ListingMaxResults)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	ctx, _, release := a.startListing(w, r)
	if release == nil {
		return
	}
	defer release()
	statuses, warnings := a.targetStatuses(ctx, q, q.keep)
	out := make([]targetJSON, 0, min(len(statuses), q.limit))
	for _, s := range statuses {
		if q.below > 0 && !(s.Ratio[q.window] < q.below) {
			continue
		}
		if len(out) == q.limit {
			warnings = append(warnings, fmt.Sprintf("more than %d targets: the first %d by cluster, job and instance", q.limit, q.limit))
			break
		}
		out = append(out, newTargetJSON(s))
	}
	respond(w, map[string]any{"targets": out}, warnings)
}

// targetsPart serves TargetsPartPath: this node's own tallies.
func (a *API) targetsPart(w http.ResponseWriter, r *http.Request) {
	q, err := parseTargetsQuery(r, math.MaxInt)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	_, _, release := a.startListing(w, r)
	if release == nil {
		return
	}
	defer release()
	var t []ingest.TargetTally
	if a.opts.Targets != nil {
		t = a.opts.Targets.Tallies(q.now, q.keep, 0)
	}
	respond(w, t, nil)
}

type targetJSON struct {
	Cluster      string              `json:"cluster"`
	Job          string              `json:"job"`
	Instance     string              `json:"instance"`
	Interval     float64             `json:"scrape_interval_seconds"`
	Series       int                 `json:"series"`
	LastSeen     time.Time           `json:"last_seen"`
	Completeness map[string]*float64 `json:"completeness"`
}

func newTargetJSON(s ingest.TargetStatus) targetJSON {
	t := targetJSON{Cluster: s.Cluster, Job: s.Job, Instance: s.Instance, Interval: s.Interval.Seconds(), Series: s.Series,
		LastSeen: s.LastSeen.UTC(), Completeness: map[string]*float64{}}
	for w, r := range s.Ratio {
		if !math.IsNaN(r) {
			t.Completeness[ingest.TargetWindows[w].Name] = &r
		} else {
			t.Completeness[ingest.TargetWindows[w].Name] = nil
		}
	}
	return t
}
