package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// rulesPollInterval is how often rule and SLO files are checked for
// changes.
const rulesPollInterval = 5 * time.Second

// fileWatcher reloads the configuration when a rule or SLO file changes
// (content, size or mtime of any file the globs match, or the set of
// files), as Prometheus does on SIGHUP but without one.
type fileWatcher struct {
	logger *slog.Logger
	reload func() error
	globs  func() []string // the current globs, absolute

	stop chan struct{}
	wg   sync.WaitGroup
}

func newFileWatcher(logger *slog.Logger, globs func() []string, reload func() error) *fileWatcher {
	return &fileWatcher{logger: logger, reload: reload, globs: globs, stop: make(chan struct{})}
}

// fingerprint names every matched file with its size and mtime.
func fingerprint(globs []string) string {
	var parts []string
	for _, g := range globs {
		files, _ := globRelative("", g)
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				parts = append(parts, fmt.Sprintf("%s:%d:%d", f, st.Size(), st.ModTime().UnixNano()))
			}
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// start polls until close; a failed reload is logged and retried only
// after the files change again.
func (w *fileWatcher) start(interval time.Duration) {
	last := fingerprint(w.globs())
	w.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			fp := fingerprint(w.globs())
			if fp == last {
				continue
			}
			last = fp
			w.logger.Info("rule files changed; reloading")
			if err := w.reload(); err != nil {
				w.logger.Error("reload after a rule file change failed; previous configuration stays in force", "err", err)
			}
		}
	})
}

func (w *fileWatcher) close() {
	close(w.stop)
	w.wg.Wait()
}
