package api

import (
	"fmt"
	"net/http"
)

func (a *API) healthy(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "etcdgate is Healthy.")
}

// ready answers 200 once the store has recovered, and 503 before, or
// while the store refuses writes (a failed WAL), naming the cause.
func (a *API) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !a.isReady() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "etcdgate is not ready.")
		return
	}
	if err := storageErr(a.backend.Load()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "etcdgate is not ready: %v\n", err)
		return
	}
	fmt.Fprintln(w, "etcdgate is Ready.")
}

// reload re-reads the configuration. Ingestion and queries go on while it
// runs: the reload swaps settings atomically.
func (a *API) reload(w http.ResponseWriter, _ *http.Request) {
	if !a.opts.EnableLifecycle {
		http.Error(w, "Lifecycle API is not enabled.", http.StatusForbidden)
		return
	}
	if a.opts.Reload == nil {
		http.Error(w, "reload is not configured", http.StatusNotImplemented)
		return
	}
	if err := a.opts.Reload(); err != nil {
		http.Error(w, fmt.Sprintf("failed to reload config: %v", err), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}
