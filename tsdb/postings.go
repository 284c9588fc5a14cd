package tsdb

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// postings is the inverted index: for each label name and value, the
// sorted refs of the series carrying that pair, packed (postingList).
// size is the memory its lists hold, for the head's accounting.
type postings struct {
	mu   sync.RWMutex
	m    map[string]map[string]*postingList // guarded by mu
	all  postingList                        // guarded by mu
	size atomic.Int64                       // bytes of the lists; written under mu
	// recent holds, for each label position, the pair add indexed there
	// last (as symbol refs) and its list: the series of one target,
	// created together, share most pairs. Guarded by mu; an entry whose
	// list is deleted is cleared. While a list holds a ref, the symbols
	// of its pair stay in the table, so the refs keep their strings.
	recent []recentList
}

// recentList is an entry of postings.recent; l is nil when unset.
type recentList struct {
	name, value uint32
	l           *postingList
}

func newPostings() *postings {
	p := &postings{m: map[string]map[string]*postingList{}}
	p.size.Store(p.all.bytes())
	return p
}

// bytes returns the memory the lists hold.
func (p *postings) bytes() int64 { return p.size.Load() }

// add indexes ref under every name and value of the series spelled by
// refs in strs.
func (p *postings) add(ref SeriesRef, strs []string, syms symRefs) {
	p.mu.Lock()
	defer p.mu.Unlock()
	grown := p.addToLocked(&p.all, ref)
	pos := 0
	syms.each(func(n, v uint32) {
		if pos < len(p.recent) {
			if r := p.recent[pos]; r.l != nil && r.name == n && r.value == v {
				grown += p.addToLocked(r.l, ref)
				pos++
				return
			}
		}
		name, value := strs[n], strs[v]
		values := p.m[name]
		if values == nil {
			values = map[string]*postingList{}
			p.m[name] = values
		}
		l := values[value]
		if l == nil {
			l = &postingList{}
			values[value] = l
			grown += l.bytes()
		}
		grown += p.addToLocked(l, ref)
		if pos < maxRecentSymbols {
			if pos >= len(p.recent) {
				p.recent = append(p.recent, make([]recentList, pos+1-len(p.recent))...)
			}
			p.recent[pos] = recentList{name: n, value: v, l: l}
		}
		pos++
	})
	p.size.Add(grown)
}

// addToLocked adds ref to l and returns how much l grew.
func (p *postings) addToLocked(l *postingList, ref SeriesRef) int64 {
	before := l.bytes()
	l.add(ref)
	return l.bytes() - before
}

// forMatchers returns the sorted refs of the series matching all matchers,
// as a new slice the caller owns. Only the shortest list (or union of
// lists) is decoded whole; the others are sought into.
func (p *postings) forMatchers(ms []*labels.Matcher) []SeriesRef {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var (
		lists    []*postingList // equality matchers
		unions   [][]SeriesRef  // other matchers, decoded
		subtract [][]SeriesRef
	)
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
		if m.Type == labels.MatchEqual {
			l := p.m[m.Name][m.Value]
			if l == nil {
				return nil
			}
			lists = append(lists, l)
			continue
		}
		u := p.unionLocked(m.Name, m.Matches)
		if len(u) == 0 {
			return nil
		}
		unions = append(unions, u)
	}
	result := p.intersectLocked(lists, unions)
	for _, list := range subtract {
		result = withoutSorted(result, list)
	}
	return result
}

// intersectLocked returns the refs in every list and union (every ref
// when there are none): the shortest is decoded, the rest filter it.
func (p *postings) intersectLocked(lists []*postingList, unions [][]SeriesRef) []SeriesRef {
	slices.SortFunc(lists, func(a, b *postingList) int { return a.len() - b.len() })
	slices.SortFunc(unions, func(a, b []SeriesRef) int { return len(a) - len(b) })
	var result []SeriesRef
	switch {
	case len(lists) > 0 && (len(unions) == 0 || lists[0].len() < len(unions[0])):
		result = lists[0].appendTo(nil)
		lists = lists[1:]
	case len(unions) > 0:
		result = slices.Clone(unions[0])
		unions = unions[1:]
	default:
		return p.all.appendTo(nil)
	}
	for _, u := range unions {
		result = intersectSorted(result, u)
	}
	for _, l := range lists {
		result = l.intersect(result)
	}
	return result
}

func isMatchAll(m *labels.Matcher) bool {
	return m.Type == labels.MatchRegexp && m.Value == ".*"
}

// unionLocked merges the lists of every value of name that keep accepts,
// as a new slice. Callers hold p.mu.
func (p *postings) unionLocked(name string, keep func(string) bool) []SeriesRef {
	var lists []*postingList
	n := 0
	for v, list := range p.m[name] {
		if keep(v) {
			lists = append(lists, list)
			n += list.len()
		}
	}
	if len(lists) == 0 {
		return nil
	}
	merged := make([]SeriesRef, 0, n)
	for _, list := range lists {
		merged = list.appendTo(merged)
	}
	if len(lists) > 1 {
		slices.Sort(merged)
		merged = slices.Compact(merged)
	}
	return merged
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
		s.syms.refs().each(func(n, v uint32) {
			k := pair{strs[n], strs[v]}
			byPair[k] = append(byPair[k], s.ref)
		})
	}
	slices.Sort(refs)
	p.mu.Lock()
	defer p.mu.Unlock()
	grown := p.removeLocked(&p.all, refs)
	for k, del := range byPair {
		slices.Sort(del)
		values := p.m[k.name]
		l := values[k.value]
		if l == nil {
			continue
		}
		grown += p.removeLocked(l, del)
		if l.len() == 0 {
			grown -= l.bytes()
			delete(values, k.value)
			for i := range p.recent {
				if p.recent[i].l == l {
					p.recent[i] = recentList{}
				}
			}
		}
		if len(values) == 0 {
			delete(p.m, k.name)
		}
	}
	p.size.Add(grown)
}

// removeLocked takes the sorted refs out of l and returns how much l grew
// (a negative number).
func (p *postings) removeLocked(l *postingList, refs []SeriesRef) int64 {
	before := l.bytes()
	l.repack(refs)
	return l.bytes() - before
}
