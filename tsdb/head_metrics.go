package tsdb

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// headMetrics are the head's self-metrics, built per head so that two
// heads can live in one process (and one test).
type headMetrics struct {
	seriesCreated      prometheus.Counter
	seriesEvicted      prometheus.Counter
	seriesRevived      prometheus.Counter
	samplesAppended    prometheus.Counter
	outOfOrderAppended prometheus.Counter
	duplicatesIgnored  prometheus.Counter
	commitConflicts    prometheus.Counter
	samplesRejected    *prometheus.CounterVec
}

func newHeadMetrics(h *Head, reg prometheus.Registerer) *headMetrics {
	m := &headMetrics{
		seriesCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_head_series_created_total",
			Help: "Series created in the head.",
		}),
		seriesEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_head_series_evicted_total",
			Help: "Inactive series that left memory; their data stays queryable from the store.",
		}),
		seriesRevived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_head_series_revived_total",
			Help: "Evicted series that received samples again and came back under their old ref.",
		}),
		samplesAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_head_samples_appended_total",
			Help: "Samples appended to the head.",
		}),
		outOfOrderAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_head_out_of_order_samples_appended_total",
			Help: "Samples appended behind the newest sample of their series, within the out-of-order window.",
		}),
		duplicatesIgnored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_head_duplicate_samples_ignored_total",
			Help: "Samples ignored because the series already held the same value at that timestamp.",
		}),
		commitConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_head_commit_conflicts_total",
			Help: "Samples accepted by Append but refused at Commit because a concurrent batch wrote the series first.",
		}),
		samplesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_tsdb_head_samples_rejected_total",
			Help: "Samples the head refused, by reason.",
		}, []string{"reason"}),
	}
	for _, r := range []string{"out_of_order", "too_old", "duplicate_timestamp", "series_limit", "head_bytes_limit"} {
		m.samplesRejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.seriesCreated, m.seriesEvicted, m.seriesRevived, m.samplesAppended, m.outOfOrderAppended,
			m.duplicatesIgnored, m.commitConflicts, m.samplesRejected,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "etcdgate_tsdb_head_series",
				Help: "Active series in the head.",
			}, func() float64 { return float64(h.NumSeries()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "etcdgate_tsdb_head_bytes",
				Help: "Memory the head accounts for (limits.max_head_bytes bounds it): samples of active series, every indexed series, the label symbols and the metric metadata.",
			}, func() float64 { return float64(h.Bytes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "etcdgate_tsdb_index_series",
				Help: "Series in the index, active or with samples only in the store.",
			}, func() float64 { return float64(h.NumIndexedSeries()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "etcdgate_tsdb_head_symbols",
				Help: "Distinct label names and values interned by the head.",
			}, func() float64 { return float64(h.symbols.len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "etcdgate_tsdb_head_removed_series_waiting",
				Help: "Series out of the index whose memory waits for appenders and queriers that started before their removal to end; a value that stays up means a reader that never ends.",
			}, func() float64 { return float64(h.removed.len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "etcdgate_tsdb_head_symbol_bytes",
				Help: "Memory the head accounts for its label symbols, part of etcdgate_tsdb_head_bytes.",
			}, func() float64 { return float64(h.symbols.size()) }),
		)
	}
	return m
}

// RejectReason names the class of a refused sample for metrics and
// messages: out_of_order, too_old or duplicate_timestamp.
func RejectReason(err error) string {
	switch {
	case errors.Is(err, ErrOutOfOrderSample):
		return "out_of_order"
	case errors.Is(err, ErrTooOldSample):
		return "too_old"
	case errors.Is(err, ErrDuplicateSampleForTimestamp):
		return "duplicate_timestamp"
	case errors.Is(err, ErrSeriesLimit):
		return "series_limit"
	case errors.Is(err, ErrHeadBytesLimit):
		return "head_bytes_limit"
	}
	return "other"
}

func (m *headMetrics) rejected(err error) prometheus.Counter {
	return m.samplesRejected.WithLabelValues(RejectReason(err))
}
