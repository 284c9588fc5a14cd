package tsdb

import (
	"cmp"
	"slices"
)

// Stats describes the head's cardinality, as Prometheus's
// /api/v1/status/tsdb reports it.
type Stats struct {
	NumSeries     int64
	NumLabelPairs int
	MinTime       int64 // math.MaxInt64 when empty
	MaxTime       int64 // math.MinInt64 when empty
	NumSymbols    int
	NumChunks     int64

	SeriesCountByMetricName     []Stat
	LabelValueCountByLabelName  []Stat
	MemoryInBytesByLabelName    []Stat
	SeriesCountByLabelValuePair []Stat
}

// Stat is one entry of a top-N list in Stats.
type Stat struct {
	Name  string
	Value uint64
}

// Stats returns the head's cardinality statistics, keeping the top limit
// entries of each list.
func (h *Head) Stats(limit int) Stats {
	st := Stats{
		NumSeries:  h.NumSeries(),
		MinTime:    h.MinTime(),
		MaxTime:    h.MaxTime(),
		NumSymbols: h.symbols.len(),
		NumChunks:  h.numChunks.Load(),
	}
	var metrics, valueCounts, memory, pairs []Stat
	p := h.index
	p.mu.RLock()
	for name, values := range p.m {
		var bytes uint64
		for value, refs := range values {
			n := uint64(refs.len())
			bytes += uint64(len(value)) * n
			pairs = append(pairs, Stat{Name: name + "=" + value, Value: n})
			if name == "__name__" {
				metrics = append(metrics, Stat{Name: value, Value: n})
			}
		}
		st.NumLabelPairs += len(values)
		valueCounts = append(valueCounts, Stat{Name: name, Value: uint64(len(values))})
		memory = append(memory, Stat{Name: name, Value: bytes})
	}
	p.mu.RUnlock()
	st.SeriesCountByMetricName = topStats(metrics, limit)
	st.LabelValueCountByLabelName = topStats(valueCounts, limit)
	st.MemoryInBytesByLabelName = topStats(memory, limit)
	st.SeriesCountByLabelValuePair = topStats(pairs, limit)
	return st
}

// topStats sorts by value, largest first (ties by name), and keeps limit.
func topStats(s []Stat, limit int) []Stat {
	slices.SortFunc(s, func(a, b Stat) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if len(s) > limit {
		s = s[:limit]
	}
	if s == nil {
		s = []Stat{}
	}
	return s
}
