package relabel

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/common/model"
)

// Sizes a cluster may have. Thresholds and alert routing key on them.
const (
	SizeSmall   = "small"
	SizeDefault = "default"
	SizeLarge   = "large"
)

// ValidSize reports whether s is one of the sizes (empty means unset).
func ValidSize(s string) bool {
	return s == "" || s == SizeSmall || s == SizeDefault || s == SizeLarge
}

// Record is what the registry knows about one etcd cluster. Records are
// immutable once published: a change replaces the record, and the cache
// notices by pointer comparison.
type Record struct {
	Cluster  string `yaml:"cluster" json:"cluster"`
	Product  string `yaml:"product" json:"product,omitempty"`
	Scenario string `yaml:"scenario" json:"scenario,omitempty"`
	Size     string `yaml:"size" json:"size,omitempty"`
	Region   string `yaml:"region" json:"region,omitempty"`
	// Labels are extra labels stamped on the cluster's series.
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
	// KubernetesClusters use this etcd; kept for the etcd ↔ Kubernetes
	// views, not stamped on series.
	KubernetesClusters []string `yaml:"kubernetes_clusters" json:"kubernetes_clusters,omitempty"`
	// Override makes the registry's labels replace those the series
	// already carries; by default the series' own labels win.
	Override bool `yaml:"override" json:"override,omitempty"`
	// Endpoints are the cluster's etcd client URLs, for the prober to
	// inspect it; not stamped on series.
	Endpoints []string `yaml:"endpoints" json:"endpoints,omitempty"`
}

// Validate checks one record.
func (r *Record) Validate() error {
	if r.Cluster == "" {
		return fmt.Errorf("cluster is empty")
	}
	if !ValidSize(r.Size) {
		return fmt.Errorf("cluster %q: unknown size %q: want small, default or large", r.Cluster, r.Size)
	}
	for n := range r.Labels {
		if !validLabelName(n) {
			return fmt.Errorf("cluster %q: invalid label name %q", r.Cluster, n)
		}
	}
	for _, ep := range r.Endpoints {
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("cluster %q: endpoint %q: want http://host:port or https://host:port", r.Cluster, ep)
		}
	}
	return nil
}

// labels returns the labels the record stamps, standard ones last so that
// they win over extra labels of the same name.
func (r *Record) labels() map[string]string {
	out := make(map[string]string, len(r.Labels)+4)
	maps.Copy(out, r.Labels)
	for n, v := range map[string]string{"product": r.Product, "scenario": r.Scenario, "size": r.Size, "region": r.Region} {
		if v != "" {
			out[n] = v
		}
	}
	return out
}

// snapshot is one published state of the registry. It is immutable.
type snapshot struct {
	version uint64
	records map[string]*Record
}

// Registry merges the clusters of the file and of etcd (etcd wins for a
// cluster in both: it is the live source operators register into) and
// publishes immutable snapshots, so readers never take a lock.
type Registry struct {
	mu   sync.Mutex         // serialises writers; guards file and etcd
	file map[string]*Record // guarded by mu
	etcd map[string]*Record // guarded by mu
	snap atomic.Pointer[snapshot]
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{file: map[string]*Record{}, etcd: map[string]*Record{}}
	r.snap.Store(&snapshot{records: map[string]*Record{}})
	return r
}

// Lookup returns the record of cluster, or nil.
func (r *Registry) Lookup(cluster string) *Record { return r.snap.Load().records[cluster] }

// Len returns the number of clusters registered.
func (r *Registry) Len() int { return len(r.snap.Load().records) }

// Records returns the current records; the map must not be modified.
func (r *Registry) Records() map[string]*Record { return r.snap.Load().records }

// etcdRecord returns the record etcd gave for cluster, or nil.
func (r *Registry) etcdRecord(cluster string) *Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.etcd[cluster]
}

// etcdLen returns the number of clusters registered in etcd.
func (r *Registry) etcdLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.etcd)
}

// SetFile replaces the clusters from the registry file. Records equal to
// the previous ones keep their identity, so their series stay cached.
func (r *Registry) SetFile(recs map[string]*Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]*Record, len(recs))
	for id, rec := range recs {
		if old := r.file[id]; old != nil && equalRecords(old, rec) {
			rec = old
		}
		next[id] = rec
	}
	r.file = next
	r.publishLocked()
}

// PutEtcd registers or replaces one cluster from etcd.
func (r *Registry) PutEtcd(rec *Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.etcd[rec.Cluster]; old != nil && equalRecords(old, rec) {
		return
	}
	r.etcd[rec.Cluster] = rec
	r.publishLocked()
}

// DeleteEtcd removes one cluster registered in etcd.
func (r *Registry) DeleteEtcd(cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.etcd[cluster]; !ok {
		return
	}
	delete(r.etcd, cluster)
	r.publishLocked()
}

// ResetEtcd replaces every etcd cluster, after a (re)list of the prefix.
func (r *Registry) ResetEtcd(recs map[string]*Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]*Record, len(recs))
	for id, rec := range recs {
		if old := r.etcd[id]; old != nil && equalRecords(old, rec) {
			rec = old
		}
		next[id] = rec
	}
	r.etcd = next
	r.publishLocked()
}

// publishLocked builds the merged snapshot. Copying the maps per change is
// fine: changes are rare (a registration, a file edit) and 10,000
// clusters copy in about a millisecond.
func (r *Registry) publishLocked() {
	old := r.snap.Load()
	merged := make(map[string]*Record, len(r.file)+len(r.etcd))
	maps.Copy(merged, r.file)
	maps.Copy(merged, r.etcd)
	r.snap.Store(&snapshot{version: old.version + 1, records: merged})
}

func equalRecords(a, b *Record) bool {
	return a.Cluster == b.Cluster && a.Product == b.Product && a.Scenario == b.Scenario &&
		a.Size == b.Size && a.Region == b.Region && a.Override == b.Override &&
		maps.Equal(a.Labels, b.Labels) && slices.Equal(a.KubernetesClusters, b.KubernetesClusters) &&
		slices.Equal(a.Endpoints, b.Endpoints)
}

// validLabelName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]*,
// the names the write path accepts.
func validLabelName(name string) bool { return model.LegacyValidation.IsValidLabelName(name) }
