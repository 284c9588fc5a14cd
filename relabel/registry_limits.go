package relabel

import (
	"errors"
	"fmt"
)

// ErrRecordLimit marks a registry record from etcd refused by its
// RecordLimits: anyone who can write under the prefix writes into every
// series of the cluster, so records are bounded like series are.
var ErrRecordLimit = errors.New("registry record over limit")

// RecordLimits bound the registry records read from etcd. A record over a
// limit is refused (counted and logged); the others are kept.
type RecordLimits struct {
	// MaxRecords bounds the clusters registered in etcd; past it new
	// ones are refused, registered ones still update.
	MaxRecords int `yaml:"max_records"`
	// MaxRecordBytes bounds one value, checked before it is parsed.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxLabels bounds a record's extra labels.
	MaxLabels int `yaml:"max_labels"`
	// MaxLabelNameLength and MaxLabelValueLength bound each label, and
	// the cluster ID, product, scenario and region as label values.
	MaxLabelNameLength  int `yaml:"max_label_name_length"`
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// MaxEndpoints bounds the endpoints and Kubernetes clusters listed.
	MaxEndpoints int `yaml:"max_endpoints"`
}

// DefaultRecordLimits fit a fleet of tens of thousands of clusters with
// a handful of labels each.
func DefaultRecordLimits() RecordLimits {
	return RecordLimits{MaxRecords: 100000, MaxRecordBytes: 16 << 10, MaxLabels: 32, MaxLabelNameLength: 128,
		MaxLabelValueLength: 1024, MaxEndpoints: 64}
}

// Validate requires every limit to be positive.
func (l RecordLimits) Validate() error {
	if l.MaxRecords <= 0 || l.MaxRecordBytes <= 0 || l.MaxLabels <= 0 || l.MaxLabelNameLength <= 0 ||
		l.MaxLabelValueLength <= 0 || l.MaxEndpoints <= 0 {
		return errors.New("registry record limits must be positive")
	}
	return nil
}

// checkSize refuses a value before it is parsed.
func (l RecordLimits) checkSize(cluster string, value []byte) error {
	if len(value) > l.MaxRecordBytes {
		return fmt.Errorf("%w: cluster %q: value of %d bytes, max_record_bytes is %d", ErrRecordLimit, clip(cluster), len(value), l.MaxRecordBytes)
	}
	if len(cluster) > l.MaxLabelValueLength {
		return fmt.Errorf("%w: cluster ID of %d bytes, max_label_value_length is %d", ErrRecordLimit, len(cluster), l.MaxLabelValueLength)
	}
	return nil
}

// Check refuses a parsed record over a limit.
func (l RecordLimits) Check(r *Record) error {
	if len(r.Labels) > l.MaxLabels {
		return fmt.Errorf("%w: cluster %q: %d labels, max_labels is %d", ErrRecordLimit, clip(r.Cluster), len(r.Labels), l.MaxLabels)
	}
	for n, v := range r.Labels {
		if len(n) > l.MaxLabelNameLength {
			return fmt.Errorf("%w: cluster %q: label name of %d bytes, max_label_name_length is %d", ErrRecordLimit, clip(r.Cluster), len(n), l.MaxLabelNameLength)
		}
		if len(v) > l.MaxLabelValueLength {
			return fmt.Errorf("%w: cluster %q: label %s: value of %d bytes, max_label_value_length is %d", ErrRecordLimit, clip(r.Cluster), n, len(v), l.MaxLabelValueLength)
		}
	}
	for name, v := range map[string]string{"cluster": r.Cluster, "product": r.Product, "scenario": r.Scenario, "region": r.Region} {
		if len(v) > l.MaxLabelValueLength {
			return fmt.Errorf("%w: cluster %q: %s of %d bytes, max_label_value_length is %d", ErrRecordLimit, clip(r.Cluster), name, len(v), l.MaxLabelValueLength)
		}
	}
	if len(r.Endpoints) > l.MaxEndpoints || len(r.KubernetesClusters) > l.MaxEndpoints {
		return fmt.Errorf("%w: cluster %q: %d endpoints, %d kubernetes_clusters, max_endpoints is %d", ErrRecordLimit, clip(r.Cluster),
			len(r.Endpoints), len(r.KubernetesClusters), l.MaxEndpoints)
	}
	for _, s := range append(append([]string(nil), r.Endpoints...), r.KubernetesClusters...) {
		if len(s) > l.MaxLabelValueLength {
			return fmt.Errorf("%w: cluster %q: endpoint or kubernetes cluster of %d bytes, max_label_value_length is %d", ErrRecordLimit, clip(r.Cluster), len(s), l.MaxLabelValueLength)
		}
	}
	return nil
}

// clip shortens untrusted text for an error or a log line.
func clip(s string) string {
	const n = 128
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
