package evaluator

import "github.com/prometheus/prometheus/model/labels"

// collector builds a Matrix from samples produced step by step, one
// series per label set. Two samples of one label set at one step fail the
// query, as in Prometheus.
type collector struct {
	ev    *evaluator
	index map[uint64]int
	out   Matrix
	msg   string // error for a duplicate label set
}

func newCollector(ev *evaluator) *collector {
	return &collector{ev: ev, index: map[uint64]int{}, msg: "vector cannot contain metrics with the same labelset"}
}

func (c *collector) add(metric labels.Labels, t int64, f float64) {
	h := metric.Hash()
	i, ok := c.index[h]
	if !ok {
		i = len(c.out)
		c.index[h] = i
		c.out = append(c.out, Series{Metric: metric})
	}
	s := &c.out[i]
	if n := len(s.Floats); n > 0 && s.Floats[n-1].T == t {
		raise("%s", c.msg)
	}
	s.Floats = append(s.Floats, FPoint{T: t, F: f})
	c.ev.hold(1)
}

func (c *collector) matrix() Matrix { return c.out }

// mapSeries applies fn to every point of every series; ok false drops the
// point. The metric name is dropped unless keepName.
func (ev *evaluator) mapSeries(m Matrix, keepName bool, fn func(i int, f float64) (float64, bool)) Matrix {
	out := m[:0]
	for _, s := range m {
		pts := s.Floats[:0]
		for _, p := range s.Floats {
			i := int((p.T - ev.start) / ev.interval)
			if f, ok := fn(i, p.F); ok {
				pts = append(pts, FPoint{T: p.T, F: f})
			}
		}
		if len(pts) == 0 {
			continue
		}
		if !keepName {
			s.Metric = dropName(s.Metric)
		}
		s.Floats = pts
		out = append(out, s)
	}
	if !keepName {
		out = ev.mergeSameLabels(out)
	}
	return out
}
