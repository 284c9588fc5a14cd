package tsdb

import (
	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/internal/etcdfleet"
)

// etcdLabelSets returns the label sets of one etcd member's series
// (internal/etcdfleet): about 40 metric names, classic histograms with le
// buckets, peer and gRPC series per method and code, about 340 series of
// about 11 labels. member makes them distinct across members (3 per
// cluster).
func etcdLabelSets(member int) []labels.Labels {
	return etcdfleet.New(etcdfleet.Options{}).LabelSets(member)
}
