package etcdfleet

import (
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

func TestFleet(t *testing.T) {
	f := New(Options{Clusters: 2, Seed: 7, ClusterLabels: func(c int) []string {
		return []string{"product", "pay", "scenario", []string{"business", "platform"}[c]}
	}})
	s1, s2 := f.Scrape(1_700_000_000_000), f.Scrape(1_700_000_015_000)
	if f.NumMembers() != 6 || len(s1) != len(s2) || len(s1) != 6*len(f.Member(0, 0)) {
		t.Fatalf("%d members, %d and %d samples", f.NumMembers(), len(s1), len(s2))
	}
	if n := len(f.Member(0, 0)); n < 300 || n > 400 {
		t.Fatalf("%d series per member of a 3-member cluster, want about 340", n)
	}
	seen := map[string]bool{}
	for i := range s1 {
		ls := s1[i].Labels
		if !labels.Equal(ls, s2[i].Labels) {
			t.Fatalf("scrapes differ in series %d: %s, %s", i, ls, s2[i].Labels)
		}
		if seen[ls.String()] {
			t.Fatalf("duplicate series %s", ls)
		}
		seen[ls.String()] = true
		if !ls.IsValid(model.LegacyValidation) || ls.Get("product") != "pay" || ls.Get("scenario") == "" || ls.Get("team") == "" {
			t.Fatalf("series %s", ls)
		}
		name := ls.Get(model.MetricNameLabel)
		if (strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_count")) && s2[i].V < s1[i].V {
			t.Fatalf("counter %s went from %v to %v", ls, s1[i].V, s2[i].V)
		}
	}
	again := New(Options{Clusters: 2, Seed: 7}).Member(4, 1_700_000_000_000)
	other := New(Options{Clusters: 2, Seed: 8}).Member(4, 1_700_000_000_000)
	same, differ := true, false
	for i := range again {
		same = same && again[i].V == s1[4*len(again)+i].V
		differ = differ || again[i].V != other[i].V
	}
	if !same || !differ {
		t.Fatalf("values: same seed same values %v, other seed other values %v", same, differ)
	}
	if got := f.Member(4, 0)[0].Labels.Get("cluster"); got != "etcd-us-east-1-1" || f.ClusterName(1) != got {
		t.Fatalf("member 4 is in cluster %q", got)
	}
}

// TestHistogramsCumulative: bucket counts never decrease with le.
func TestHistogramsCumulative(t *testing.T) {
	var last float64
	for _, s := range New(Options{}).Member(0, 1_700_000_000_000) {
		if s.Labels.Get(model.MetricNameLabel) != "etcd_disk_wal_fsync_duration_seconds_bucket" {
			continue
		}
		if s.V < last {
			t.Fatalf("bucket %s: %v after %v", s.Labels.Get("le"), s.V, last)
		}
		last = s.V
	}
	if last == 0 {
		t.Fatal("no wal fsync buckets")
	}
}

// TestExtensive: every gRPC method gets a handling-time histogram.
func TestExtensive(t *testing.T) {
	plain, ext := New(Options{}).Member(0, 0), New(Options{Extensive: true}).Member(0, 0)
	var range99 int
	for _, s := range ext[len(plain):] {
		if s.Labels.Get(model.MetricNameLabel) == "grpc_server_handling_seconds_bucket" && s.Labels.Get("grpc_method") == "Range" {
			range99++
		}
	}
	if len(ext)-len(plain) != 11*14 || range99 != 12 {
		t.Fatalf("%d extensive series, %d Range buckets", len(ext)-len(plain), range99)
	}
}
