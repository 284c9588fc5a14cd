package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeRecords filters its records as the prober's record store does,
// newest (last) first.
type fakeRecords []InspectionRecord

func (f fakeRecords) InspectionNames() []string {
	return []string{"consistency", "health", "big_values", "key_count", "hot_keys"}
}

func (f fakeRecords) Inspections(flt InspectionFilter) []InspectionRecord {
	var out []InspectionRecord
	for i := len(f) - 1; i >= 0; i-- {
		r := f[i]
		if (flt.Cluster == "" || flt.Cluster == r.Cluster) && (flt.Inspection == "" || flt.Inspection == r.Inspection) &&
			(flt.Status == "" || flt.Status == r.Status) && (flt.Limit == 0 || len(out) < flt.Limit) {
			out = append(out, r)
		}
	}
	return out
}

func TestInspections(t *testing.T) {
	now := time.Now()
	store := fakeRecords{
		{Cluster: "etcd-a", Inspection: "health", Status: "success", Message: "3 of 3 members answered", Start: now, End: now},
		{Cluster: "etcd-b", Inspection: "health", Status: "failed", Message: "connection refused", Start: now, End: now},
		{Cluster: "etcd-a", Inspection: "consistency", Status: "warning", Message: "nodeKeyDiff is 3", Start: now, End: now},
	}
	h := New(Options{Inspections: store}).Handler()
	get := func(query string) (int, response, []InspectionRecord) {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/inspections"+query, nil))
		var resp response
		var recs []InspectionRecord
		resp.Data = &recs
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%s: %v", w.Body, err)
		}
		return w.Code, resp, recs
	}
	for query, want := range map[string][]string{
		"":                                  {"nodeKeyDiff is 3", "connection refused", "3 of 3 members answered"},
		"?cluster=etcd-a":                   {"nodeKeyDiff is 3", "3 of 3 members answered"},
		"?cluster=etcd-a&inspection=health": {"3 of 3 members answered"},
		"?status=failed":                    {"connection refused"},
		"?limit=1":                          {"nodeKeyDiff is 3"},
		"?cluster=etcd-z":                   {},
	} {
		code, resp, recs := get(query)
		if code != http.StatusOK || resp.Status != "success" || len(recs) != len(want) {
			t.Fatalf("%s: %d %+v %+v", query, code, resp, recs)
		}
		for i := range want {
			if recs[i].Message != want[i] {
				t.Errorf("%s: record %d %q, want %q", query, i, recs[i].Message, want[i])
			}
		}
	}
	for query, want := range map[string]string{
		"?status=ok":          `invalid parameter "status": "ok": want success, warning or failed`,
		"?inspection=hotkeys": `invalid parameter "inspection": unknown inspection "hotkeys": want one of [consistency`,
		"?limit=-1":           `invalid parameter "limit"`,
		"?limit=ten":          `invalid parameter "limit"`,
	} {
		code, resp, _ := get(query)
		if code != http.StatusBadRequest || resp.ErrorType != errorBadData || !strings.Contains(resp.Error, want) {
			t.Errorf("%s: %d %+v, want 400 with %q", query, code, resp, want)
		}
	}
}

func TestInspectionsWithoutProber(t *testing.T) {
	w := httptest.NewRecorder()
	New(Options{}).Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/inspections", nil))
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"status":"success","data":[]}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}
