package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// BigValues finds keys whose value exceeds a threshold and reports the
// largest per prefix, by paging through the whole keyspace within the
// Paging bounds. It is the one inspection that reads values, so it is
// the one whose load grows with the data: see Paging.
type BigValues struct {
	// Threshold is the value size, in bytes, from which a value is big.
	Threshold int64
	// TopN is how many big values are reported per prefix.
	TopN int
	// Prefixes group keys (longest match); empty groups by Kubernetes'
	// /registry/<resource>/.
	Prefixes []string
	// MaxPrefixes bounds the prefixes whose big values are held and
	// reported; big values under further prefixes count under "other".
	MaxPrefixes int
	Paging      Paging
}

// DefaultBigValues reports the 10 largest values over 100 KiB per prefix,
// for at most 100 prefixes.
func DefaultBigValues() BigValues {
	return BigValues{Threshold: 100 << 10, TopN: 10, MaxPrefixes: 100, Paging: DefaultPaging()}
}

// Validate checks the settings.
func (b BigValues) Validate() error {
	if b.Threshold < 1 {
		return errors.New("big_values: threshold must be positive")
	}
	if b.TopN < 1 {
		return errors.New("big_values: top_n must be positive")
	}
	if b.MaxPrefixes < 1 {
		return errors.New("big_values: max_prefixes must be positive")
	}
	if err := b.Paging.Validate(); err != nil {
		return fmt.Errorf("big_values: %w", err)
	}
	return validatePrefixes("big_values", b.Prefixes)
}

// Name implements Inspection.
func (BigValues) Name() string { return "big_values" }

type bigValue struct {
	key    string
	prefix string
	size   int
}

// Inspect implements Inspection.
func (b BigValues) Inspect(ctx context.Context, s *Session, _ any) (Result, error) {
	g := newPrefixGrouper(b.Prefixes)
	top := map[string][]bigValue{} // per prefix, largest first, at most TopN
	counts := map[string]int{}
	st, err := b.Paging.scan(ctx, s, false, func(kv *mvccpb.KeyValue) {
		if int64(len(kv.Value)) < b.Threshold {
			return
		}
		p := countIn(counts, g.group(kv.Key), 1, b.MaxPrefixes)
		top[p] = insertTop(top[p], bigValue{key: labelValue(kv.Key), prefix: p, size: len(kv.Value)}, b.TopN)
	})
	if err != nil {
		return Result{}, err
	}
	res := Result{Status: StatusSuccess, Findings: []Finding{
		{Name: "etcdgate_inspection_scanned_keys", Value: float64(st.Keys)},
		{Name: "etcdgate_inspection_scanned_bytes", Value: float64(st.Bytes)},
	}}
	var all []bigValue
	for _, p := range slices.Sorted(maps.Keys(top)) {
		res.Findings = append(res.Findings, Finding{Name: "etcdgate_inspection_big_values",
			Labels: []labels.Label{{Name: "prefix", Value: p}}, Value: float64(counts[p])})
		for _, v := range top[p] {
			res.Findings = append(res.Findings, Finding{Name: "etcdgate_inspection_big_value_bytes",
				Labels: []labels.Label{{Name: "key", Value: v.key}, {Name: "prefix", Value: p}}, Value: float64(v.size)})
		}
		all = append(all, top[p]...)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	res.Message = fmt.Sprintf("no value of %d keys reaches %d bytes (revision %d)", st.Keys, b.Threshold, st.Revision)
	if total > 0 {
		slices.SortFunc(all, func(x, y bigValue) int { return cmp.Compare(y.size, x.size) })
		var list []string
		for _, v := range all[:min(len(all), 5)] {
			list = append(list, fmt.Sprintf("%s %d bytes", v.key, v.size))
		}
		res.Status = StatusWarning
		res.Message = fmt.Sprintf("%d of %d keys have values of %d bytes or more (revision %d), largest: %s",
			total, st.Keys, b.Threshold, st.Revision, strings.Join(list, ", "))
	}
	return res, nil
}

// insertTop inserts v into top, kept largest first and at most n long.
func insertTop(top []bigValue, v bigValue, n int) []bigValue {
	i, _ := slices.BinarySearchFunc(top, v.size, func(e bigValue, size int) int { return cmp.Compare(size, e.size) })
	if i >= n {
		return top
	}
	top = slices.Insert(top, i, v)
	return top[:min(len(top), n)]
}
