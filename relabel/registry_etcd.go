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
}

// NewEtcdWatcher returns a watcher of prefix feeding registry.
func NewEtcdWatcher(client *clientv3.Client, prefix string, registry *Registry, logger *slog.Logger, onError func(error)) *EtcdWatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &EtcdWatcher{client: client, prefix: prefix, registry: registry, logger: logger, onError: onError, retry: time.Second}
}

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
	resp, err := w.client.Get(ctx, w.prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list %s: %w", w.prefix, err)
	}
	recs := make(map[string]*Record, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if rec := w.parse(kv.Key, kv.Value); rec != nil {
			recs[rec.Cluster] = rec
		} else if old := w.registry.etcdRecord(w.cluster(kv.Key)); old != nil {
			recs[old.Cluster] = old
		}
	}
	w.registry.ResetEtcd(recs)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := w.client.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
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

func (w *EtcdWatcher) apply(ev *clientv3.Event) {
	if ev.Type == clientv3.EventTypeDelete {
		w.registry.DeleteEtcd(w.cluster(ev.Kv.Key))
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
	rec, err := ParseRecord(w.cluster(key), value)
	if err != nil {
		w.logger.Error("registry value in etcd refused", "key", string(key), "err", err)
		if w.onError != nil {
			w.onError(err)
		}
		return nil
	}
	return rec
}

// cluster returns the cluster ID of a key.
func (w *EtcdWatcher) cluster(key []byte) string { return strings.TrimPrefix(string(key), w.prefix) }
