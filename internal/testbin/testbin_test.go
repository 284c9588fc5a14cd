package testbin

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and
// ends the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a recorder in a goroutine of its own and returns the
// path fn found and the failure message.
func run(t *testing.T, fn func(testing.TB) string) (string, string) {
	r := &fatalRecorder{TB: t}
	var path string
	done := make(chan struct{})
	go func() {
		defer close(done)
		path = fn(r)
	}()
	<-done
	return path, r.msg
}

func TestMissingBinaryFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		fn   func(testing.TB) string
		want string
	}{
		{Prometheus, "runs prometheus, which is not on PATH: install Debian's prometheus package"},
		{Promtool, "runs promtool, which is not on PATH: install Debian's prometheus package"},
		{Alertmanager, "runs prometheus-alertmanager or alertmanager, which is not on PATH: install Debian's prometheus-alertmanager package"},
		{Chromium, "install Debian's chromium package"},
	} {
		if path, msg := run(t, tc.fn); path != "" || !strings.Contains(msg, tc.want) {
			t.Errorf("path %q, failure %q; want a failure with %q", path, msg, tc.want)
		}
	}
}

func TestFoundBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "alertmanager")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if path, msg := run(t, Alertmanager); path != bin || msg != "" {
		t.Fatalf("path %q, failure %q", path, msg)
	}
}
