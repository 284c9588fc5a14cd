package ingest

import "strings"

// metricFamilyName returns the metric family a series of type typ (one
// of Prometheus's lower-case type names) belongs to, given the series'
// metric name: remote write 2.0 carries metadata per series, and
// Prometheus's /api/v1/metadata, which etcdgate's answers like, keys it by
// family. The suffixes are those Prometheus's scrape loop accepts as part
// of a family (isSeriesPartOfFamily in scrape/scrape.go): a histogram's
// _bucket, _sum and _count series, a gauge histogram's _bucket, _gsum and
// _gcount, a summary's _sum and _count. A counter keeps its name: scraped
// from the text format its family is named with _total, as the series
// (Prometheus serves its own metrics so). The result is a substring of
// series; a name that is only a suffix is kept whole.
func metricFamilyName(series, typ string) string {
	var suffixes []string
	switch typ {
	case "histogram":
		suffixes = histogramSuffixes
	case "gaugehistogram":
		suffixes = gaugeHistogramSuffixes
	case "summary":
		suffixes = summarySuffixes
	default:
		return series
	}
	for _, s := range suffixes {
		if family, ok := strings.CutSuffix(series, s); ok && family != "" {
			return family
		}
	}
	return series
}

var (
	histogramSuffixes      = []string{"_bucket", "_sum", "_count"}
	gaugeHistogramSuffixes = []string{"_bucket", "_gsum", "_gcount"}
	summarySuffixes        = []string{"_sum", "_count"}
)
