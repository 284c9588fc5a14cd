package api

import (
	"net/http"
	"time"
)

// RuntimeInfo is /api/v1/status/runtimeinfo's data, in Prometheus's
// shape, with the fields etcdgate has: it keeps no count of repaired
// corruptions, so corruptionCount is absent.
type RuntimeInfo struct {
	StartTime           time.Time `json:"startTime"`
	CWD                 string    `json:"CWD"`
	Hostname            string    `json:"hostname"`
	ServerTime          time.Time `json:"serverTime"`
	ReloadConfigSuccess bool      `json:"reloadConfigSuccess"`
	LastConfigTime      time.Time `json:"lastConfigTime"`
	GoroutineCount      int       `json:"goroutineCount"`
	GOMAXPROCS          int       `json:"GOMAXPROCS"`
	GOMEMLIMIT          int64     `json:"GOMEMLIMIT"`
	GOGC                string    `json:"GOGC"`
	GODEBUG             string    `json:"GODEBUG"`
	StorageRetention    string    `json:"storageRetention"`
}

// configYAML is /api/v1/status/config's data.
type configYAML struct {
	YAML string `json:"yaml"`
}

// statusConfig serves /api/v1/status/config: the running configuration
// as YAML, its secrets masked (Options.Config).
func (a *API) statusConfig(w http.ResponseWriter, _ *http.Request) {
	y, err := a.opts.Config()
	if err != nil {
		respondError(w, &apiError{typ: errorInternal, err: err})
		return
	}
	respond(w, configYAML{YAML: y}, nil)
}

// runtimeInfo serves /api/v1/status/runtimeinfo.
func (a *API) runtimeInfo(w http.ResponseWriter, _ *http.Request) {
	ri := a.opts.RuntimeInfo()
	ri.ServerTime = time.Now().UTC()
	respond(w, ri, nil)
}
