package ingest

import (
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
)

// FuzzValidateLabel checks the label validator against its definition
// (the regular expressions and UTF-8 rule of Prometheus) and that a label
// set it accepts is well-formed: sorted, no empty values, no duplicates,
// with a metric name.
func FuzzValidateLabel(f *testing.F) {
	for _, s := range [][3]string{
		{"job", "etcd", "up"}, {"1a", "", "up"}, {"__name__", "x", "up"}, {"a-b", "v", "1up"},
		{"le", "+Inf", "etcd_disk_wal_fsync_duration_seconds_bucket"}, {"a", "\xff", "up"},
		{"_", "ok", "job:up:sum"}, {"", "", ""}, {"é", "é", "é"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	lim := DefaultLimits()
	b := labels.NewScratchBuilder(4)
	var lset labels.Labels
	f.Fuzz(func(t *testing.T, name, value, metric string) {
		l := Label{Name: name, Value: value}
		r := validateLabel(l, &lim)
		want := len(name) <= lim.MaxLabelNameLength && labelNameRE.MatchString(name) &&
			len(value) <= lim.MaxLabelValueLength && utf8.ValidString(value) &&
			(name != "__name__" || metricNameRE.MatchString(value))
		if (r == nil) != want {
			t.Fatalf("validateLabel(%q, %q) = %v, want valid=%v", name, value, r, want)
		}
		if r != nil {
			return
		}
		in := []Label{l, {Name: "__name__", Value: metric}}
		if buildLabels(in, &lim, &b, &lset) != nil {
			return
		}
		if lset.Get("__name__") == "" {
			t.Fatalf("accepted %v without a metric name", lset)
		}
		if _, dup := lset.HasDuplicateLabelNames(); dup {
			t.Fatalf("accepted duplicate names: %v", lset)
		}
		prev := ""
		lset.Range(func(l labels.Label) {
			if l.Value == "" || l.Name < prev {
				t.Fatalf("accepted %v: empty value or unsorted", lset)
			}
			prev = l.Name
		})
	})
}
