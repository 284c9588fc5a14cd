package ingest

import (
	"fmt"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/etcdgate/etcdgate/internal/etcdfleet"
)

// etcdWriteRequests returns one scrape of clusters×membersPerCluster etcd
// 3.5 members (internal/etcdfleet) as Prometheus would remote-write it:
// about 40 metric names, roughly 340 series per member in a 3-member
// cluster, one sample per series at ts, batched into requests of at most
// samplesPerRequest samples. Values are pseudo-random but the same on
// every call.
func etcdWriteRequests(clusters, membersPerCluster int, samplesPerRequest int, ts int64) []*prompb.WriteRequest {
	f := etcdfleet.New(etcdfleet.Options{Clusters: clusters, Members: membersPerCluster, Regions: etcdRegions})
	samples := f.Scrape(ts)
	series := make([]prompb.TimeSeries, len(samples))
	for i, s := range samples {
		lbls := make([]prompb.Label, 0, s.Labels.Len())
		s.Labels.Range(func(l labels.Label) { lbls = append(lbls, prompb.Label{Name: l.Name, Value: l.Value}) })
		series[i] = prompb.TimeSeries{Labels: lbls, Samples: []prompb.Sample{{Value: s.V, Timestamp: s.T}}}
	}
	var reqs []*prompb.WriteRequest
	for len(series) > 0 {
		n := min(samplesPerRequest, len(series))
		reqs = append(reqs, &prompb.WriteRequest{Timeseries: series[:n:n]})
		series = series[n:]
	}
	return reqs
}

// marshalSnappy returns wr as a remote-write body: snappy block of the
// protobuf encoding.
func marshalSnappy(wr *prompb.WriteRequest) []byte {
	data, err := wr.Marshal()
	if err != nil {
		panic(fmt.Sprintf("BUG: marshal prompb.WriteRequest: %v", err))
	}
	return snappy.Encode(nil, data)
}

// etcdRegions are the regions of the fleet's clusters, in turn: cluster
// c is etcd-<etcdRegions[c%3]>-<c>.
var etcdRegions = []string{"eu-west-1", "us-east-1", "ap-south-1"}
