package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/probe"
)

func TestInspections(t *testing.T) {
	store := probe.NewRecordStore(time.Hour, 100)
	now := time.Now()
	for _, r := range []probe.Record{
		{Cluster: "etcd-a", Inspection: "health", Status: probe.StatusSuccess, Message: "3 of 3 members answered"},
		{Cluster: "etcd-b", Inspection: "health", Status: probe.StatusFailed, Message: "connection refused"},
		{Cluster: "etcd-a", Inspection: "consistency", Status: probe.StatusWarning, Message: "nodeKeyDiff is 3"},
	} {
		r.Start, r.End = now, now
		store.Add(r)
	}
	h := New(Options{Inspections: store}).Handler()
	get := func(query string) (int, response, []probe.Record) {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/inspections"+query, nil))
		var resp response
		var recs []probe.Record
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
