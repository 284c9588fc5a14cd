package api

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/etcdgate/etcdgate/probe"
)

// InspectionRecords is what /api/v1/inspections reads: the records of
// recent inspection runs.
type InspectionRecords interface {
	List(f probe.Filter) []probe.Record
}

// defaultInspectionLimit bounds a reply when the request names no limit:
// a fleet's day of records is far more than a page wants.
const defaultInspectionLimit = 1000

// inspections serves /api/v1/inspections: recent inspection records,
// newest first, filtered by cluster, inspection and status. Without a
// prober the list is empty, so dashboards can tell "nothing found" from
// "not deployed" only through the config; a 404 would look like an
// older etcdgate.
func (a *API) inspections(w http.ResponseWriter, r *http.Request) {
	f, err := parseInspectionFilter(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	if a.opts.Inspections == nil {
		respond(w, []probe.Record{}, nil)
		return
	}
	respond(w, a.opts.Inspections.List(f), nil)
}

func parseInspectionFilter(r *http.Request) (probe.Filter, error) {
	f := probe.Filter{Cluster: r.FormValue("cluster"), Inspection: r.FormValue("inspection")}
	if f.Inspection != "" && !slices.Contains(probe.Names(), f.Inspection) {
		return f, fmt.Errorf("invalid parameter \"inspection\": unknown inspection %q: want one of %v", f.Inspection, probe.Names())
	}
	if s := r.FormValue("status"); s != "" {
		st, ok := probe.ParseStatus(s)
		if !ok {
			return f, fmt.Errorf("invalid parameter \"status\": %q: want success, warning or failed", s)
		}
		f.Status = st
	}
	limit, err := parseLimit(r)
	if err != nil {
		return f, err
	}
	f.Limit = limit
	if f.Limit == 0 {
		f.Limit = defaultInspectionLimit
	}
	return f, nil
}
