package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// HotKeys watches the whole keyspace from the current revision for a
// sampling window and reports writes (puts and deletes) per second per
// key and per prefix, the top N of each. The watch costs the cluster one
// stream of every event for the window; nothing is read from its store.
type HotKeys struct {
	Window time.Duration
	TopN   int
	// Prefixes group keys (longest match); empty groups by Kubernetes'
	// /registry/<resource>/.
	Prefixes []string
	// WarnWritesPerSecond: a key written faster is a warning.
	WarnWritesPerSecond float64
	// MaxKeys bounds the distinct keys counted one by one in a window;
	// writes to further keys count for their prefix only. It bounds
	// memory when a window sees a bulk load of new keys. It bounds the
	// distinct prefixes too (further ones count under "other").
	MaxKeys int
}

// DefaultHotKeys samples 10 s and warns at 1,000 writes/s to one key.
func DefaultHotKeys() HotKeys {
	return HotKeys{Window: 10 * time.Second, TopN: 10, WarnWritesPerSecond: 1000, MaxKeys: 100000}
}

// Validate checks the settings.
func (h HotKeys) Validate() error {
	switch {
	case h.Window < 100*time.Millisecond:
		return fmt.Errorf("hot_keys: window %s: want at least 100ms", h.Window)
	case h.TopN < 1:
		return errors.New("hot_keys: top_n must be positive")
	case h.WarnWritesPerSecond <= 0:
		return errors.New("hot_keys: warn_writes_per_second must be positive")
	case h.MaxKeys < 1:
		return errors.New("hot_keys: max_keys must be positive")
	}
	return validatePrefixes("hot_keys", h.Prefixes)
}

// Name implements Inspection.
func (HotKeys) Name() string { return "hot_keys" }

// Inspect implements Inspection.
func (h HotKeys) Inspect(ctx context.Context, s *Session, _ any) (Result, error) {
	// A watch on an unreachable cluster waits silently: a read first
	// makes such a cluster fail fast, and gives the revision to watch from.
	cur, err := s.Client.Get(ctx, "\x00")
	if err == nil {
		err = needHeader(cur.Header, "range")
	}
	if err != nil {
		return Result{}, fmt.Errorf("read revision: %w", err)
	}
	wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), h.Window)
	defer cancel()
	g := newPrefixGrouper(h.Prefixes)
	keys, prefixes := map[string]int{}, map[string]int{}
	total := 0
	start := time.Now()
	for wr := range s.Client.Watch(wctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(cur.Header.Revision+1)) {
		if err := wr.Err(); err != nil && wctx.Err() == nil {
			return Result{}, fmt.Errorf("watch from revision %d: %w", cur.Header.Revision+1, err)
		}
		for _, ev := range wr.Events {
			if ev == nil || ev.Kv == nil {
				continue
			}
			total++
			countIn(prefixes, g.group(ev.Kv.Key), 1, h.MaxKeys)
			k := labelValue(ev.Kv.Key)
			if _, ok := keys[k]; ok || len(keys) < h.MaxKeys {
				keys[k]++
			}
		}
	}
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("watch: %w", ctx.Err())
	}
	return h.result(keys, prefixes, total, time.Since(start)), nil
}

// result reports the rates of the top keys and prefixes.
func (h HotKeys) result(keys, prefixes map[string]int, total int, window time.Duration) Result {
	sec := window.Seconds()
	res := Result{Status: StatusSuccess, Findings: []Finding{
		{Name: "etcdgate_inspection_writes_per_second", Value: float64(total) / sec},
	}}
	topKeys, topPrefixes := largestFirst(keys, h.TopN), largestFirst(prefixes, h.TopN)
	g := newPrefixGrouper(h.Prefixes)
	var list []string
	for _, k := range topKeys {
		rate := float64(keys[k]) / sec
		res.Findings = append(res.Findings, Finding{Name: "etcdgate_inspection_hot_key_writes_per_second",
			Labels: []labels.Label{{Name: "key", Value: k}, {Name: "prefix", Value: g.group([]byte(k))}}, Value: rate})
		if rate >= h.WarnWritesPerSecond {
			res.Status = StatusWarning
		}
		if len(list) < 5 {
			list = append(list, fmt.Sprintf("%s %.1f/s", k, rate))
		}
	}
	for _, p := range topPrefixes {
		res.Findings = append(res.Findings, Finding{Name: "etcdgate_inspection_hot_prefix_writes_per_second",
			Labels: []labels.Label{{Name: "prefix", Value: p}}, Value: float64(prefixes[p]) / sec})
	}
	res.Message = fmt.Sprintf("%d writes in %s (%.1f/s) to %d keys", total, roundDuration(window), float64(total)/sec, len(keys))
	if len(list) > 0 {
		res.Message += "; hottest: " + strings.Join(list, ", ")
	}
	if res.Status == StatusWarning {
		res.Message += fmt.Sprintf("; keys written %g times a second or more", h.WarnWritesPerSecond)
	}
	return res
}
