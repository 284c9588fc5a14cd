package relabel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// registryFile is the YAML shape of a registry file:
//
//	clusters:
//	  - cluster: etcd-prod-eu-1
//	    product: payments
//	    scenario: business
//	    size: large
//	    region: eu-west
//	    labels: {team: storage}
//	    kubernetes_clusters: [k8s-prod-eu-1]
//	    endpoints: [https://10.0.0.1:2379]
//	    override: false
type registryFile struct {
	Clusters []Record `yaml:"clusters"`
}

// ParseRegistry parses a registry file. Syntax errors, unknown keys,
// unknown sizes and duplicate clusters are errors naming their line.
func ParseRegistry(data []byte) (map[string]*Record, error) {
	var f registryFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// A second, loose pass gives each entry's line: the strict decode
	// above has no place to keep it.
	var lines struct {
		Clusters []yaml.Node `yaml:"clusters"`
	}
	_ = yaml.Unmarshal(data, &lines)
	out := make(map[string]*Record, len(f.Clusters))
	firstLine := make(map[string]int, len(f.Clusters))
	for i := range f.Clusters {
		rec := &f.Clusters[i]
		line := 0
		if i < len(lines.Clusters) {
			line = lines.Clusters[i].Line
		}
		if err := rec.Validate(); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if prev, dup := firstLine[rec.Cluster]; dup {
			return nil, fmt.Errorf("line %d: duplicate cluster %q (first at line %d)", line, rec.Cluster, prev)
		}
		firstLine[rec.Cluster] = line
		out[rec.Cluster] = rec
	}
	return out, nil
}

// LoadRegistryFile reads and parses a registry file.
func LoadRegistryFile(path string) (map[string]*Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry file: %w", err)
	}
	recs, err := ParseRegistry(data)
	if err != nil {
		return nil, fmt.Errorf("registry file %s: %w", path, err)
	}
	return recs, nil
}

// FileWatcher reloads the registry file when its modification time or
// size changes. Polling every few seconds is cheap and works on every
// filesystem, including the symlink swaps of Kubernetes ConfigMaps.
type FileWatcher struct {
	path     string
	registry *Registry
	logger   *slog.Logger
	onError  func(error) // counts failed loads; may be nil

	mu       sync.Mutex // serialises loads from Run and from reloads
	lastMod  time.Time  // guarded by mu
	lastSize int64      // guarded by mu
}

// NewFileWatcher returns a watcher of path feeding registry.
func NewFileWatcher(path string, registry *Registry, logger *slog.Logger, onError func(error)) *FileWatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FileWatcher{path: path, registry: registry, logger: logger, onError: onError}
}

// Load reads the file now. On error the registry keeps its previous
// clusters.
func (w *FileWatcher) Load() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.loadLocked()
}

func (w *FileWatcher) loadLocked() error {
	st, statErr := os.Stat(w.path)
	recs, err := LoadRegistryFile(w.path)
	if statErr == nil {
		// Remember the version even when it failed: a broken file is
		// reported once, not every poll.
		w.lastMod, w.lastSize = st.ModTime(), st.Size()
	}
	if err != nil {
		if w.onError != nil {
			w.onError(err)
		}
		return err
	}
	w.registry.SetFile(recs)
	return nil
}

// Run polls the file every interval until stop is closed.
func (w *FileWatcher) Run(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := w.reloadIfChanged(); err != nil {
				w.logger.Error("registry file not reloaded; previous clusters stay in force", "err", err)
			}
		}
	}
}

// reloadIfChanged loads the file if its modification time or size moved.
func (w *FileWatcher) reloadIfChanged() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := os.Stat(w.path)
	if err != nil || st.ModTime().Equal(w.lastMod) && st.Size() == w.lastSize {
		return nil
	}
	if err := w.loadLocked(); err != nil {
		return err
	}
	w.logger.Info("registry file reloaded", "file", w.path, "clusters", w.registry.Len())
	return nil
}
