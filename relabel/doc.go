// Package relabel turns the label set of a new series into the one that is
// stored: Prometheus relabel_configs (global, then per source), then
// enrichment with the standard labels (product, scenario, size, region)
// from a cluster registry fed by a file and an etcd key prefix. The outcome
// is computed once per series and cached by the series' hash, so steady
// ingestion pays a cache lookup, not the rules. It imports nothing of the
// project.
package relabel
