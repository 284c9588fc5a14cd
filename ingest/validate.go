package ingest

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// Limits bound what one request and one series may carry. They are
// reloadable: an Ingester reads them once per request.
type Limits struct {
	MaxCompressedBodyBytes   int           // snappy body as received
	MaxDecompressedBodyBytes int           // protobuf after snappy; stops snappy bombs
	MaxLabelsPerSeries       int           // after empty values are dropped
	MaxLabelNameLength       int           // bytes
	MaxLabelValueLength      int           // bytes
	MaxFutureDrift           time.Duration // how far past now a sample may be

	// What one request may decode into, checked by the decoder before
	// each buffer grows.
	MaxSeriesPerRequest  int
	MaxLabelsPerRequest  int // labels of all series together
	MaxSamplesPerRequest int
	// The budget all write requests share (admission.go): past either,
	// writes are refused with 429.
	MaxInflightWriteRequests int
	MaxInflightWriteBytes    int // bodies, decompressed bodies, decoded structs
	// MaxConcurrentWrites is how many admitted requests decode and append
	// at once; the others wait their turn (write_gate.go).
	MaxConcurrentWrites int
	// WriteRequestTimeout bounds how long a write's body may take to
	// arrive and its answer to be taken, from admission: a sender that
	// trickles its body, or never reads the answer, holds its slot no
	// longer than this.
	WriteRequestTimeout time.Duration
}

// DefaultLimits returns limits that a fleet of etcd scrapers never hits:
// Prometheus sends at most a few MiB per request and etcd series carry
// about a dozen labels.
//
// WriteRequestTimeout: Prometheus gives up on a request after 30 s
// (remote_timeout); a minute lets a slow link finish a large body.
//
// A decompressed body of 32 MiB is four times the largest block vmagent
// sends (-remoteWrite.maxBlockSize, 8 MiB) and ten times a Prometheus
// request; each request in flight holds it whole.
//
// Per request: Prometheus sends at most max_samples_per_send samples
// (2,000 by default) and vmagent up to 10,000, one sample a series; 100k
// series and 1M samples are 10 to 50 times that, 1M labels is 2.5 times
// 10,000 series of 40 labels (the most a series may have), and they hold
// at most 6 MiB, 32 MiB and 16 MiB of decoded structs. The
// in-flight budget defaults are for a machine of a few GiB; etcdgate serve
// sizes them from its memory limit.
func DefaultLimits() Limits {
	return Limits{
		MaxCompressedBodyBytes:   16 << 20,
		MaxDecompressedBodyBytes: 32 << 20,
		MaxLabelsPerSeries:       40,
		MaxLabelNameLength:       1024,
		MaxLabelValueLength:      4096,
		MaxFutureDrift:           10 * time.Minute,
		MaxSeriesPerRequest:      100_000,
		MaxLabelsPerRequest:      1_000_000,
		MaxSamplesPerRequest:     1_000_000,
		MaxInflightWriteRequests: 64,
		MaxInflightWriteBytes:    256 << 20,
		MaxConcurrentWrites:      DefaultMaxConcurrentWrites(),
		WriteRequestTimeout:      time.Minute,
	}
}

// Validate reports the first invalid limit.
func (l Limits) Validate() error {
	switch {
	case l.MaxCompressedBodyBytes <= 0:
		return fmt.Errorf("max compressed body bytes %d must be positive", l.MaxCompressedBodyBytes)
	case l.MaxDecompressedBodyBytes < l.MaxCompressedBodyBytes:
		return fmt.Errorf("max decompressed body bytes %d is below max compressed body bytes %d", l.MaxDecompressedBodyBytes, l.MaxCompressedBodyBytes)
	case l.MaxLabelsPerSeries <= 0:
		return fmt.Errorf("max labels per series %d must be positive", l.MaxLabelsPerSeries)
	case l.MaxLabelNameLength <= 0 || l.MaxLabelValueLength <= 0:
		return errors.New("max label name and value lengths must be positive")
	case l.MaxFutureDrift < 0:
		return fmt.Errorf("max future drift %s is negative", l.MaxFutureDrift)
	case l.MaxSeriesPerRequest <= 0 || l.MaxLabelsPerRequest <= 0 || l.MaxSamplesPerRequest <= 0:
		return errors.New("max series, labels and samples per request must be positive")
	case l.WriteRequestTimeout <= 0:
		return fmt.Errorf("write request timeout %s must be positive", l.WriteRequestTimeout)
	case l.MaxConcurrentWrites <= 0:
		return fmt.Errorf("max concurrent writes %d must be positive", l.MaxConcurrentWrites)
	case l.MaxInflightWriteRequests <= 0:
		return fmt.Errorf("max in-flight write requests %d must be positive", l.MaxInflightWriteRequests)
	case l.MaxInflightWriteBytes < l.MaxCompressedBodyBytes:
		return fmt.Errorf("max in-flight write bytes %d is below max compressed body bytes %d: the largest body could never be admitted",
			l.MaxInflightWriteBytes, l.MaxCompressedBodyBytes)
	}
	return nil
}

