package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkRingReads is part 2 of the ring on real processes: every node
// answers for the whole ring. ring_writes through each node (a fan-out
// query) equals the union of what the nodes' own stores hold (one store
// holding all the data), and /api/v1/series lists each series once;
// with one node killed the answers are the same and carry no warning;
// with two killed they carry a partial-response warning naming them, or
// fail with 503 under partial_response=false. It kills n3 and n2.
func checkRingReads(t *testing.T, h *ringHarness, now time.Time) {
	t.Helper()
	union := map[string]map[int64]bool{}
	for _, n := range []string{"n0", "n1", "n2", "n3"} {
		for key, tss := range rawSamples(t, h.nodes[n].url, "ring_writes", now) {
			if union[key] == nil {
				union[key] = map[int64]bool{}
			}
			for _, ts := range tss {
				union[key][ts] = true
			}
		}
	}
	want := map[string][]int64{}
	for key, set := range union {
		for ts := range set {
			want[key] = append(want[key], ts)
		}
		slices.Sort(want[key])
	}
	check := func(label string, live []string, down int) {
		t.Helper()
		for _, n := range live {
			got, warnings := queriedSamples(t, h.nodes[n].url, "ring_writes", now, "")
			if partial := hasPartialWarning(warnings, "n2, n3"); partial != (down >= 2) {
				t.Fatalf("%s: query through %s: warnings %q", label, n, warnings)
			}
			if down < 2 {
				if len(got) != len(want) {
					t.Fatalf("%s: query through %s: %d series, want %d", label, n, len(got), len(want))
				}
				for key, w := range want {
					if !slices.Equal(got[key], w) {
						t.Fatalf("%s: query through %s: series %s has %d samples, the ring holds %d", label, n, key, len(got[key]), len(w))
					}
				}
			}
			q := url.Values{"match[]": {"ring_writes"}, "start": {strconv.FormatInt(now.Add(-30*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix()+60, 10)}}
			code, body := httpGet(h.nodes[n].url + "/api/v1/series?" + q.Encode())
			var r struct {
				Data     []map[string]string `json:"data"`
				Warnings []string            `json:"warnings"`
			}
			if code != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil {
				t.Fatalf("%s: series through %s: %d %s", label, n, code, body)
			}
			seen := map[string]bool{}
			for _, s := range r.Data {
				key := s["w"] + "/" + s["s"]
				if seen[key] {
					t.Fatalf("%s: series through %s lists %s twice", label, n, key)
				}
				seen[key] = true
			}
			if down < 2 && len(seen) != len(want) {
				t.Fatalf("%s: series through %s: %d, want %d", label, n, len(seen), len(want))
			}
			if hasPartialWarning(r.Warnings, "n2, n3") != (down >= 2) {
				t.Fatalf("%s: series through %s: warnings %q", label, n, r.Warnings)
			}
		}
	}
	if len(want) != 2*ringWriterSeries {
		t.Fatalf("the ring holds %d ring_writes series, want %d", len(want), 2*ringWriterSeries)
	}
	check("all up", []string{"n0", "n1", "n2", "n3"}, 0)
	h.killInRing(h.nodes["n3"])
	check("n3 killed", []string{"n0", "n1", "n2"}, 1)
	h.killInRing(h.nodes["n2"])
	check("n2 and n3 killed", []string{"n0", "n1"}, 2)
	q := url.Values{"query": {"count(ring_writes)"}, "partial_response": {"false"}}
	code, body := httpGet(h.nodes["n0"].url + "/api/v1/query?" + q.Encode())
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "n2, n3") {
		t.Fatalf("partial_response=false with two nodes killed: %d %s", code, body)
	}
	t.Logf("fan-out reads: %d series through every node equal the ring's union; one node killed: same, no warning; two: partial-response warning, 503 when refused", len(want))
}

func hasPartialWarning(ws []string, nodes string) bool {
	for _, w := range ws {
		if strings.Contains(w, "partial response") && strings.Contains(w, nodes) {
			return true
		}
	}
	return false
}

// queriedSamples returns what a query of name[30m] through the node at
// base answers (the whole ring's samples), keyed by the series' w and s
// labels, and the answer's warnings.
func queriedSamples(t *testing.T, base, name string, at time.Time, extra string) (map[string][]int64, []string) {
	t.Helper()
	q := url.Values{"query": {name + "[30m]"}, "time": {strconv.FormatInt(at.Unix()+60, 10)}}
	code, body := httpGet(base + "/api/v1/query?" + q.Encode() + extra)
	if code != http.StatusOK {
		t.Fatalf("query %s on %s: %d %s", name, base, code, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	out := map[string][]int64{}
	for _, s := range r.Data.Result {
		key := s.Metric["w"] + "/" + s.Metric["s"]
		for _, v := range s.Values {
			out[key] = append(out[key], int64(v[0].(float64)*1000+0.5))
		}
	}
	return out, r.Warnings
}
