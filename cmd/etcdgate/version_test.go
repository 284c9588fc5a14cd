package main

import "testing"

// TestSemVersion: every version the Makefile may stamp becomes a
// semantic version that Grafana's detection (npm semver) parses.
func TestSemVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v0.3.0":                  "0.3.0",
		"v0.3.0-5-gabc1234":       "0.3.0-5-gabc1234",
		"v0.3.0-5-gabc1234-dirty": "0.3.0-5-gabc1234-dirty",
		"v1.12.0-rc.1":            "1.12.0-rc.1",
		"0.4.1":                   "0.4.1",
		"dev":                     "0.0.0-dev",
		"":                        "0.0.0-dev",
		"803f684":                 "0.0.0-dev",
		"803f684-dirty":           "0.0.0-dev",
		"v0.3":                    "0.0.0-dev",
		"v01.2.3":                 "0.0.0-dev",
		"v0.3.0-01":               "0.0.0-dev",
		"v0.3.0-":                 "0.0.0-dev",
		"v0.3.0+build.7":          "0.3.0+build.7",
	} {
		if got := semVersion(in); got != want {
			t.Errorf("semVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
