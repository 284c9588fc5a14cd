package ring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// haMaxRecordBytes bounds one election record: a record is a replica of
// at most HAMaxValueBytes (JSON-escaped, up to 6 bytes a byte) and two
// integers, so anything larger is not ours.
const haMaxRecordBytes = 2 << 10

// haListPage is how many records one list request fetches (≤ 1 MiB).
const haListPage = 500

// haRecord is the JSON value of <prefix><cluster> in etcd.
type haRecord struct {
	Replica   string `json:"replica"`
	ElectedAt int64  `json:"elected_at"` // unix ms
	LastSeen  int64  `json:"last_seen"`  // unix ms
}

// decodeRecord checks and decodes the record of cluster at mod revision
// modRev. Records are untrusted: anyone with write access to the prefix
// can put anything there. A last_seen after now (a node's clock ahead,
// or a hostile record) counts from now, so that it cannot hold off a
// failover.
func decodeRecord(cluster string, val []byte, modRev, now int64) (*haState, error) {
	if len(val) > haMaxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRecord, len(val), haMaxRecordBytes)
	}
	if err := checkHAValue(cluster); err != nil {
		return nil, fmt.Errorf("%w: cluster: %v", ErrBadRecord, err)
	}
	var r haRecord
	if err := json.Unmarshal(val, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if err := checkHAValue(r.Replica); err != nil {
		return nil, fmt.Errorf("%w: replica: %v", ErrBadRecord, err)
	}
	if r.ElectedAt <= 0 || r.LastSeen <= 0 {
		return nil, fmt.Errorf("%w: elected_at %d, last_seen %d", ErrBadRecord, r.ElectedAt, r.LastSeen)
	}
	return &haState{replica: r.Replica, electedAt: r.ElectedAt, lastSeen: min(r.LastSeen, now), modRev: modRev}, nil
}

func checkHAValue(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > HAMaxValueBytes:
		return fmt.Errorf("%d bytes, more than %d", len(s), HAMaxValueBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("not valid UTF-8")
	}
	return nil
}

// write makes act's txn on cluster's record: if the record is still st
// (same mod revision; absent when st is nil or only local), put the new
// election under the tracker's lease; else read it. It returns the state
// etcd holds after the txn and whether the put won.
func (t *HATracker) write(ctx context.Context, cluster string, st *haState, act haAction, replica string,
	now, lease int64) (*haState, bool, error) {
	rec := haRecord{Replica: replica, ElectedAt: now, LastSeen: now}
	if act == haRefresh {
		rec.Replica, rec.ElectedAt = st.replica, st.electedAt
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, false, err
	}
	key := t.opts.Prefix + cluster
	cond := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if st != nil && st.modRev != 0 {
		cond = clientv3.Compare(clientv3.ModRevision(key), "=", st.modRev)
	}
	tctx, cancel := context.WithTimeout(ctx, t.opts.TxnTimeout)
	defer cancel()
	resp, err := t.client.Txn(tctx).If(cond).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(clientv3.LeaseID(lease)))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			// The lease expired (an outage longer than its TTL) or was
			// revoked: have the keepalive grant a new one now.
			select {
			case t.leaseLost <- struct{}{}:
			default:
			}
		}
		return nil, false, fmt.Errorf("%s %s: %w", act, key, err)
	}
	if resp.Succeeded {
		t.metrics.writes.WithLabelValues(act.String()).Inc()
		return &haState{replica: strings.Clone(rec.Replica), electedAt: rec.ElectedAt, lastSeen: now,
			modRev: resp.Header.Revision}, true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, false, nil // deleted meanwhile: the next round creates it
	}
	// The record may have been written after now was read, by a node
	// whose clock had moved on: it is judged by the clock as it is now,
	// or its last_seen would be cut back and kept so (its own watch event
	// has the same mod revision and is ignored).
	next, err := decodeRecord(cluster, kvs[0].Value, kvs[0].ModRevision, t.opts.Now().UnixMilli())
	if err != nil {
		t.badRecord(cluster, err)
		// A malformed record counts as stale: the next replica seen
		// overwrites it (compare on its mod revision).
		return &haState{modRev: kvs[0].ModRevision}, false, nil
	}
	return next, false, nil
}