// Reasons a series or sample is refused, as used in metrics labels.
const (
	reasonInvalidLabelName   = "invalid_label_name"
	reasonInvalidMetricName  = "invalid_metric_name"
	reasonInvalidLabelValue  = "invalid_label_value"
	reasonMissingMetricName  = "missing_metric_name"
	reasonDuplicateLabelName = "duplicate_label_name"
	reasonTooManyLabels      = "too_many_labels"
	reasonLabelNameTooLong   = "label_name_too_long"
	reasonLabelValueTooLong  = "label_value_too_long"
	reasonTooFarInFuture     = "too_far_in_future"
	reasonNativeHistogram    = "native_histogram_unsupported"
	reasonHADedup            = "ha_dedup"
	reasonMetadataTooLong    = "metadata_too_long"
	reasonExemplar           = "exemplar_unsupported"
	reasonStartTimestamp     = "invalid_start_timestamp"
)

// refusal is why a series or sample was refused. It wraps ErrInvalidSeries
// or, for samples the store refused, ErrRejectedSamples.
type refusal struct {
	reason string
	msg    string
	class  error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.class }

func invalid(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, msg: fmt.Sprintf(format, args...), class: ErrInvalidSeries}
}

// IsValidLabelName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]*.
//
// The project has one naming rule, Prometheus's legacy one, checked by
// one function wherever a name is accepted or made: this one and
// model.LegacyValidation.IsValidLabelName, which it calls, in ingest,
// relabel, rules, SLOs, the prober and the engine's label_replace,
// label_join and count_values. So a recording rule cannot make a name
// that ingest refuses. tsdb and relabel import nothing of the project,
// hence a function of prometheus/common/model rather than one of ours.
func IsValidLabelName(name string) bool { return model.LegacyValidation.IsValidLabelName(name) }

// IsValidMetricName reports whether name matches [a-zA-Z_:][a-zA-Z0-9_:]*,
// with model.LegacyValidation as IsValidLabelName does.
func IsValidMetricName(name string) bool { return model.LegacyValidation.IsValidMetricName(name) }

// validateLabel checks one label pair against the naming rules and limits.
func validateLabel(l Label, lim *Limits) *refusal {
	switch {
	case len(l.Name) > lim.MaxLabelNameLength:
		return invalid(reasonLabelNameTooLong, "label name %.64q... is %d bytes, longer than the limit of %d", l.Name, len(l.Name), lim.MaxLabelNameLength)
	case !IsValidLabelName(l.Name):
		return invalid(reasonInvalidLabelName, "invalid label name %q", l.Name)
	case len(l.Value) > lim.MaxLabelValueLength:
		return invalid(reasonLabelValueTooLong, "value of label %q is %d bytes, longer than the limit of %d", l.Name, len(l.Value), lim.MaxLabelValueLength)
	case !validUTF8(l.Value):
		return invalid(reasonInvalidLabelValue, "value of label %q is not valid UTF-8", l.Name)
	case l.Name == model.MetricNameLabel && !IsValidMetricName(l.Value):
		return invalid(reasonInvalidMetricName, "invalid metric name %q", l.Value)
	}
	return nil
}

// buildLabels validates a decoded series' labels and writes them, sorted
// and without empty values, into lset using b as scratch. lset's memory is
// reused across calls: the caller must not keep it.
//
// Senders send labels sorted (the remote-write spec requires it), so the
// common path checks order and duplicates in one pass and never sorts.
func buildLabels(src []Label, lim *Limits, b *labels.ScratchBuilder, lset *labels.Labels) *refusal {
	// Counted before anything is built: a series of a million labels
	// must not grow the pooled builder to a million.
	if len(src) > lim.MaxLabelsPerSeries {
		n := 0
		for _, l := range src {
			if l.Value != "" {
				n++
			}
		}
		if n > lim.MaxLabelsPerSeries {
			return invalid(reasonTooManyLabels, "series %s has %d labels, more than the limit of %d", metricNameOf(src), n, lim.MaxLabelsPerSeries)
		}
	}
	b.Reset()
	sorted, hasName, n, prev := true, false, 0, ""
	for _, l := range src {
		if err := validateLabel(l, lim); err != nil {
			return err
		}
		if l.Value == "" {
			continue
		}
		if n > 0 && l.Name <= prev {
			sorted = false // or a duplicate: told apart after sorting
		}
		prev, n = l.Name, n+1
		hasName = hasName || l.Name == model.MetricNameLabel
		b.Add(l.Name, l.Value)
	}
	if !sorted {
		b.Sort()
	}
	b.Overwrite(lset)
	if !sorted {
		if name, dup := lset.HasDuplicateLabelNames(); dup {
			return invalid(reasonDuplicateLabelName, "duplicate label name %q in series %s", name, lset.String())
		}
	}
	if !hasName {
		return invalid(reasonMissingMetricName, "series %s has no %s label", lset.String(), model.MetricNameLabel)
	}
	if n > lim.MaxLabelsPerSeries {
		return invalid(reasonTooManyLabels, "series %s has %d labels, more than the limit of %d", lset.String(), n, lim.MaxLabelsPerSeries)
	}
	return nil
}

// validUTF8 is utf8.ValidString with a byte loop in front: label values
// are short and almost always ASCII, where the loop is cheaper than
// ValidString's setup (a profile showed ValidString at 28% of validation).
func validUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return utf8.ValidString(s[i:])
		}
	}
	return true
}

// DefaultMaxConcurrentWrites is two writes a core (GOMAXPROCS, which
// follows the cgroup's CPU limit): one decoding or appending while the
// other waits on a lock or the WAL.
func DefaultMaxConcurrentWrites() int { return 2 * runtime.GOMAXPROCS(0) }
