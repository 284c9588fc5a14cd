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
	data, err := a.opts.SLOStatus(r.Context(), t)
	if err != nil {
		respondError(w, &apiError{typ: errorExecution, err: err})
		return
	}
	respond(w, data, nil)
}
