package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcdgate/etcdgate/ring"
	"github.com/etcdgate/etcdgate/tsdb"
)

func metricMD(metric, typ, help, unit string) tsdb.MetricMetadata {
	return tsdb.MetricMetadata{Metric: metric, Metadata: tsdb.Metadata{Type: typ, Help: help, Unit: unit}}
}

// metadataHead is a head holding mds, added one at a time so that the
// later ones of a name are the more recently seen.
func metadataHead(t *testing.T, mds ...tsdb.MetricMetadata) *tsdb.Head {
	t.Helper()
	opts := tsdb.DefaultHeadOptions()
	opts.StripeSize = 16
	h, err := tsdb.NewHead(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range mds {
		h.AddMetadata(mds[i : i+1])
	}
	return h
}

// getRaw GETs u and returns the status code and the body.
func getRaw(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestMetadataEndpoint(t *testing.T) {
	// Within a second the entries of a name are equally recent: one per
	// name but "two", whose order the test does not depend on.
	h := metadataHead(t,
		metricMD("etcd_server_has_leader", "gauge", "Whether or not a leader exists.", ""),
		metricMD("etcd_disk_wal_fsync_duration_seconds", "histogram", "The latency of fsync.", "seconds"),
		metricMD("go_goroutines", "gauge", "Number of goroutines.", ""),
	)
	reg := prometheus.NewRegistry()
	a := New(Options{Registerer: reg, Gatherer: reg})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	if code, body := getRaw(t, srv.URL+"/api/v1/metadata"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"errorType":"unavailable"`) {
		t.Fatalf("before the store is open: %d %s", code, body)
	}
	a.SetBackend(nil, h)
	const (
		leader  = `"etcd_server_has_leader":[{"type":"gauge","help":"Whether or not a leader exists.","unit":""}]`
		fsync   = `"etcd_disk_wal_fsync_duration_seconds":[{"type":"histogram","help":"The latency of fsync.","unit":"seconds"}]`
		goroutn = `"go_goroutines":[{"type":"gauge","help":"Number of goroutines.","unit":""}]`
	)
	for _, tc := range []struct {
		query string
		code  int
		want  string // the whole body
	}{
		{"", 200, `{"status":"success","data":{` + fsync + `,` + leader + `,` + goroutn + `}}`},
		{"?limit=-1", 200, `{"status":"success","data":{` + fsync + `,` + leader + `,` + goroutn + `}}`},
		{"?limit=2", 200, `{"status":"success","data":{` + fsync + `,` + leader + `}}`},
		{"?limit=0", 200, `{"status":"success","data":{}}`},
		{"?metric=go_goroutines", 200, `{"status":"success","data":{` + goroutn + `}}`},
		{"?metric=go_goroutines&limit_per_metric=1", 200, `{"status":"success","data":{` + goroutn + `}}`},
		{"?metric=nope", 200, `{"status":"success","data":{}}`},
		{"?limit=abc", 400, `{"status":"error","errorType":"bad_data","error":"limit must be a number"}`},
		{"?limit=1.5", 400, `{"status":"error","errorType":"bad_data","error":"limit must be a number"}`},
		{"?limit=99999999999999999999", 400, `{"status":"error","errorType":"bad_data","error":"limit must be a number"}`},
		{"?limit_per_metric=x", 400, `{"status":"error","errorType":"bad_data","error":"limit_per_metric must be a number"}`},
		{"?limit_per_metric=", 200, `{"status":"success","data":{` + fsync + `,` + leader + `,` + goroutn + `}}`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			code, body := getRaw(t, srv.URL+"/api/v1/metadata"+tc.query)
			if code != tc.code || body != tc.want {
				t.Fatalf("%d %s\nwant %d %s", code, body, tc.code, tc.want)
			}
		})
	}
	// Two entries of a name; limit_per_metric cuts them.
	h.AddMetadata([]tsdb.MetricMetadata{metricMD("go_goroutines", "gauge", "Goroutines that exist.", "")})
	for q, want := range map[string]int{"": 2, "&limit_per_metric=1": 1, "&limit_per_metric=0": 2, "&limit_per_metric=-3": 2} {
		var data map[string][]tsdb.Metadata
		if code := getJSON(t, srv.URL+"/api/v1/metadata?metric=go_goroutines"+q, &data); code != 200 || len(data["go_goroutines"]) != want {
			t.Fatalf("limit_per_metric %q: %d %+v, want %d entries", q, code, data, want)
		}
	}
	// A store that keeps no metadata answers none.
	a.SetBackend(nil, noMetadataStorage{h})
	if code, body := getRaw(t, srv.URL+"/api/v1/metadata"); code != 200 || body != `{"status":"success","data":{}}` {
		t.Fatalf("store without metadata: %d %s", code, body)
	}
}

// noMetadataStorage hides the head's Metadata method.
type noMetadataStorage struct{ Storage }

// metadataRing starts one API per head, named n0.., each knowing all, as
// newStateRing does.
func metadataRing(t *testing.T, heads ...*tsdb.Head) []*stateNode {
	t.Helper()
	var members []ring.Node
	var parts []*peerParts
	var nodes []*stateNode
	for i, h := range heads {
		name := fmt.Sprintf("n%d", i)
		po := ring.DefaultPeerOptions()
		po.Registerer = prometheus.NewRegistry()
		peers, err := ring.NewPeers(po)
		if err != nil {
			t.Fatal(err)
		}
		rp := &peerParts{self: name, peers: peers}
		a := New(Options{Ring: staticRing{}, RingParts: rp})
		a.SetBackend(nil, h)
		n := &stateNode{name: name}
		hd := a.Handler()
		n.h.Store(&hd)
		n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*n.h.Load()).ServeHTTP(w, r) }))
		t.Cleanup(n.srv.Close)
		members = append(members, ring.Node{Name: name, URL: n.srv.URL, State: ring.StateActive})
		parts = append(parts, rp)
		nodes = append(nodes, n)
	}
	for _, p := range parts {
		p.nodes = members
	}
	return nodes
}

// TestMetadataWholeRing: metadata stays on the node that received the
// write, so every node answers the union of all nodes', an entry two
// nodes hold once; limits apply to the union; a node down costs its part
// only, with a warning naming it.
func TestMetadataWholeRing(t *testing.T) {
	up := metricMD("up", "gauge", "Up.", "")
	nodes := metadataRing(t,
		metadataHead(t, up, metricMD("a_total", "counter", "A.", "")),
		metadataHead(t, up, metricMD("b_seconds", "histogram", "B.", "seconds"), metricMD("up", "gauge", "Up, v2.", "")),
		metadataHead(t, metricMD("c", "gauge", "C.", "")),
	)
	type data = map[string][]tsdb.Metadata
	for _, n := range nodes {
		code, raw, warnings := getEnvelope(t, n.srv.URL+"/api/v1/metadata")
		var got data
		if err := json.Unmarshal(raw, &got); err != nil || code != 200 || len(warnings) != 0 {
			t.Fatalf("through %s: %d %s %v %v", n.name, code, raw, err, warnings)
		}
		if len(got) != 4 || len(got["up"]) != 2 || len(got["a_total"]) != 1 || len(got["b_seconds"]) != 1 || len(got["c"]) != 1 {
			t.Fatalf("through %s: %s", n.name, raw)
		}
		// The limit takes the first names of the union, sorted.
		got = nil
		_, raw, _ = getEnvelope(t, n.srv.URL+"/api/v1/metadata?limit=2")
		if err := json.Unmarshal(raw, &got); err != nil || len(got) != 2 || got["a_total"] == nil || got["b_seconds"] == nil {
			t.Fatalf("limit=2 through %s: %s", n.name, raw)
		}
		got = nil
		_, raw, _ = getEnvelope(t, n.srv.URL+"/api/v1/metadata?metric=up&limit_per_metric=1")
		if err := json.Unmarshal(raw, &got); err != nil || len(got) != 1 || len(got["up"]) != 1 {
			t.Fatalf("metric=up&limit_per_metric=1 through %s: %s", n.name, raw)
		}
		_, raw, _ = getEnvelope(t, n.srv.URL+"/api/v1/metadata?limit=0")
		if string(raw) != "{}" {
			t.Fatalf("limit=0 through %s: %s", n.name, raw)
		}
	}
	// The internal part holds the node's own metadata only, and refuses
	// bad parameters as the public endpoint does.
	if code, body := getRaw(t, nodes[2].srv.URL+MetadataPartPath); code != 200 ||
		body != `{"status":"success","data":{"c":[{"type":"gauge","help":"C.","unit":""}]}}` {
		t.Fatalf("part of n2: %d %s", code, body)
	}
	if code, body := getRaw(t, nodes[2].srv.URL+MetadataPartPath+"?limit=x"); code != 400 || !strings.Contains(body, "bad_data") {
		t.Fatalf("part with a bad limit: %d %s", code, body)
	}
	nodes[2].srv.Close()
	code, raw, warnings := getEnvelope(t, nodes[0].srv.URL+"/api/v1/metadata")
	var got data
	if err := json.Unmarshal(raw, &got); err != nil || code != 200 || len(got) != 3 || got["c"] != nil {
		t.Fatalf("with n2 down: %d %s %v", code, raw, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "node n2") || !strings.Contains(warnings[0], "metric metadata") {
		t.Fatalf("with n2 down, warnings %v", warnings)
	}
}

// TestMetadataAuth: both endpoints need the read role; a write-only
// credential is refused.
func TestMetadataAuth(t *testing.T) {
	h := metadataHead(t, metricMD("up", "gauge", "Up.", ""))
	a := New(Options{Ring: staticRing{}, RingParts: &peerParts{self: "n0"},
		Auth: mustPolicy(t, AuthOptions{Web: testWebConfig(t), Authorization: testAuthorization})})
	a.SetBackend(nil, h)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for _, path := range []string{"/api/v1/metadata", MetadataPartPath} {
		for user, want := range map[string]int{"writer": http.StatusForbidden, "reader": http.StatusOK, "admin": http.StatusForbidden} {
			req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(user, user+"-secret")
			if code, _ := do(t, srv.Client(), req); code != want {
				t.Errorf("%s as %s: %d, want %d", path, user, code, want)
			}
		}
	}
}
