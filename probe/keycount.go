package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeyCount counts keys per prefix and their growth since the previous
// run. Configured prefixes are counted with one count-only request each
// (etcd counts in its index and sends no keys); without them the
// keyspace is scanned keys-only, within the Paging bounds, and grouped
// by Kubernetes' /registry/<resource>/.
type KeyCount struct {
	Prefixes []string
	// MaxPrefixes bounds the groups a scan reports (the largest); the
	// rest are summed under "other", so that a keyspace of random
	// prefixes does not become as many series.
	MaxPrefixes int
	Paging      Paging
}

// DefaultKeyCount groups by Kubernetes resource, at most 100 groups.
func DefaultKeyCount() KeyCount { return KeyCount{MaxPrefixes: 100, Paging: DefaultPaging()} }

// Validate checks the settings.
func (k KeyCount) Validate() error {
	if k.MaxPrefixes < 1 {
		return errors.New("key_count: max_prefixes must be positive")
	}
	if err := k.Paging.Validate(); err != nil {
		return fmt.Errorf("key_count: %w", err)
	}
	return validatePrefixes("key_count", k.Prefixes)
}

// Name implements Inspection.
func (KeyCount) Name() string { return "key_count" }

// keyCountState is the previous run's counts.
type keyCountState struct {
	At     time.Time
	Total  int64
	Counts map[string]int64
}

// Inspect implements Inspection.
func (k KeyCount) Inspect(ctx context.Context, s *Session, prev any) (Result, error) {
	total, counts, err := k.count(ctx, s)
	if err != nil {
		return Result{}, err
	}
	now := time.Now()
	state := keyCountState{At: now, Total: total, Counts: counts}
	res := Result{Status: StatusSuccess, State: state, Findings: []Finding{{Name: "etcdgate_inspection_keys", Value: float64(total)}}}
	p, hasPrev := prev.(keyCountState)
	elapsed := now.Sub(p.At).Seconds()
	var parts []string
	for _, prefix := range largestFirst(counts, len(counts)) {
		n := counts[prefix]
		ls := []labels.Label{{Name: "prefix", Value: prefix}}
		res.Findings = append(res.Findings, Finding{Name: "etcdgate_inspection_prefix_keys", Labels: ls, Value: float64(n)})
		part := fmt.Sprintf("%s %d", prefix, n)
		if hasPrev && elapsed > 0 {
			d := n - p.Counts[prefix]
			res.Findings = append(res.Findings,
				Finding{Name: "etcdgate_inspection_prefix_keys_growth", Labels: ls, Value: float64(d)},
				Finding{Name: "etcdgate_inspection_prefix_keys_growth_per_second", Labels: ls, Value: float64(d) / elapsed})
			part += fmt.Sprintf(" (%+d, %.1f/s)", d, float64(d)/elapsed)
		}
		parts = append(parts, part)
	}
	res.Message = fmt.Sprintf("total key num is %d", total)
	if hasPrev && elapsed > 0 {
		d := total - p.Total
		res.Findings = append(res.Findings, Finding{Name: "etcdgate_inspection_keys_growth_per_second", Value: float64(d) / elapsed})
		res.Message += fmt.Sprintf(" (%+d in %s)", d, roundDuration(now.Sub(p.At)))
	}
	if len(parts) > 0 {
		res.Message += "; " + strings.Join(parts[:min(len(parts), 10)], ", ")
	}
	return res, nil
}

// count returns the total and the keys per prefix, all at one revision
// of one member.
func (k KeyCount) count(ctx context.Context, s *Session) (int64, map[string]int64, error) {
	counts := map[string]int64{}
	if len(k.Prefixes) == 0 {
		g := newPrefixGrouper(nil)
		// Holding ten times the groups reported keeps the largest right
		// unless the keyspace is mostly small random prefixes.
		limit := max(10*k.MaxPrefixes, 1000)
		st, err := k.Paging.scan(ctx, s, true, func(kv *mvccpb.KeyValue) { countIn(counts, g.group(kv.Key), 1, limit) })
		if err != nil {
			return 0, nil, err
		}
		return st.Keys, k.cap(counts), nil
	}
	var total *clientv3.GetResponse
	c, err := s.firstMember(ctx, func(c *clientv3.Client) (err error) {
		total, err = c.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly(), clientv3.WithSerializable())
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("count keys: %w", err)
	}
	if err := needHeader(total.Header, "count keys"); err != nil {
		return 0, nil, err
	}
	for _, p := range k.Prefixes {
		resp, err := c.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable(),
			clientv3.WithRev(total.Header.Revision))
		if err != nil {
			return 0, nil, fmt.Errorf("count keys under %q: %w", p, err)
		}
		counts[p] = resp.Count
	}
	return total.Count, counts, nil
}

// cap keeps the MaxPrefixes largest groups and sums the rest as other.
func (k KeyCount) cap(counts map[string]int64) map[string]int64 {
	if len(counts) <= k.MaxPrefixes {
		return counts
	}
	order := largestFirst(counts, len(counts))
	out := make(map[string]int64, k.MaxPrefixes+1)
	for i, p := range order {
		if i < k.MaxPrefixes && p != otherPrefix {
			out[p] = counts[p]
		} else {
			out[otherPrefix] += counts[p]
		}
	}
	return out
}

// roundDuration rounds d for a message: to the second from a minute up.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
