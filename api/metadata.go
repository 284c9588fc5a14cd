package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/etcdgate/etcdgate/tsdb"
)

// GET /api/v1/metadata serves the metric metadata senders sent (remote
// write 1.0's metadata, 2.0's per-series metadata), in Prometheus's shape:
//
//	{"status":"success","data":{"<metric>":[{"type":"counter","help":"…","unit":""}]}}
//
// Parameters as in Prometheus: limit (metric names; negative or absent:
// all; 0: none), limit_per_metric (entries a name; not positive: all),
// metric (one name). A value that is not an integer is bad_data. Names
// are taken in sorted order, entries most recently seen first.
//
// Metadata is kept by the node that received the write, so in a ring the
// answer is the union over the ACTIVE nodes: each is asked for its own
// at MetadataPartPath with the same parameters, and an entry two nodes
// hold is shown once.

// MetadataPartPath is the internal endpoint (role read) at which a node of
// a ring serves the metadata it holds itself.
const MetadataPartPath = "/internal/v1/metadata"

// MetadataSource is implemented by a store that keeps metric metadata
// (tsdb.DB): the names metric selects (all when ""), sorted, at most
// limit of them (all when negative) and limitPerMetric entries each (all
// when not positive). A store without it has no metadata.
type MetadataSource interface {
	Metadata(metric string, limit, limitPerMetric int) []tsdb.MetricMetadataList
}

// metadataQuery holds /api/v1/metadata's parameters.
type metadataQuery struct {
	metric                string
	limit, limitPerMetric int
}

func parseMetadataQuery(r *http.Request) (metadataQuery, error) {
	q := metadataQuery{metric: r.FormValue("metric"), limit: -1, limitPerMetric: -1}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"limit", &q.limit}, {"limit_per_metric", &q.limitPerMetric}} {
		s := r.FormValue(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, errors.New(p.name + " must be a number")
		}
		*p.dst = n
	}
	return q, nil
}

// values is the query string a peer is asked with.
func (q metadataQuery) values() url.Values {
	v := url.Values{"limit": {strconv.Itoa(q.limit)}, "limit_per_metric": {strconv.Itoa(q.limitPerMetric)}}
	if q.metric != "" {
		v.Set("metric", q.metric)
	}
	return v
}

// localMetadata returns this node's metadata q selects.
func (a *API) localMetadata(b *backend, q metadataQuery) []tsdb.MetricMetadataList {
	src, ok := b.storage.(MetadataSource)
	if !ok {
		return nil
	}
	return src.Metadata(q.metric, q.limit, q.limitPerMetric)
}

func (a *API) metadata(w http.ResponseWriter, r *http.Request) {
	q, err := parseMetadataQuery(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	b := a.readyBackend(w, true)
	if b == nil {
		return
	}
	lists := a.localMetadata(b, q)
	var warnings []string
	if a.opts.RingParts != nil && q.limit != 0 {
		lists, warnings = a.ringMetadata(r.Context(), q, lists)
	}
	respond(w, metadataJSON(lists), warnings)
}

// ringMetadata merges this node's metadata with the other ACTIVE nodes'.
func (a *API) ringMetadata(ctx context.Context, q metadataQuery, local []tsdb.MetricMetadataList) ([]tsdb.MetricMetadataList, []string) {
	parts, warnings := gatherParts(ctx, a.opts.RingParts, MetadataPartPath+"?"+q.values().Encode(), "metric metadata",
		func(_ string, data json.RawMessage) (map[string][]tsdb.Metadata, error) {
			var m map[string][]tsdb.Metadata
			err := json.Unmarshal(data, &m)
			return m, err
		})
	return mergeMetadata(local, parts, q), warnings
}

// mergeMetadata is the union of local and parts: names sorted, an entry
// held by several nodes once, this node's first; then limit and
// limitPerMetric apply to the union.
func mergeMetadata(local []tsdb.MetricMetadataList, parts []map[string][]tsdb.Metadata, q metadataQuery) []tsdb.MetricMetadataList {
	byName := make(map[string][]tsdb.Metadata, len(local))
	for _, l := range local {
		byName[l.Metric] = l.Entries
	}
	for _, p := range parts {
		for name, es := range p {
			if q.metric != "" && name != q.metric {
				continue // a peer answers what it was asked
			}
			have := byName[name]
			for _, e := range es {
				if !slices.Contains(have, e) {
					have = append(have, e)
				}
			}
			byName[name] = have
		}
	}
	out := make([]tsdb.MetricMetadataList, 0, len(byName))
	for name, es := range byName {
		if q.limitPerMetric > 0 && len(es) > q.limitPerMetric {
			es = es[:q.limitPerMetric]
		}
		out = append(out, tsdb.MetricMetadataList{Metric: name, Entries: es})
	}
	slices.SortFunc(out, func(x, y tsdb.MetricMetadataList) int {
		switch {
		case x.Metric < y.Metric:
			return -1
		case x.Metric > y.Metric:
			return 1
		}
		return 0
	})
	if q.limit >= 0 && len(out) > q.limit {
		out = out[:q.limit]
	}
	return out
}

// metadataJSON is Prometheus's shape: metric name → its entries; {} when
// there are none.
func metadataJSON(lists []tsdb.MetricMetadataList) map[string][]tsdb.Metadata {
	out := make(map[string][]tsdb.Metadata, len(lists))
	for _, l := range lists {
		out[l.Metric] = l.Entries
	}
	return out
}

// metadataPart serves MetadataPartPath: the metadata this node holds.
func (a *API) metadataPart(w http.ResponseWriter, r *http.Request) {
	q, err := parseMetadataQuery(r)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	b := a.readyBackend(w, true)
	if b == nil {
		return
	}
	respond(w, metadataJSON(a.localMetadata(b, q)), nil)
}