func (t *HATracker) badRecord(cluster string, err error) {
	t.metrics.errors.WithLabelValues("decode").Inc()
	if len(cluster) > 64 {
		cluster = cluster[:64] + "…"
	}
	t.logError("decode", fmt.Errorf("record of cluster %q skipped: %w", cluster, err))
}

// list reads every record under the prefix at one revision, page by
// page, keeping at most MaxClusters valid ones.
func (t *HATracker) list(ctx context.Context) (map[string]*haState, int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	recs := map[string]*haState{}
	end := clientv3.GetPrefixRangeEnd(t.opts.Prefix)
	from, rev := t.opts.Prefix, int64(0)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(haListPage),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := t.client.Get(lctx, from, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", t.opts.Prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		now := t.opts.Now().UnixMilli()
		for _, kv := range resp.Kvs {
			cluster := strings.TrimPrefix(string(kv.Key), t.opts.Prefix)
			if len(recs) >= t.opts.MaxClusters {
				t.metrics.limitedClusters.Inc()
				continue
			}
			st, err := decodeRecord(cluster, kv.Value, kv.ModRevision, now)
			if err != nil {
				t.badRecord(cluster, err)
				continue
			}
			recs[cluster] = st
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return recs, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// replace makes recs, listed at rev, the known elections: entries whose
// record is gone are dropped, except those decided locally or written
// after rev.
func (t *HATracker) replace(recs map[string]*haState, rev int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries.Range(func(k, v any) bool {
		c := k.(string)
		if _, ok := recs[c]; ok {
			return true
		}
		if st := v.(*haEntry).state.Load(); st == nil || (!st.dirty && st.modRev <= rev) {
			t.deleteLocked(c)
		}
		return true
	})
	for c, st := range recs {
		t.applyLocked(c, st)
	}
	t.metrics.clusters.Set(float64(t.count))
}

// applyLocked stores st as cluster's election unless a state as new is
// known. t.mu must be held.
func (t *HATracker) applyLocked(cluster string, st *haState) {
	e := t.entry(cluster)
	if e == nil {
		if t.count >= t.opts.MaxClusters {
			t.metrics.limitedClusters.Inc()
			return
		}
		e = &haEntry{sem: make(chan struct{}, 1)}
		t.entries.Store(cluster, e)
		t.count++
	}
	for {
		cur := e.state.Load()
		if cur != nil && cur.modRev >= st.modRev {
			return
		}
		if e.state.CompareAndSwap(cur, st) {
			return
		}
	}
}

// removeLocked drops cluster's entry after its record was deleted (or
// turned malformed) at rev, unless it holds a local decision or a newer
// state. t.mu must be held.
func (t *HATracker) removeLocked(cluster string, rev int64) {
	e := t.entry(cluster)
	if e == nil {
		return
	}
	if st := e.state.Load(); st == nil || (!st.dirty && st.modRev < rev) {
		t.deleteLocked(cluster)
	}
}

// deleteLocked forgets cluster. t.mu must be held.
func (t *HATracker) deleteLocked(cluster string) {
	if _, ok := t.entries.LoadAndDelete(cluster); ok {
		t.count--
	}
}

// watch follows the prefix from rev+1, and lists again when the watch
// fails (compaction, etcd restart, lost leader). While etcd is out of
// reach the known elections stay. It runs until ctx ends.
func (t *HATracker) watch(ctx context.Context, rev int64) {
	defer t.done.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if rev == 0 {
			recs, r, err := t.list(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				t.metrics.errors.WithLabelValues("list").Inc()
				t.logError("list", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			t.replace(recs, r)
			rev = r
		}
		t.follow(ctx, rev)
		rev = 0
	}
}

// follow applies watch events from rev+1 until the watch fails or ctx ends.
func (t *HATracker) follow(ctx context.Context, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := t.client.Watch(wctx, t.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if err := resp.Err(); err != nil || resp.Canceled {
			if ctx.Err() == nil {
				t.metrics.errors.WithLabelValues("watch").Inc()
				t.logError("watch", fmt.Errorf("watch from revision %d: %v", rev+1, err))
			}
			return
		}
		now := t.opts.Now().UnixMilli()
		t.mu.Lock()
		for _, ev := range resp.Events {
			cluster := strings.TrimPrefix(string(ev.Kv.Key), t.opts.Prefix)
			if ev.Type == mvccpb.DELETE {
				t.removeLocked(cluster, ev.Kv.ModRevision)
				continue
			}
			st, err := decodeRecord(cluster, ev.Kv.Value, ev.Kv.ModRevision, now)
			if err != nil {
				t.removeLocked(cluster, ev.Kv.ModRevision)
				t.badRecord(cluster, err)
				continue
			}
			t.applyLocked(cluster, st)
		}
		t.metrics.clusters.Set(float64(t.count))
		t.mu.Unlock()
	}
	if ctx.Err() == nil {
		t.metrics.errors.WithLabelValues("watch").Inc()
	}
}

// keepAlive keeps the tracker's lease alive until ctx ends. When the
// keepalive ends and the lease is gone (expired during an outage), it
// grants a new one, retrying with back-off; meanwhile Accept decides
// locally. The records under a lost lease are gone from etcd: the next
// sample of each live cluster writes it again.
func (t *HATracker) keepAlive(ctx context.Context) {
	defer t.done.Done()
	backoff := 100 * time.Millisecond
	for {
		if lease := clientv3.LeaseID(t.lease.Load()); lease != 0 {
			if t.keepLease(ctx, lease) {
				backoff = 100 * time.Millisecond
			}
			if ctx.Err() != nil {
				return
			}
			t.metrics.errors.WithLabelValues("keepalive").Inc()
			t.logError("keepalive", fmt.Errorf("lease %x: keepalive ended", int64(lease)))
			if !t.leaseAlive(ctx, lease) {
				t.lease.CompareAndSwap(int64(lease), 0)
			}
		} else {
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			g, err := t.client.Grant(gctx, t.leaseTTL)
			cancel()
			if err == nil {
				t.lease.Store(int64(g.ID))
				t.opts.Logger.Info("ha tracker lease granted again", "lease", g.ID)
				continue
			}
			if ctx.Err() != nil {
				return
			}
			t.metrics.errors.WithLabelValues("grant").Inc()
			t.logError("grant", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// keepLease keeps lease alive until the keepalive ends, ctx ends, or a
// write found the lease gone (leaseLost). It reports whether etcd
// answered at least one keepalive.
func (t *HATracker) keepLease(ctx context.Context, lease clientv3.LeaseID) (answered bool) {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := t.client.KeepAlive(kctx, lease)
	if err != nil {
		return false
	}
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return answered
			}
			answered = true
		case <-t.leaseLost:
			return answered
		}
	}
}

// leaseAlive asks etcd whether lease still lives.
func (t *HATracker) leaseAlive(ctx context.Context, lease clientv3.LeaseID) bool {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := t.client.TimeToLive(lctx, lease)
	return err == nil && resp.TTL > 0
}

// sweeper runs sweep every refresh period until ctx ends.
func (t *HATracker) sweeper(ctx context.Context) {
	defer t.done.Done()
	tick := time.NewTicker(max(time.Duration(t.refreshMs)*time.Millisecond, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.sweep(t.opts.Now().UnixMilli())
		}
	}
}

// sweep forgets entries that no record backs: local decisions not seen
// for a lease TTL (clusters that stopped during an etcd outage), and
// entries whose election never resolved. Entries of records are dropped
// by the watch when etcd deletes them.
func (t *HATracker) sweep(now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries.Range(func(k, v any) bool {
		e := v.(*haEntry)
		st := e.state.Load()
		if st != nil && (!st.dirty || now-st.lastSeen <= t.leaseTTL*1000) {
			return true
		}
		select {
		case e.sem <- struct{}{}: // nobody is deciding it
			t.deleteLocked(k.(string))
			<-e.sem
		default:
		}
		return true
	})
	t.metrics.clusters.Set(float64(t.count))
}
