// Package testbin finds the external programs some tests run: Debian's
// Prometheus, promtool and Alertmanager, and a headless Chromium. A test
// whose program is missing fails, on every machine, naming the program
// and the package that provides it: a test that skipped would pass
// without testing anything. .ci/run installs them.
package testbin

import (
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Prometheus3Version is the Prometheus 3 release the remote write 2.0
// and remote read tests run; it is the prometheus module go.mod requires.
const Prometheus3Version = "v0.316.0"

// Prometheus returns the path of Debian's prometheus (2.42), the
// remote-write sender and reference server of the integration tests.
func Prometheus(t testing.TB) string {
	t.Helper()
	return find(t, "prometheus", "prometheus")
}

// Promtool returns the path of promtool, which comes with Debian's
// prometheus package; tests check generated rules with it.
func Promtool(t testing.TB) string {
	t.Helper()
	return find(t, "prometheus", "promtool")
}

// Prometheus3 returns the path of a Prometheus 3 server built from the
// Go module proxy (a remote write 2.0 sender and a remote read client):
// prometheus3 on PATH, else $GOPATH/bin/prometheus3. .ci/run builds it
// (make prometheus3).
func Prometheus3(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus3"); err == nil {
		return p
	}
	p := filepath.Join(build.Default.GOPATH, "bin", "prometheus3")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatalf("this test runs Prometheus 3 (prometheus3 on PATH or %s), which is missing: build it with `make prometheus3` "+
		"(go install github.com/prometheus/prometheus/cmd/prometheus@%s, renamed; .ci/run does)", p, Prometheus3Version)
	return ""
}

// Alertmanager returns the path of Debian's Alertmanager (0.25), which
// receives the alerts of the rule and notifier tests.
func Alertmanager(t testing.TB) string {
	t.Helper()
	return find(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
}

// Chromium returns the path of a headless Chromium, for tests of the
// built-in pages.
func Chromium(t testing.TB) string {
	t.Helper()
	return find(t, "chromium", "chromium", "chromium-browser")
}

// find returns the path of the first of names on PATH, or fails t saying
// which package to install.
func find(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("this test runs %s, which is not on PATH: install Debian's %s package (apt-get install %s; .ci/run does)",
		strings.Join(names, " or "), pkg, pkg)
	return ""
}
