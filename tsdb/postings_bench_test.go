package tsdb

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkPostingsForMatchers resolves the selectors of the etcd SLO
// and dashboard queries over 3,000 members (~1M series): one metric,
// a metric in one cluster (a long list sought into by a short one), one
// member of every metric, and a regexp over clusters. It reports the
// index's memory per series, the figure packing the lists is for.
func BenchmarkPostingsForMatchers(b *testing.B) {
	h := newTestHead(b, func(o *HeadOptions) { o.StripeSize = 1 << 14 })
	members := 3000
	for m := range members {
		for _, ls := range etcdLabelSets(m) {
			if _, _, err := h.getOrCreate(ls); err != nil {
				b.Fatal(err)
			}
		}
	}
	series := h.NumIndexedSeries()
	eq := func(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, n, v) }
	for _, c := range []struct {
		name string
		ms   []*labels.Matcher
	}{
		{"metric", []*labels.Matcher{eq("__name__", "etcd_server_has_leader")}},
		{"metric_in_cluster", []*labels.Matcher{eq("__name__", "grpc_server_handled_total"), eq("cluster", "etcd-us-east-1-7")}},
		{"member", []*labels.Matcher{eq("job", "etcd"), eq("instance", "10.0.7.10:2379")}},
		{"cluster_regexp", []*labels.Matcher{eq("__name__", "etcd_server_has_leader"), labels.MustNewMatcher(labels.MatchRegexp, "cluster", "etcd-us-east-1-1.*")}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n = len(h.index.forMatchers(c.ms))
			}
			if n == 0 {
				b.Fatal("no series matched")
			}
			b.ReportMetric(float64(n), "series")
			b.ReportMetric(float64(h.index.bytes())/float64(series), "postings-bytes/series")
		})
	}
}
