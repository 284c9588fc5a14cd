package ingest

import "testing"

func TestMetricFamilyName(t *testing.T) {
	for _, tc := range []struct{ series, typ, want string }{
		{"prometheus_http_request_duration_seconds_bucket", "histogram", "prometheus_http_request_duration_seconds"},
		{"prometheus_http_request_duration_seconds_sum", "histogram", "prometheus_http_request_duration_seconds"},
		{"prometheus_http_request_duration_seconds_count", "histogram", "prometheus_http_request_duration_seconds"},
		{"prometheus_http_request_duration_seconds", "histogram", "prometheus_http_request_duration_seconds"}, // a native histogram
		{"go_gc_duration_seconds", "summary", "go_gc_duration_seconds"},
		{"go_gc_duration_seconds_sum", "summary", "go_gc_duration_seconds"},
		{"go_gc_duration_seconds_count", "summary", "go_gc_duration_seconds"},
		{"go_gc_duration_seconds_bucket", "summary", "go_gc_duration_seconds_bucket"},
		{"queue_bucket", "gaugehistogram", "queue"},
		{"queue_gsum", "gaugehistogram", "queue"},
		{"queue_gcount", "gaugehistogram", "queue"},
		{"queue_sum", "gaugehistogram", "queue_sum"},
		{"prometheus_http_requests_total", "counter", "prometheus_http_requests_total"},
		{"x_count", "counter", "x_count"},
		{"go_goroutines", "gauge", "go_goroutines"},
		{"up_sum", "unknown", "up_sum"},
		{"_count", "histogram", "_count"},
		{"", "histogram", ""},
	} {
		if got := metricFamilyName(tc.series, tc.typ); got != tc.want {
			t.Errorf("metricFamilyName(%q, %q) = %q, want %q", tc.series, tc.typ, got, tc.want)
		}
	}
}
