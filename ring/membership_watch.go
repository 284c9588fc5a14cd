package ring

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// listPage is how many records one list request fetches. etcd bounds a
// value (1.5 MiB by default), so a page bounds the memory of one answer.
const listPage = 64

// watch keeps the view: it lists the prefix at a revision, watches from
// the next one, and lists again when the watch fails (compaction, etcd
// restart, lost leader). While etcd is out of reach the last view stays.
// It runs until ctx ends.
func (m *Membership) watch(ctx context.Context) {
	defer m.done.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		recs, rev, err := m.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.metrics.errors.WithLabelValues("list").Inc()
			m.logError("list", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, m.opts.TTL/2)
			continue
		}
		backoff = 100 * time.Millisecond
		m.publish(recs)
		m.follow(ctx, recs, rev)
	}
}

// follow applies watch events from rev+1 to recs until the watch fails
// or ctx ends.
func (m *Membership) follow(ctx context.Context, recs map[string]Node, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := m.client.Watch(wctx, m.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if err := resp.Err(); err != nil || resp.Canceled {
			if ctx.Err() == nil {
				m.metrics.errors.WithLabelValues("watch").Inc()
				m.logError("watch", fmt.Errorf("watch from revision %d: %v", rev+1, err))
			}
			return
		}
		for _, ev := range resp.Events {
			name := strings.TrimPrefix(string(ev.Kv.Key), m.opts.Prefix)
			if ev.Type == mvccpb.DELETE {
				delete(recs, name)
				continue
			}
			if _, known := recs[name]; !known && len(recs) >= m.opts.MaxRecords {
				m.badRecord(name, fmt.Errorf("more than %d records", m.opts.MaxRecords))
				continue
			}
			n, err := m.decode(name, ev.Kv.Value)
			if err != nil {
				delete(recs, name)
				m.badRecord(name, err)
				continue
			}
			recs[name] = n
		}
		m.publish(recs)
	}
	if ctx.Err() == nil {
		m.metrics.errors.WithLabelValues("watch").Inc()
	}
}

// list reads every record under the prefix at one revision, page by
// page, keeping at most MaxRecords valid ones.
func (m *Membership) list(ctx context.Context) (map[string]Node, int64, error) {
	lctx, cancel := context.WithTimeout(ctx, m.opts.TTL)
	defer cancel()
	recs := map[string]Node{}
	end := clientv3.GetPrefixRangeEnd(m.opts.Prefix)
	from, rev := m.opts.Prefix, int64(0)
	seen := 0
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := m.client.Get(lctx, from, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", m.opts.Prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			name := strings.TrimPrefix(string(kv.Key), m.opts.Prefix)
			if seen >= m.opts.MaxRecords {
				m.badRecord(name, fmt.Errorf("more than %d records", m.opts.MaxRecords))
				continue
			}
			seen++
			n, err := m.decode(name, kv.Value)
			if err != nil {
				m.badRecord(name, err)
				continue
			}
			recs[name] = n
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return recs, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// decode checks and decodes the record of name. Records are untrusted:
// anyone with write access to the prefix can put anything there.
func (m *Membership) decode(name string, val []byte) (Node, error) {
	if len(val) > m.opts.MaxRecordBytes {
		return Node{}, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRecord, len(val), m.opts.MaxRecordBytes)
	}
	var n Node
	if err := json.Unmarshal(val, &n); err != nil {
		return Node{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	switch {
	case n.Name != name:
		return Node{}, fmt.Errorf("%w: name %q under key of %q", ErrBadRecord, n.Name, name)
	case validateName(name) != nil:
		return Node{}, fmt.Errorf("%w: name: %v", ErrBadRecord, validateName(name))
	case validateURL(n.URL) != nil:
		return Node{}, fmt.Errorf("%w: advertise_url: %v", ErrBadRecord, validateURL(n.URL))
	case validateTokens(n.Tokens) != nil:
		return Node{}, fmt.Errorf("%w: tokens: %v", ErrBadRecord, validateTokens(n.Tokens))
	}
	if _, ok := stateNames[n.State]; !ok {
		return Node{}, fmt.Errorf("%w: no state", ErrBadRecord)
	}
	return n, nil
}

func (m *Membership) badRecord(name string, err error) {
	m.metrics.errors.WithLabelValues("decode").Inc()
	m.logError("decode", fmt.Errorf("record %q skipped: %w", name, err))
}

// publish makes recs the new immutable view, updates the gauges and
// calls OnChange.
func (m *Membership) publish(recs map[string]Node) {
	nodes := sortedNodes(recs)
	m.view.Store(&nodes)
	counts := map[State]int{}
	for _, n := range nodes {
		counts[n.State]++
	}
	for s, name := range stateNames {
		m.metrics.members.WithLabelValues(name).Set(float64(counts[s]))
	}
	if m.opts.OnChange != nil {
		m.opts.OnChange(nodes)
	}
}

// membershipMetrics are the etcdgate_ring_* metrics of membership.
type membershipMetrics struct {
	members  *prometheus.GaugeVec
	errors   *prometheus.CounterVec
	regrants prometheus.Counter
}

func newMembershipMetrics(reg prometheus.Registerer) *membershipMetrics {
	m := &membershipMetrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "etcdgate_ring_members",
			Help: "Nodes in this node's view of the ring, by state.",
		}, []string{"state"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_ring_membership_errors_total",
			Help: "Membership failures by operation (grant, register, keepalive, regrant, set_state, revoke, list, watch, decode).",
		}, []string{"op"}),
		regrants: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_ring_lease_regrants_total",
			Help: "Leases granted again after this node's lease was lost.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.members, m.errors, m.regrants)
	}
	return m
}
