package tsdb

import (
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// postings is the inverted index: for each label name and value, the
// sorted refs of the series carrying that pair. Lists are kept sorted on
// insert; refs are allocated in increasing order, so an insert is almost
// always an append.
type postings struct {
	mu  sync.RWMutex
	m   map[string]map[string][]SeriesRef // guarded by mu
	all []SeriesRef                       // guarded by mu
}

func newPostings() *postings {
	return &postings{m: map[string]map[string][]SeriesRef{}}
}

// add indexes ref under every name and value of the series spelled by
// refs in strs.
func (p *postings) add(ref SeriesRef, strs []string, syms symRefs) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = insertSorted(p.all, ref)
	syms.each(func(n, v uint32) {
		name, value := strs[n], strs[v]
		values := p.m[name]
		if values == nil {
			values = map[string][]SeriesRef{}
			p.m[name] = values
		}
		values[value] = insertSorted(values[value], ref)
	})
}

func insertSorted(list []SeriesRef, ref SeriesRef) []SeriesRef {
	list = append(list, ref)
	for i := len(list) - 1; i > 0 && list[i-1] > ref; i-- {
		list[i], list[i-1] = list[i-1], list[i]
	}
	return list
}

// forMatchers returns the sorted refs of the series matching all matchers,
// as a new slice the caller owns.
func (p *postings) forMatchers(ms []*labels.Matcher) []SeriesRef {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var intersect, subtract [][]SeriesRef
	for _, m := range ms {
		if isMatchAll(m) {
			continue
		}
		if m.Matches("") {
			// Matches series without the label too: remove those whose
			// value does not match instead of listing those that do.
			subtract = append(subtract, p.unionLocked(m.Name, func(v string) bool { return !m.Matches(v) }))
			continue
		}
		var list []SeriesRef
		if m.Type == labels.MatchEqual {
			list = p.m[m.Name][m.Value]
		} else {
			list = p.unionLocked(m.Name, m.Matches)
		}
		if len(list) == 0 {
			return nil
		}
		intersect = append(intersect, list)
	}
	var result []SeriesRef
	if len(intersect) == 0 {
		result = slices.Clone(p.all)
	} else {
		slices.SortFunc(intersect, func(a, b []SeriesRef) int { return len(a) - len(b) })
		result = slices.Clone(intersect[0])
		for _, list := range intersect[1:] {
			result = intersectSorted(result, list)
		}
	}
	for _, list := range subtract {
		result = withoutSorted(result, list)
	}
	return result
}

func isMatchAll(m *labels.Matcher) bool {
	return m.Type == labels.MatchRegexp && m.Value == ".*"
}

// unionLocked merges the lists of every value of name that keep accepts.
// Callers hold p.mu.
func (p *postings) unionLocked(name string, keep func(string) bool) []SeriesRef {
	var lists [][]SeriesRef
	n := 0
	for v, list := range p.m[name] {
		if keep(v) {
			lists = append(lists, list)
			n += len(list)
		}
	}
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	merged := make([]SeriesRef, 0, n)
	for _, list := range lists {
		merged = append(merged, list...)
	}
	slices.Sort(merged)
	return slices.Compact(merged)
}

// intersectSorted keeps in a (in place) the refs also in b.
func intersectSorted(a, b []SeriesRef) []SeriesRef {
	out, j := a[:0], 0
	for _, ref := range a {
		for j < len(b) && b[j] < ref {
			j++
		}
		if j == len(b) {
			break
		}
		if b[j] == ref {
			out = append(out, ref)
		}
	}
	return out
}

// withoutSorted removes from a (in place) the refs in b.
func withoutSorted(a, b []SeriesRef) []SeriesRef {
	out, j := a[:0], 0
	for _, ref := range a {
		for j < len(b) && b[j] < ref {
			j++
		}
		if j < len(b) && b[j] == ref {
			continue
		}
		out = append(out, ref)
	}
	return out
}

// labelNames returns the sorted label names in the index.
func (p *postings) labelNames() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	names := make([]string, 0, len(p.m))
	for name := range p.m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// labelValues returns the sorted values of name in the index.
func (p *postings) labelValues(name string) []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	values := make([]string, 0, len(p.m[name]))
	for v := range p.m[name] {
		values = append(values, v)
	}
	slices.Sort(values)
	return values
}

// deleteSeries removes the series from the lists of their labels (spelled
// in strs), dropping lists and names left empty. It touches only those
// lists: a checkpoint that evicts a batch of series does not walk the
// whole index.
func (p *postings) deleteSeries(strs []string, gone []*memSeries) {
	type pair struct{ name, value string }
	byPair := map[pair][]SeriesRef{}
	refs := make([]SeriesRef, 0, len(gone))
	for _, s := range gone {
		refs = append(refs, s.ref)
		s.syms.each(func(n, v uint32) {
			k := pair{strs[n], strs[v]}
			byPair[k] = append(byPair[k], s.ref)
		})
	}
	slices.Sort(refs)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = withoutSorted(p.all, refs)
	for k, del := range byPair {
		slices.Sort(del)
		values := p.m[k.name]
		if list := withoutSorted(values[k.value], del); len(list) == 0 {
			delete(values, k.value)
		} else {
			values[k.value] = list
		}
		if len(values) == 0 {
			delete(p.m, k.name)
		}
	}
}
