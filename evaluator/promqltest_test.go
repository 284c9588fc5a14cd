package evaluator

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
)

// skippedFiles are Prometheus test files of features etcdgate does not
// have: all are native histograms or experimental features that
// Prometheus itself enables only behind a feature flag.
var skippedFiles = map[string]string{
	"native_histograms.test":   "native histograms are not stored",
	"duration_expression.test": "experimental duration arithmetic in ranges and offsets (feature flag), which metricsql does not parse",
	"extended_vectors.test":    "experimental anchored and smoothed range selectors (feature flag), which metricsql does not parse",
	"fill-modifier.test":       "experimental fill modifiers of binary operators (feature flag)",
	"info.test":                "experimental info() function (feature flag), which metricsql does not parse",
	"start_timestamps.test":    "start timestamps are not stored (remote write 1.0 carries none)",
	"type_and_unit.test":       "experimental __type__ and __unit__ labels (feature flag), not sent by remote write 1.0",
	"name_label_dropping.test": "experimental delayed removal of __name__ (feature flag); etcdgate drops it where Prometheus does by default",
}

// experimentalFuncs are Prometheus functions behind its
// promql-experimental-functions flag that metricsql does not parse (all
// but histogram_quantiles, which etcdgate does not implement).
var experimentalFuncs = []string{
	"double_exponential_smoothing", "integral", "limit_ratio", "max_of", "min_of",
	"range", "start_timestamp", "ts_of_first_over_time", "ts_of_last_over_time",
	"ts_of_max_over_time", "ts_of_min_over_time", "histogram_quantiles", "limitk",
}

var experimentalCall = regexp.MustCompile(`\b(` + strings.Join(experimentalFuncs, "|") + `)\s*\(`)

// skippedEvals are single evals skipped, by file and line, with the
// reason; skippedByRule adds the evals skipped by a rule.
var skippedEvals = map[string]lineReasons{
	"aggregators.test": lines(nativeBySelector, 239, 252, 378, 382, 386, 390, 404, 408, 412, 416, 520, 849, 852).
		and(positions, 544),
	"functions.test":     lines(nativeBySelector, 388, 445, 449, 1945),
	"operators.test":     lines(nativeBySelector, 292),
	"histograms.test":    lines(positions, 740, 1218, 1228, 1239, 1249, 1260, 1273, 1284),
	"range_queries.test": lines(positions, 109, 112, 115, 118, 121),
}

const (
	nativeBySelector = "reads native histograms through a selector that does not name them"
	positions        = "expects annotation text with source positions, which metricsql's AST does not carry (the message itself matches)"
)

type lineReasons map[int]string

func lines(reason string, ls ...int) lineReasons { return lineReasons{}.and(reason, ls...) }

func (lr lineReasons) and(reason string, ls ...int) lineReasons {
	for _, l := range ls {
		lr[l] = reason
	}
	return lr
}

// TestPrometheusSuite runs Prometheus's own PromQL test files against
// this engine over our tsdb.Head.
func TestPrometheusSuite(t *testing.T) {
	dir := promqlTestdata(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.test"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in %s: %v", dir, err)
	}
	engine := queryEngine{opts: Options{LookbackDelta: 5 * time.Minute, Timeout: time.Minute, MaxSamples: 50_000_000}}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			if reason, ok := skippedFiles[name]; ok {
				t.Skip(reason)
			}
			content, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			skips := skippedByRule(string(content))
			if len(skippedEvals[name]) > 0 {
				t.Logf("%d evals skipped by name", len(skippedEvals[name]))
			}
			for line, reason := range skippedEvals[name] {
				skips[line] = reason
			}
			logSkips(t, skips)
			promqltest.RunTestWithStorage(t, withoutEvals(string(content), skips), engine, newHeadStorage)
		})
	}
}

// promqlTestdata finds the test files of the Prometheus module in use.
func promqlTestdata(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/prometheus/prometheus").Output()
	if err != nil {
		t.Fatalf("locating the prometheus module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "promql", "promqltest", "testdata")
}

// withoutEvals blanks the eval commands starting at the given lines (and
// their expectation lines), keeping line numbers intact.
func withoutEvals(content string, lines map[int]string) string {
	if len(lines) == 0 {
		return content
	}
	ls := strings.Split(content, "\n")
	for i := 0; i < len(ls); i++ {
		if _, skip := lines[i+1]; !skip {
			continue
		}
		ls[i] = ""
		for i+1 < len(ls) && strings.TrimSpace(ls[i+1]) != "" && !isCommand(ls[i+1]) {
			i++
			ls[i] = ""
		}
	}
	return strings.Join(ls, "\n")
}

func isCommand(line string) bool {
	for _, c := range []string{"load", "eval", "clear"} {
		if strings.HasPrefix(line, c) {
			return true
		}
	}
	return false
}

var evalLine = regexp.MustCompile(`^eval\S*\s+(?:instant|range)\s+(?:at\s+\S+\s+|from\s+\S+\s+to\s+\S+\s+step\s+\S+\s+)?(.+)$`)

// skippedByRule finds the evals that read native histograms (a metric
// loaded with histogram samples since the last clear, or histogram
// results expected) or call an experimental function metricsql does not
// parse.
func skippedByRule(content string) map[int]string {
	skips := map[int]string{}
	hist := map[string]bool{}
	lines := strings.Split(content, "\n")
	inLoad, nhcb := false, false
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "clear"):
			clear(hist)
			inLoad = false
		case strings.HasPrefix(l, "load"):
			inLoad, nhcb = true, strings.HasPrefix(l, "load_with_nhcb")
		case strings.HasPrefix(l, "eval"):
			inLoad = false
			if reason := evalSkipReason(lines, i, hist); reason != "" {
				skips[i+1] = reason
			}
		case inLoad && trimmed != "" && !strings.HasPrefix(trimmed, "#"):
			if nhcb || strings.Contains(l, "{{") {
				// load_with_nhcb stores the classic series as they are
				// and a native histogram under the base name.
				name := strings.FieldsFunc(trimmed, func(r rune) bool { return r == '{' || r == ' ' })[0]
				if nhcb {
					for _, suffix := range []string{"_bucket", "_count", "_sum"} {
						name = strings.TrimSuffix(name, suffix)
					}
				}
				hist[name] = true
			}
		}
	}
	return skips
}

func evalSkipReason(lines []string, i int, hist map[string]bool) string {
	m := evalLine.FindStringSubmatch(lines[i])
	if m == nil {
		return ""
	}
	query := m[1]
	if m := experimentalCall.FindStringSubmatch(query); m != nil {
		return "calls experimental function " + m[1]
	}
	for name := range hist {
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(query) {
			return "reads native histogram series " + name
		}
	}
	for k := i + 1; k < len(lines) && strings.TrimSpace(lines[k]) != "" && !isCommand(lines[k]); k++ {
		if strings.Contains(lines[k], "{{") {
			return "expects native histogram results"
		}
	}
	return ""
}

func logSkips(t *testing.T, skips map[int]string) {
	lines := make([]int, 0, len(skips))
	for l := range skips {
		lines = append(lines, l)
	}
	sort.Ints(lines)
	for _, l := range lines {
		t.Logf("skipped eval at line %d: %s", l, skips[l])
	}
}
