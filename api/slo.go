package api

import (
	"net/http"
	"time"
)

func (a *API) sloStatus(w http.ResponseWriter, r *http.Request) {
	if a.opts.SLOStatus == nil {
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
	data, err := a.opts.SLOStatus(ctx, t)
	if err != nil {
		if ctx.Err() != nil {
			respondError(w, readError(ctx.Err()))
		} else {
			respondError(w, queryError(err))
		}
		return
	}
	respond(w, data, nil)
}
