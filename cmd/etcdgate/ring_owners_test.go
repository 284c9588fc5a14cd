package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/evaluator/notifier/amtest"
)

const ringOwnerRules = `groups:
  - name: ring
    rules:
      - record: ring:always:one
        expr: vector(1)
      - alert: RingAlwaysFiring
        expr: vector(1)
        for: 2s
        labels: {cluster: ring}
`

// sumMetric sums every sample of the metric name on a node's /metrics.
func sumMetric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := httpGet(base + "/metrics")
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// ringAlert is an alert of /api/v1/alerts with its owner.
type ringAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
	Owner    string            `json:"owner"`
}

func ringAlerts(t *testing.T, base string) ([]ringAlert, []string) {
	t.Helper()
	_, body := httpGet(base + "/api/v1/alerts")
	var r struct {
		Data     struct{ Alerts []ringAlert } `json:"data"`
		Warnings []string                     `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("alerts of %s: %v: %s", base, err, body)
	}
	return r.Data.Alerts, r.Warnings
}

// inspectionOwners returns, per cluster, the nodes whose records of it
// /api/v1/inspections lists through base, of runs that ended after since.
func inspectionOwners(t *testing.T, base string, since time.Time) map[string]map[string]int {
	t.Helper()
	_, body := httpGet(base + "/api/v1/inspections?limit=10000")
	var r struct {
		Data []struct {
			Cluster string    `json:"cluster"`
			End     time.Time `json:"end"`
			Owner   string    `json:"owner"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("inspections of %s: %v", base, err)
	}
	out := map[string]map[string]int{}
	for _, rec := range r.Data {
		if rec.End.Before(since) {
			continue
		}
		if out[rec.Cluster] == nil {
			out[rec.Cluster] = map[string]int{}
		}
		out[rec.Cluster][rec.Owner]++
	}
	return out
}

