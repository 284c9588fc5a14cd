package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/ring"
)

// peerParts is api.RingParts over real ring.Peers: each test node asks
// the others' servers for their parts over HTTP.
type peerParts struct {
	self  string
	peers *ring.Peers
	mu    sync.Mutex
	nodes []ring.Node // guarded by mu
}

func (p *peerParts) Self() string { return p.self }

func (p *peerParts) Parts(ctx context.Context, pathQuery string) []RingPart {
	p.mu.Lock()
	nodes := p.nodes
	p.mu.Unlock()
	var out []RingPart
	for i := range nodes {
		if nodes[i].Name == p.self {
			continue
		}
		data, err := p.peers.Part(ctx, &nodes[i], pathQuery)
		out = append(out, RingPart{Node: nodes[i].Name, Data: data, Err: err})
	}
	return out
}

// stateNode is one node of a ring whose state the test fixes.
type stateNode struct {
	name string
	srv  *httptest.Server
	h    atomic.Pointer[http.Handler] // what srv serves
}

type nodeState struct {
	groups  fakeRules
	records fakeRecords
	slos    []string
}

// newStateRing starts one API per state, named n0.., each knowing all.
func newStateRing(t *testing.T, states ...nodeState) []*stateNode {
	t.Helper()
	var members []ring.Node
	var parts []*peerParts
	var nodes []*stateNode
	for i, st := range states {
		name := fmt.Sprintf("n%d", i)
		po := ring.DefaultPeerOptions()
		po.Registerer = prometheus.NewRegistry()
		peers, err := ring.NewPeers(po)
		if err != nil {
			t.Fatal(err)
		}
		rp := &peerParts{self: name, peers: peers}
		slos := st.slos
		sloStatus := func(context.Context, time.Time) (any, error) {
			var out []map[string]any
			for _, s := range slos {
				out = append(out, map[string]any{"name": s, "objective": 99.9})
			}
			return map[string]any{"slos": out}, nil
		}
		a := New(Options{Rules: st.groups, Inspections: st.records, SLOStatus: sloStatus, Ring: staticRing{}, RingParts: rp})
		n := &stateNode{name: name}
		h := a.Handler()
		n.h.Store(&h)
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

// getEnvelope GETs u and returns the status code, data and warnings.
func getEnvelope(t *testing.T, u string) (int, json.RawMessage, []string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, env.Data, env.Warnings
}

func ownedGroup(file, name string, alerts ...string) RuleGroup {
	g := RuleGroup{Name: name, File: file, Interval: time.Minute, LastEvaluation: testNow,
		Rules: []Rule{{Name: name + ":sum", Query: "sum(x)", Health: "ok"}}}
	for _, al := range alerts {
		g.Rules = append(g.Rules, Rule{Alerting: true, Name: al, Query: "x > 0", State: "firing", Health: "ok",
			Alerts: []Alert{{Labels: labels.FromStrings("alertname", al), State: "firing", Value: 1, ActiveAt: testNow}}})
	}
	return g
}

// TestWholeRingRulesAndAlerts: any node lists every node's owned groups
// and alerts once, with their owner; a node that is down or answers
// garbage costs only its part, with a warning naming it.
func TestWholeRingRulesAndAlerts(t *testing.T) {
	nodes := newStateRing(t,
		nodeState{groups: fakeRules{ownedGroup("a.yml", "etcd", "NoLeader")}},
		nodeState{groups: fakeRules{ownedGroup("a.yml", "apiserver"), ownedGroup("b.yml", "slo", "BudgetBurn")}},
		nodeState{},
	)
	for _, n := range nodes {
		var rules struct {
			Groups []struct {
				File  string `json:"file"`
				Name  string `json:"name"`
				Owner string `json:"owner"`
			} `json:"groups"`
		}
		code, data, warnings := getEnvelope(t, n.srv.URL+"/api/v1/rules")
		if err := json.Unmarshal(data, &rules); err != nil || code != 200 || len(warnings) != 0 {
			t.Fatalf("rules through %s: %d %v %v", n.name, code, err, warnings)
		}
		got := fmt.Sprint(rules.Groups)
		if want := "[{a.yml apiserver n1} {a.yml etcd n0} {b.yml slo n1}]"; got != want {
			t.Fatalf("rules through %s: %s, want %s", n.name, got, want)
		}
		var alerts struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				Owner  string            `json:"owner"`
			} `json:"alerts"`
		}
		_, data, _ = getEnvelope(t, n.srv.URL+"/api/v1/alerts")
		if err := json.Unmarshal(data, &alerts); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(alerts.Alerts); got != "[{map[alertname:NoLeader] n0} {map[alertname:BudgetBurn] n1}]" {
			t.Fatalf("alerts through %s: %s", n.name, got)
		}
	}
	// The internal part holds the node's own groups only.
	_, data, _ := getEnvelope(t, nodes[0].srv.URL+ring.RulesPartPath)
	var part []RuleGroup
	if err := json.Unmarshal(data, &part); err != nil || len(part) != 1 || part[0].Name != "etcd" {
		t.Fatalf("rules part of n0: %s (%v)", data, err)
	}
	nodes[1].srv.Close()
	code, data, warnings := getEnvelope(t, nodes[2].srv.URL+"/api/v1/alerts")
	if code != 200 || len(warnings) != 1 || !strings.Contains(warnings[0], "node n1") {
		t.Fatalf("alerts with n1 down: %d %v", code, warnings)
	}
	if !strings.Contains(string(data), "NoLeader") || strings.Contains(string(data), "BudgetBurn") {
		t.Fatalf("alerts with n1 down: %s", data)
	}
}

