package api

import (
	"net/http"
	"time"
)

func (a *API) sloStatus(w http.ResponseWriter, r *http.Request) {
	a.sloStatusOf(w, r, a.opts.RingParts != nil)
}

// sloStatusOf answers with this node's SLO statuses, merged with the
// other nodes' when wholeRing.
func (a *API) sloStatusOf(w http.ResponseWriter, r *http.Request, wholeRing bool) {
	if a.opts.SLOStatus == nil && !wholeRing {
		respond(w, map[string]any{"slos": []any{}}, nil)
		return
	}
	t := time.Now()
	if s := r.URL.Query().Get("time"); s != "" {
		var err error
		if t, err = parseTime(s); err != nil {
			respondError(w, badData(err))
			return
		}
	}
	ctx, _, release := a.startListing(w, r)
	if release == nil {
		return
	}
	defer release()
	var data any = map[string]any{"slos": []any{}}
	var err error
	if a.opts.SLOStatus != nil {
		data, err = a.opts.SLOStatus(ctx, t)
	}
	var warnings []string
	if err == nil && wholeRing {
		data, warnings, err = a.mergeSLOs(ctx, data, r.URL.RawQuery)
	}
	if err != nil {
		if ctx.Err() != nil {
			respondError(w, readError(ctx.Err()))
		} else {
			respondError(w, queryError(err))
		}
		return
	}
	respond(w, data, warnings)
}
