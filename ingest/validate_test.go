package ingest

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

var (
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
)

func TestNameValidators(t *testing.T) {
	for _, s := range []string{"", "a", "_", "__name__", "a1", "1a", "a-b", "a:b", ":a", "é", "A_Z_09", "a b", "le"} {
		if got, want := IsValidLabelName(s), labelNameRE.MatchString(s); got != want {
			t.Errorf("IsValidLabelName(%q) = %v, want %v", s, got, want)
		}
		if got, want := IsValidMetricName(s), metricNameRE.MatchString(s); got != want {
			t.Errorf("IsValidMetricName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestBuildLabels(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxLabelsPerSeries = 3
	cases := []struct {
		name   string
		in     []Label
		want   string
		reason string
	}{
		{"sorted and empty dropped", []Label{{Name: "job", Value: "etcd"}, {Name: "__name__", Value: "up"}, {Name: "zone", Value: ""}}, `{__name__="up", job="etcd"}`, ""},
		{"invalid name", []Label{{Name: "__name__", Value: "up"}, {Name: "a.b", Value: "x"}}, "", reasonInvalidLabelName},
		{"invalid metric name", []Label{{Name: "__name__", Value: "1up"}}, "", reasonInvalidMetricName},
		{"colon in metric name is valid", []Label{{Name: "__name__", Value: "job:up:sum"}}, `{__name__="job:up:sum"}`, ""},
		{"colon in label name is invalid", []Label{{Name: "__name__", Value: "up"}, {Name: "a:b", Value: "x"}}, "", reasonInvalidLabelName},
		{"duplicate", []Label{{Name: "__name__", Value: "up"}, {Name: "a", Value: "1"}, {Name: "a", Value: "2"}}, "", reasonDuplicateLabelName},
		{"missing name", []Label{{Name: "a", Value: "1"}}, "", reasonMissingMetricName},
		{"empty metric name is missing", []Label{{Name: "__name__", Value: ""}, {Name: "a", Value: "1"}}, "", reasonInvalidMetricName},
		{"too many", []Label{{Name: "__name__", Value: "up"}, {Name: "a", Value: "1"}, {Name: "b", Value: "1"}, {Name: "c", Value: "1"}}, "", reasonTooManyLabels},
		{"many empty values do not count", append([]Label{{Name: "__name__", Value: "up"}, {Name: "a", Value: "1"}}, emptyValues(100)...), `{__name__="up", a="1"}`, ""},
		{"far too many, counted before building", manyLabels(100_000), "", reasonTooManyLabels},
		{"empty values do not count", []Label{{Name: "__name__", Value: "up"}, {Name: "a", Value: "1"}, {Name: "b", Value: "1"}, {Name: "c", Value: ""}}, `{__name__="up", a="1", b="1"}`, ""},
		{"long name", []Label{{Name: "__name__", Value: "up"}, {Name: strings.Repeat("a", 1025), Value: "1"}}, "", reasonLabelNameTooLong},
		{"long value", []Label{{Name: "__name__", Value: "up"}, {Name: "a", Value: strings.Repeat("v", 4097)}}, "", reasonLabelValueTooLong},
		{"invalid utf-8", []Label{{Name: "__name__", Value: "up"}, {Name: "a", Value: "\xc3\x28"}}, "", reasonInvalidLabelValue},
	}
	b := labels.NewScratchBuilder(8)
	var lset labels.Labels
	for _, c := range cases {
		r := buildLabels(c.in, &lim, &b, &lset)
		switch {
		case c.reason == "" && r != nil:
			t.Errorf("%s: refused: %v", c.name, r)
		case c.reason != "" && (r == nil || r.reason != c.reason):
			t.Errorf("%s: got %v, want reason %s", c.name, r, c.reason)
		case c.reason == "" && lset.String() != c.want:
			t.Errorf("%s: built %s, want %s", c.name, lset.String(), c.want)
		}
	}
}

// manyLabels is a series of up and n labels with values.
func manyLabels(n int) []Label {
	ls := []Label{{Name: "__name__", Value: "up"}}
	for i := range n {
		ls = append(ls, Label{Name: "l" + strconv.Itoa(i), Value: "v"})
	}
	return ls
}

// emptyValues is n labels with empty values.
func emptyValues(n int) []Label {
	ls := make([]Label, n)
	for i := range ls {
		ls[i].Name = "e" + strconv.Itoa(i)
	}
	return ls
}
