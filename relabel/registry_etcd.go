package relabel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"gopkg.in/yaml.v3"
)

// ParseRecord parses one etcd value: a Record as JSON or YAML (JSON is
// YAML). The cluster ID is the key below the prefix; a cluster field in
// the value, if any, must agree with it.
func ParseRecord(cluster string, value []byte) (*Record, error) {
	var rec Record
	dec := yaml.NewDecoder(bytes.NewReader(value))
	dec.KnownFields(true)
	if err := dec.Decode(&rec); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("cluster %q: %w", cluster, err)
	}
	if rec.Cluster != "" && rec.Cluster != cluster {
		return nil, fmt.Errorf("cluster %q: value names cluster %q", cluster, rec.Cluster)
	}
	rec.Cluster = cluster
	if err := rec.Validate(); err != nil {
		return nil, err
	}
	return &rec, nil
}

// EtcdWatcher keeps the registry's etcd clusters in step with a key
// prefix: one key per cluster, PREFIX + cluster ID. Registering a cluster
// is a put; no config change or reload is involved.
type EtcdWatcher struct {
	client   *clientv3.Client
	prefix   string
	registry *Registry
	logger   *slog.Logger
	onError  func(error) // counts refused values; may be nil
	retry    time.Duration
	limits   RecordLimits // set before Run
	// Refusals are logged at most once per refusalLogInterval: a writer
	// flooding the prefix must not flood the log. Only Run's goroutine
	// touches these.
	lastLog    time.Time
	suppressed int
}

// refusalLogInterval throttles the log of refused records.
const refusalLogInterval = 10 * time.Second

// listPageSize is how many keys one list request fetches. Values are
// untrusted and etcd lets each be up to its request limit (1.5 MiB by
// default), so a page holds at most ~50 MiB before the limits apply.
const listPageSize = 32

// NewEtcdWatcher returns a watcher of prefix feeding registry, with the
// default RecordLimits.
func NewEtcdWatcher(client *clientv3.Client, prefix string, registry *Registry, logger *slog.Logger, onError func(error)) *EtcdWatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &EtcdWatcher{client: client, prefix: prefix, registry: registry, logger: logger, onError: onError, retry: time.Second,
		limits: DefaultRecordLimits()}
}

// SetLimits replaces the record limits; call it before Run.
func (w *EtcdWatcher) SetLimits(l RecordLimits) { w.limits = l }

// Run lists the prefix, then follows its changes until ctx is done. When
// the watch breaks (compaction, lost connection) it lists again, so no
// change is missed; until then the registry keeps what it had.
func (w *EtcdWatcher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.listAndWatch(ctx)
		if ctx.Err() != nil {
			return
		}
		w.logger.Warn("registry watch of etcd interrupted; listing again", "prefix", w.prefix, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(w.retry):
		}
	}
}

func (w *EtcdWatcher) listAndWatch(ctx context.Context) error {
	recs, rev, err := w.list(ctx)
	if err != nil {
		return err
	}
	w.registry.ResetEtcd(recs)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := w.client.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			w.apply(ev)
		}
	}
	return errors.New("watch channel closed")
}

// list reads the prefix page by page at one revision, keeping at most
// MaxRecords clusters; past it the rest are refused. It returns the
// records and the revision read.
func (w *EtcdWatcher) list(ctx context.Context) (map[string]*Record, int64, error) {
	recs := make(map[string]*Record)
	key, end := w.prefix, clientv3.GetPrefixRangeEnd(w.prefix)
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := w.client.Get(ctx, key, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", w.prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if len(recs) >= w.limits.MaxRecords {
				w.refuse(kv.Key, fmt.Errorf("%w: max_records %d reached", ErrRecordLimit, w.limits.MaxRecords))
				continue
			}
			if rec := w.parse(kv.Key, kv.Value); rec != nil {
				recs[rec.Cluster] = rec
			} else if old := w.registry.etcdRecord(w.cluster(kv.Key)); old != nil {
				recs[old.Cluster] = old
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return recs, rev, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

func (w *EtcdWatcher) apply(ev *clientv3.Event) {
	if ev.Type == clientv3.EventTypeDelete {
		w.registry.DeleteEtcd(w.cluster(ev.Kv.Key))
		return
	}
	if w.registry.etcdRecord(w.cluster(ev.Kv.Key)) == nil && w.registry.etcdLen() >= w.limits.MaxRecords {
		w.refuse(ev.Kv.Key, fmt.Errorf("%w: max_records %d reached", ErrRecordLimit, w.limits.MaxRecords))
		return
	}
	if rec := w.parse(ev.Kv.Key, ev.Kv.Value); rec != nil {
		w.registry.PutEtcd(rec)
	}
}

// parse returns the record of one key, or nil after logging why not. A
// bad value leaves the cluster as it was: one operator's typo must not
// strip a cluster's labels.
func (w *EtcdWatcher) parse(key, value []byte) *Record {
	cluster := w.cluster(key)
	err := w.limits.checkSize(cluster, value)
	var rec *Record
	if err == nil {
		rec, err = ParseRecord(cluster, value)
	}
	if err == nil {
		err = w.limits.Check(rec)
	}
	if err != nil {
		w.refuse(key, err)
		return nil
	}
	return rec
}

// refuse counts a refused record and logs it, throttled.
func (w *EtcdWatcher) refuse(key []byte, err error) {
	if w.onError != nil {
		w.onError(err)
	}
	if now := time.Now(); now.Sub(w.lastLog) >= refusalLogInterval {
		w.logger.Error("registry value in etcd refused", "key", clip(string(key)), "err", err, "refused_since_last_log", w.suppressed)
		w.lastLog, w.suppressed = now, 0
		return
	}
	w.suppressed++
}

// cluster returns the cluster ID of a key.
func (w *EtcdWatcher) cluster(key []byte) string { return strings.TrimPrefix(string(key), w.prefix) }
