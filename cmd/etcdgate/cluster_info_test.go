package main

import (
	"encoding/json"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/value"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/relabel"
)

func TestClusterInfoSeries(t *testing.T) {
	recs := map[string]*relabel.Record{
		"etcd-b": {Cluster: "etcd-b", Product: "platform"},
		"etcd-a": {Cluster: "etcd-a", Product: "payments", Scenario: "business", Size: "large", Region: "eu-west",
			KubernetesClusters: []string{"k8s-1", "k8s-2"}},
	}
	keys, lsets := clusterInfoSeries(recs, "etcd_cluster")
	var got []string
	for _, ls := range lsets {
		var b strings.Builder
		for _, l := range ls {
			b.WriteString(l.Name + "=" + l.Value + " ")
		}
		got = append(got, strings.TrimSpace(b.String()))
	}
	want := []string{
		"__name__=etcdgate_cluster_info etcd_cluster=etcd-a kubernetes_cluster=k8s-1 product=payments scenario=business size=large region=eu-west",
		"__name__=etcdgate_cluster_info etcd_cluster=etcd-a kubernetes_cluster=k8s-2 product=payments scenario=business size=large region=eu-west",
		"__name__=etcdgate_cluster_info etcd_cluster=etcd-b product=platform",
	}
	if !slices.Equal(got, want) || len(keys) != 3 || keys[0] == keys[1] {
		t.Fatalf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestClusterInfoWriterTicks: each tick writes every pair; a pair that
// left the registry gets one stale marker; a node that does not own the
// key writes nothing.
func TestClusterInfoWriterTicks(t *testing.T) {
	reg := relabel.NewRegistry()
	reg.SetFile(map[string]*relabel.Record{"a": {Cluster: "a", KubernetesClusters: []string{"k1", "k2"}}})
	var pushed [][]ingest.TimeSeries
	owner := true
	w := &clusterInfoWriter{registry: reg, clusterLabel: "cluster", owns: func() bool { return owner },
		push: func(s []ingest.TimeSeries) (ingest.Result, error) {
			pushed = append(pushed, slices.Clone(s))
			return ingest.Result{}, nil
		},
		logError: func(msg string, err error) { t.Errorf("%s: %v", msg, err) }}
	w.tick(time.UnixMilli(1000))
	reg.SetFile(map[string]*relabel.Record{"a": {Cluster: "a", KubernetesClusters: []string{"k1"}}})
	w.tick(time.UnixMilli(2000))
	w.tick(time.UnixMilli(3000))
	owner = false
	w.tick(time.UnixMilli(4000))
	if len(pushed) != 3 || len(pushed[0]) != 2 || len(pushed[1]) != 2 || len(pushed[2]) != 1 {
		t.Fatalf("pushes of %v series, want [2 2 1]", func() (n []int) {
			for _, p := range pushed {
				n = append(n, len(p))
			}
			return
		}())
	}
	stale := pushed[1][1]
	if stale.Labels[2].Value != "k2" || !value.IsStaleNaN(stale.Samples[0].Value) || stale.Samples[0].Timestamp != 2000 {
		t.Fatalf("second tick's last series %+v, want k2's stale marker", stale)
	}
	if v := pushed[2][0].Samples[0].Value; v != 1 || math.IsNaN(v) {
		t.Fatalf("third tick: %v", pushed[2])
	}
}

// TestClusterInfoProcess: a real node writes etcdgate_cluster_info from
// its registry file, with the standard labels, and drops a pair once the
// registry no longer lists it.
func TestClusterInfoProcess(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("clusters.yml", "clusters:\n  - {cluster: etcd-a, product: payments, scenario: business, size: large, region: eu-west, kubernetes_clusters: [k8s-1, k8s-2]}\n")
	write("etcdgate.yml", "registry: {file: clusters.yml}\nevaluation_interval: 1s\n")
	_, base := startGateway(t, "--config", filepath.Join(dir, "etcdgate.yml"))
	pairs := func() []string {
		_, body := httpGet(base + "/api/v1/query?" + url.Values{"query": {clusterInfoMetric}}.Encode())
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		var out []string
		for _, s := range r.Data.Result {
			m := s.Metric
			out = append(out, m["cluster"]+"/"+m["kubernetes_cluster"]+"/"+m["product"]+"/"+m["scenario"]+"/"+m["size"]+"/"+m["region"])
		}
		slices.Sort(out)
		return out
	}
	want := []string{"etcd-a/k8s-1/payments/business/large/eu-west", "etcd-a/k8s-2/payments/business/large/eu-west"}
	waitFor(t, 20*time.Second, "the info series of both pairs", func() bool { return slices.Equal(pairs(), want) })
	write("clusters.yml", "clusters:\n  - {cluster: etcd-a, product: payments, scenario: business, size: large, region: eu-west, kubernetes_clusters: [k8s-2]}\n")
	waitFor(t, 30*time.Second, "k8s-1's pair gone", func() bool { return slices.Equal(pairs(), want[1:]) })
}
