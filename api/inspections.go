package api

import (
	"fmt"
	"net/http"
	"slices"
)

// defaultInspectionLimit bounds a reply when the request names no limit:
// a fleet's day of records is far more than a page wants.
const defaultInspectionLimit = 1000

// inspections serves /api/v1/inspections: recent inspection records,
// newest first, filtered by cluster, inspection and status. Without a
// prober the list is empty, so dashboards can tell "nothing found" from
// "not deployed" only through the config; a 404 would look like an
// older etcdgate.
func (a *API) inspections(w http.ResponseWriter, r *http.Request) {
	var names []string
	if a.opts.Inspections != nil {
		names = a.opts.Inspections.InspectionNames()
	}
	f, err := parseInspectionFilter(r, names)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	recs, warnings := a.allInspections(r.Context(), f, r.URL.RawQuery)
	respond(w, recs, warnings)
}

// parseInspectionFilter reads the filter; names are the inspections it
// may name (nil: any, as without a prober nothing is listed anyway).
func parseInspectionFilter(r *http.Request, names []string) (InspectionFilter, error) {
	f := InspectionFilter{Cluster: r.FormValue("cluster"), Inspection: r.FormValue("inspection")}
	if f.Inspection != "" && names != nil && !slices.Contains(names, f.Inspection) {
		return f, fmt.Errorf("invalid parameter \"inspection\": unknown inspection %q: want one of %v", f.Inspection, names)
	}
	if s := r.FormValue("status"); s != "" {
		if !slices.Contains(inspectionStatuses, s) {
			return f, fmt.Errorf("invalid parameter \"status\": %q: want success, warning or failed", s)
		}
		f.Status = s
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
