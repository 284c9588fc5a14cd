// Package probe inspects etcd clusters directly, with
// go.etcd.io/etcd/client/v3, for what metrics cannot show: members that
// disagree on the data, huge values, runaway key counts, hot keys, and
// the cluster's health as its members report it.
//
// Each inspection is one type behind the Inspection interface, in a file
// of its own. A Runner runs one inspection against one Target and turns
// the result into series (handed to an Emitter, so that rules can alert
// on them) and a Record (kept in a RecordStore, for a person to read).
// The Scheduler runs every inspection of every target on its interval,
// with jitter, a concurrency limit, timeouts and back-off.
//
// probe imports nothing of the project: cmd/etcdgate adapts the Emitter
// to the ingest path and feeds targets from the config and the registry.
package probe
