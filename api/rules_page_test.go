package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// rulesPage is /api/v1/rules' data.
type rulesPage struct {
	Groups []struct {
		File  string `json:"file"`
		Name  string `json:"name"`
		Rules []struct {
			Name string `json:"name"`
		} `json:"rules"`
	} `json:"groups"`
	GroupNextToken string `json:"groupNextToken"`
}

func (p rulesPage) names() []string {
	var out []string
	for _, g := range p.Groups {
		out = append(out, g.File+"/"+g.Name)
	}
	return out
}

// pageAll follows groupNextToken from the first page to the last and
// returns every group it saw, in order, and the number of pages.
func pageAll(t *testing.T, base string, params url.Values) ([]string, int) {
	t.Helper()
	var all []string
	pages := 0
	for token := ""; ; {
		p := url.Values{}
		for k, v := range params {
			p[k] = v
		}
		if token != "" {
			p.Set("group_next_token", token)
		}
		code, data, _ := getEnvelope(t, base+"/api/v1/rules?"+p.Encode())
		var page rulesPage
		if code != http.StatusOK || json.Unmarshal(data, &page) != nil {
			t.Fatalf("%v: %d %s", p, code, data)
		}
		pages++
		all = append(all, page.names()...)
		if page.GroupNextToken == "" {
			return all, pages
		}
		if pages > 10 {
			t.Fatalf("more than 10 pages: %v", all)
		}
		token = page.GroupNextToken
	}
}

func labeledGroup(file, name string, severities ...string) RuleGroup {
	g := ownedGroup(file, name)
	for _, s := range severities {
		g.Rules = append(g.Rules, Rule{Alerting: true, Name: name + "_" + s, Query: "x > 0", State: "inactive", Health: "ok",
			Labels: map[string]string{"severity": s}})
	}
	return g
}

// TestRulesPagingAndMatch: group_limit pages the groups, a page's token
// leads to the next, match[] selects rules by their labels and drops the
// groups left empty, and every malformed parameter is bad_data.
func TestRulesPagingAndMatch(t *testing.T) {
	groups := fakeRules{
		labeledGroup("a.yml", "g1", "page"), labeledGroup("a.yml", "g2", "ticket"),
		labeledGroup("b.yml", "g3", "page", "ticket"), labeledGroup("b.yml", "g4"), labeledGroup("c.yml", "g5", "page"),
	}
	srv := httptest.NewServer(New(Options{Rules: groups}).Handler())
	t.Cleanup(srv.Close)
	all := []string{"a.yml/g1", "a.yml/g2", "b.yml/g3", "b.yml/g4", "c.yml/g5"}
	for _, tc := range []struct {
		params url.Values
		want   []string
		pages  int
	}{
		{url.Values{}, all, 1},
		{url.Values{"group_limit": {"2"}}, all, 3},
		{url.Values{"group_limit": {"5"}}, all, 1},
		{url.Values{"group_limit": {"1"}, "file[]": {"b.yml"}}, []string{"b.yml/g3", "b.yml/g4"}, 2},
		{url.Values{"match[]": {`{severity="page"}`}}, []string{"a.yml/g1", "b.yml/g3", "c.yml/g5"}, 1},
		{url.Values{"match[]": {`{severity="page"}`, `{severity="ticket"}`}, "group_limit": {"2"}}, []string{"a.yml/g1", "a.yml/g2", "b.yml/g3", "c.yml/g5"}, 2},
		{url.Values{"match[]": {`{severity=~"t.*"}`}, "type": {"alert"}}, []string{"a.yml/g2", "b.yml/g3"}, 1},
	} {
		got, pages := pageAll(t, srv.URL, tc.params)
		if !reflect.DeepEqual(got, tc.want) || pages != tc.pages {
			t.Errorf("%v: %v in %d pages, want %v in %d", tc.params, got, pages, tc.want, tc.pages)
		}
	}
	// match[] keeps only the matching rules of a group.
	var page rulesPage
	getJSON(t, srv.URL+"/api/v1/rules?"+url.Values{"match[]": {`{severity="ticket"}`}, "file[]": {"b.yml"}}.Encode(), &page)
	if len(page.Groups) != 1 || len(page.Groups[0].Rules) != 1 || page.Groups[0].Rules[0].Name != "g3_ticket" {
		t.Errorf("match[] in b.yml: %+v", page)
	}
	for _, bad := range []url.Values{
		{"group_limit": {"0"}}, {"group_limit": {"-1"}}, {"group_limit": {"x"}}, {"group_limit": {"99999999999"}},
		{"group_next_token": {groupToken(&groups[1])}},
		{"group_limit": {"2"}, "group_next_token": {"0123abc"}},
		{"match[]": {`{severity=""}`}}, {"match[]": {`sum(x)`}}, {"match[]": {`{severity=~"("}`}}, {"match[]": {`{`}},
		{"match[]": {strings.Repeat("(", 100000)}},
	} {
		resp, err := http.Get(srv.URL + "/api/v1/rules?" + bad.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var env response
		_ = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || env.ErrorType != errorBadData {
			t.Errorf("%v: %d %+v, want 400 bad_data", bad, resp.StatusCode, env)
		}
	}
}

// TestWholeRingRulesPaging: on a ring, pages run over every node's
// groups, whichever node answers.
func TestWholeRingRulesPaging(t *testing.T) {
	nodes := newStateRing(t,
		nodeState{groups: fakeRules{labeledGroup("a.yml", "g1", "page"), labeledGroup("c.yml", "g5", "page")}},
		nodeState{groups: fakeRules{labeledGroup("a.yml", "g2", "ticket"), labeledGroup("b.yml", "g4")}},
		nodeState{groups: fakeRules{labeledGroup("b.yml", "g3", "page", "ticket")}},
	)
	for _, n := range nodes {
		got, pages := pageAll(t, n.srv.URL, url.Values{"group_limit": {"2"}})
		if want := []string{"a.yml/g1", "a.yml/g2", "b.yml/g3", "b.yml/g4", "c.yml/g5"}; !reflect.DeepEqual(got, want) || pages != 3 {
			t.Errorf("node %s: %v in %d pages", n.name, got, pages)
		}
		got, _ = pageAll(t, n.srv.URL, url.Values{"group_limit": {"1"}, "match[]": {`{severity="page"}`}})
		if want := []string{"a.yml/g1", "b.yml/g3", "c.yml/g5"}; !reflect.DeepEqual(got, want) {
			t.Errorf("node %s, match[]: %v", n.name, got)
		}
	}
}
