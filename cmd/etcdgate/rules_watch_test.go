package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestFileWatcherReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yml", "groups: []\n")
	var reloads atomic.Int32
	w := newFileWatcher(slog.New(slog.DiscardHandler), func() []string { return []string{filepath.Join(dir, "*.yml")} },
		func() error { reloads.Add(1); return nil })
	w.start(10 * time.Millisecond)
	defer w.close()
	time.Sleep(50 * time.Millisecond)
	if n := reloads.Load(); n != 0 {
		t.Fatalf("%d reloads without a change", n)
	}
	write("a.yml", "groups: [] # edited\n")
	waitFor(t, 5*time.Second, "a reload after an edit", func() bool { return reloads.Load() == 1 })
	write("b.yml", "groups: []\n")
	waitFor(t, 5*time.Second, "a reload after a new file", func() bool { return reloads.Load() == 2 })
}
