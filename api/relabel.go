package api

import "net/http"

// relabelStatus serves /api/v1/status/relabel: per-rule counts, registry
// size and unknown clusters, as the relabel pipeline reports them. Without
// a pipeline it says so rather than answering 404, so dashboards can tell
// "off" from "not deployed".
func (a *API) relabelStatus(w http.ResponseWriter, _ *http.Request) {
	if a.opts.RelabelStatus == nil {
		respond(w, map[string]bool{"enabled": false}, nil)
		return
	}
	respond(w, a.opts.RelabelStatus(), nil)
}