// TestWholeRingPartGarbage: a peer answering a malformed part is a
// warning, not a failed or corrupted answer.
func TestWholeRingPartGarbage(t *testing.T) {
	nodes := newStateRing(t, nodeState{groups: fakeRules{ownedGroup("a.yml", "etcd")}}, nodeState{})
	for _, body := range []string{`{"status":"success","data":"nope"}`, `{"status":"succ`, `{"status":"success","data":[{"Rules":7}]}`} {
		var garbage http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
		nodes[1].h.Store(&garbage) // n1 now answers garbage
		code, data, warnings := getEnvelope(t, nodes[0].srv.URL+"/api/v1/rules")
		if code != 200 || len(warnings) != 1 || !strings.Contains(warnings[0], "node n1") || !strings.Contains(string(data), `"etcd"`) {
			t.Fatalf("peer answering %q: %d %s %v", body, code, data, warnings)
		}
	}
}

// TestWholeRingInspectionsAndSLOs: records of every node merged newest
// first up to the limit, each with the node that ran it; SLOs of every
// node with their owner; bad filters refused on the internal endpoint.
func TestWholeRingInspectionsAndSLOs(t *testing.T) {
	rec := func(cluster string, end time.Duration) InspectionRecord {
		return InspectionRecord{Cluster: cluster, Inspection: "health", Status: "success", Start: testNow.Add(end - time.Second), End: testNow.Add(end)}
	}
	nodes := newStateRing(t,
		nodeState{records: fakeRecords{rec("c1", 1), rec("c1", 3)}, slos: []string{"write-latency"}},
		nodeState{records: fakeRecords{rec("c2", 2), rec("c2", 4)}, slos: []string{"availability"}},
	)
	var recs []InspectionRecord
	code, data, warnings := getEnvelope(t, nodes[0].srv.URL+"/api/v1/inspections?limit=3")
	if err := json.Unmarshal(data, &recs); err != nil || code != 200 || len(warnings) != 0 {
		t.Fatalf("inspections: %d %v %v", code, err, warnings)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Cluster+"@"+r.Owner)
	}
	if fmt.Sprint(got) != "[c2@n1 c1@n0 c2@n1]" {
		t.Fatalf("inspections newest first: %v", got)
	}
	code, data, _ = getEnvelope(t, nodes[1].srv.URL+"/api/v1/inspections?cluster=c1")
	if err := json.Unmarshal(data, &recs); err != nil || code != 200 || len(recs) != 2 || recs[0].Owner != "n0" {
		t.Fatalf("inspections of c1 through n1: %d %s", code, data)
	}
	if code, _, _ := getEnvelope(t, nodes[1].srv.URL+ring.InspectionsPartPath+"?status=bogus"); code != http.StatusBadRequest {
		t.Fatalf("internal inspections with a bad status: %d, want 400", code)
	}
	if code, _, _ := getEnvelope(t, nodes[1].srv.URL+ring.SLOPartPath+"?time=yesterday"); code != http.StatusBadRequest {
		t.Fatalf("internal SLO part with a bad time: %d, want 400", code)
	}
	var slos struct {
		SLOs []struct{ Name, Owner string } `json:"slos"`
	}
	_, data, warnings = getEnvelope(t, nodes[0].srv.URL+"/api/v1/slo")
	if err := json.Unmarshal(data, &slos); err != nil || len(warnings) != 0 {
		t.Fatalf("slo: %v %v", err, warnings)
	}
	if got := fmt.Sprint(slos.SLOs); got != "[{availability n1} {write-latency n0}]" {
		t.Fatalf("slo: %s", got)
	}
}
