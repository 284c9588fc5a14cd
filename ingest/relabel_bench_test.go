package ingest

import (
	"fmt"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/relabel"
	"github.com/etcdgate/etcdgate/tsdb"
)

// benchPipeline is a typical production setup: a global rule, an etcd
// source with two rules, a size rule and every cluster registered.
func benchPipeline(b *testing.B, clusters int) *relabel.Pipeline {
	opts := relabel.DefaultOptions()
	cfg := `
relabel_configs:
  - {source_labels: [namespace], target_label: namespace, action: lowercase}
sources:
  - name: etcd
    match: {job: etcd}
    relabel_configs:
      - {source_labels: [pod], regex: '(.*)-\d+', target_label: etcd_cluster, replacement: '$1'}
      - {regex: team, action: labeldrop}
`
	var c struct {
		RelabelConfigs []*relabel.RuleConfig `yaml:"relabel_configs"`
		Sources        []relabel.Source      `yaml:"sources"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &c); err != nil {
		b.Fatal(err)
	}
	opts.Config.RelabelConfigs, opts.Config.Sources = c.RelabelConfigs, c.Sources
	opts.Config.SizeRules = []relabel.SizeRule{{Metric: "etcd_mvcc_db_total_size_in_bytes", SmallBelow: 1 << 20, LargeFrom: 1 << 30}}
	p, err := relabel.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	for c := range clusters {
		p.Registry().PutEtcd(&relabel.Record{Cluster: fmt.Sprintf("etcd-%s-%d", etcdRegions[c%len(etcdRegions)], c),
			Product: "payments", Scenario: "business", Region: etcdRegions[c%len(etcdRegions)], Size: relabel.SizeLarge})
	}
	return p
}

// BenchmarkWriteRelabel measures the whole write path for a settled fleet
// (every series known, 2,000 samples a request) with relabeling off, on
// without any change to the series (the cost of the cache lookup alone),
// and on with rules and enrichment (the stored series then carry four
// more labels, which the head pays for too).
func BenchmarkWriteRelabel(b *testing.B) {
	const clusters = 10
	for _, mode := range []string{"off", "lookup", "on"} {
		b.Run("relabel="+mode, func(b *testing.B) {
			head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
			if err != nil {
				b.Fatal(err)
			}
			opts := Options{Limits: DefaultLimits(), Now: func() time.Time { return testNow }}
			switch mode {
			case "lookup":
				ro := relabel.DefaultOptions()
				ro.Config.ClusterLabel = "no_such_label"
				p, err := relabel.New(ro)
				if err != nil {
					b.Fatal(err)
				}
				opts.Relabeler = p
			case "on":
				opts.Relabeler = benchPipeline(b, clusters)
			}
			in, err := New(head, opts)
			if err != nil {
				b.Fatal(err)
			}
			benchSteadyWrites(b, in, clusters)
		})
	}
}