// TestRingRuleAndProbeOwners runs four real nodes (RF=3) loading one rule
// file, probing 24 etcd "clusters", with a real Alertmanager: the
// group is evaluated by exactly one node, its alert reaches the
// Alertmanager, and every node's /api/v1/alerts and /api/v1/rules name
// that owner; each cluster is inspected by one node. Then the owner is
// killed: another node takes the group within the lease TTL and an
// interval, the alert stays firing with its ActiveAt and is never
// resolved, and the dead node's clusters are inspected by the others.
func TestRingRuleAndProbeOwners(t *testing.T) {
	hook, hookURL := amtest.NewWebhook(t)
	am, _ := url.Parse(amtest.Start(t, hookURL))
	h := newRingHarness(t, "")
	ruleFile := filepath.Join(t.TempDir(), "ring.yml")
	if err := os.WriteFile(ruleFile, []byte(ringOwnerRules), 0o644); err != nil {
		t.Fatal(err)
	}
	// 24 clusters: the node killed below owns none of them with a
	// probability of (3/4)^24, 0.1%.
	const clusters = 24
	var targets strings.Builder
	for i := range clusters {
		fmt.Fprintf(&targets, "    - cluster: c%d\n      endpoints: [%s]\n      inspections: [health]\n", i, strings.Join(h.etcd.Endpoints(), ", "))
	}
	// A firing alert is valid at the Alertmanager for 4 resend delays:
	// 20 s, longer than the lease TTL (5 s) plus an interval that a
	// takeover takes, as it is with the defaults (4 minutes).
	h.top = fmt.Sprintf(`rule_files: [%s]
evaluation_interval: 1s
alerting:
  resend_delay: 5s
  external_labels: {region: r1}
  alertmanagers: [{static_configs: [{targets: [%q]}]}]
probe:
  targets:
%s  inspections:
    health: {interval: 500ms, timeout: 5s}
`, ruleFile, am.Host, targets.String())
	names := []string{"n0", "n1", "n2", "n3"}
	for _, n := range names {
		h.start(n, 3)
	}
	for _, n := range names {
		waitActive(t, h.nodes[n].url, 30*time.Second, names...)
	}
	hook.WaitFor(t, "firing RingAlwaysFiring ring r1")

	// Exactly one node evaluates the group.
	owner := func(among []string) (string, []string) {
		var owners, counts []string
		for _, n := range among {
			it := sumMetric(t, h.nodes[n].url, "etcdgate_ring_owned_rule_groups")
			counts = append(counts, fmt.Sprintf("%s=%v", n, it))
			if it == 1 {
				owners = append(owners, n)
			}
		}
		if len(owners) != 1 {
			return "", counts
		}
		return owners[0], counts
	}
	first, counts := owner(names)
	if first == "" {
		t.Fatalf("owned rule groups per node: %v, want one owner", counts)
	}
	// While the nodes became ACTIVE one by one the group may have had
	// other owners for a round; from now on only its owner evaluates it.
	iterations := map[string]float64{}
	for _, n := range names {
		iterations[n] = sumMetric(t, h.nodes[n].url, "etcdgate_rule_group_iterations_total")
	}
	time.Sleep(3 * time.Second) // a few more rounds
	for _, n := range names {
		it := sumMetric(t, h.nodes[n].url, "etcdgate_rule_group_iterations_total") - iterations[n]
		if (n == first) != (it > 0) {
			t.Fatalf("node %s (owner %s) counted %v rule group iterations in 3s", n, first, it)
		}
	}
	var firing ringAlert
	for _, n := range names {
		alerts, warnings := ringAlerts(t, h.nodes[n].url)
		if len(alerts) != 1 || alerts[0].State != "firing" || alerts[0].Owner != first || len(warnings) != 0 {
			t.Fatalf("alerts through %s: %+v %v, want one firing alert owned by %s", n, alerts, warnings, first)
		}
		firing = alerts[0]
		_, body := httpGet(h.nodes[n].url + "/api/v1/rules")
		if strings.Count(body, `"name":"ring"`) != 1 || !strings.Contains(body, `"owner":"`+first+`"`) {
			t.Fatalf("rules through %s: %s", n, body)
		}
	}

	// Each cluster is inspected by one node, the same whichever node is asked.
	start := time.Now()
	var perCluster map[string]map[string]int
	waitFor(t, 30*time.Second, "records of every cluster", func() bool {
		perCluster = inspectionOwners(t, h.nodes["n0"].url, start)
		return len(perCluster) == clusters
	})
	clusterOwner := map[string]string{}
	for c, owners := range perCluster {
		if len(owners) != 1 {
			t.Fatalf("cluster %s inspected by %v, want one node", c, owners)
		}
		for o := range owners {
			clusterOwner[c] = o
		}
	}
	t.Logf("rule group owner %s; cluster owners %v", first, clusterOwner)
	ownedTargets := func(among []string) (total float64, per []string) {
		for _, n := range among {
			v := sumMetric(t, h.nodes[n].url, "etcdgate_ring_owned_probe_targets")
			total += v
			per = append(per, fmt.Sprintf("%s=%v", n, v))
		}
		return total, per
	}
	if total, per := ownedTargets(names); total != clusters {
		t.Fatalf("etcdgate_ring_owned_probe_targets per node %v, want %d in all", per, clusters)
	}
	if slices.Index(slices.Collect(maps.Values(clusterOwner)), first) < 0 {
		t.Fatalf("the rule group's owner %s owns no cluster (a 0.1%% chance): %v", first, clusterOwner)
	}

	// Kill the owner: another node takes the group.
	killedAt := time.Now()
	h.nodes[first].kill()
	var rest []string
	for _, n := range names {
		if n != first {
			rest = append(rest, n)
		}
	}
	var second string
	waitFor(t, 30*time.Second, "a new owner of the rule group", func() bool {
		second, _ = owner(rest)
		return second != ""
	})
	t.Logf("%s took the group %.1fs after %s was killed (lease TTL 5s, interval 1s)", second, time.Since(killedAt).Seconds(), first)
	var after []ringAlert
	waitFor(t, 10*time.Second, "the alert listed by the new owner", func() bool {
		after, _ = ringAlerts(t, h.nodes[second].url)
		return len(after) == 1 && after[0].Owner == second
	})
	// The new owner restored the clock from the ALERTS_FOR_STATE its
	// predecessor wrote, read through the whole ring: still firing, since
	// the same moment, with no new 'for' wait.
	if after[0].State != "firing" || after[0].ActiveAt.Unix() != firing.ActiveAt.Unix() {
		t.Fatalf("alert on the new owner %+v, want firing since %v", after[0], firing.ActiveAt)
	}
	time.Sleep(3 * time.Second) // rounds of the new owner, resends
	for _, l := range hook.Lines() {
		if strings.HasPrefix(l, "resolved RingAlwaysFiring") {
			t.Fatalf("the Alertmanager got a resolution: %v", hook.Lines())
		}
	}

	// The dead node's clusters are inspected by the others now.
	start = time.Now()
	waitFor(t, 30*time.Second, "records of every cluster from live nodes", func() bool {
		perCluster = inspectionOwners(t, h.nodes[second].url, start)
		if len(perCluster) != clusters {
			return false
		}
		for _, owners := range perCluster {
			if len(owners) != 1 || owners[first] > 0 {
				return false
			}
		}
		return true
	})
	t.Logf("cluster owners after the kill: %v", perCluster)
	if total, per := ownedTargets(rest); total != clusters {
		t.Fatalf("etcdgate_ring_owned_probe_targets per live node %v, want %d in all", per, clusters)
	}
}
