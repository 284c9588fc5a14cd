package tsdb

import (
	"fmt"
	"path/filepath"
	"sync"
)

// FaultFS is a WALFS over the real file system that fails or blocks on
// demand: tests of this package and of the API use it to inject a full
// disk or a failing fsync into a running DB. It also records the order
// of its operations. Safe for concurrent use.
type FaultFS struct {
	OSFS
	mu         sync.Mutex
	writeErr   error                   // returned by segment writes while set
	syncErr    error                   // returned by segment and directory syncs while set
	createErr  error                   // returned by Create while set
	beforeSync func(name string) error // called before every segment sync; its error is returned
	ops        []string
}

// FailWrites makes every segment write fail with err (nil: succeed).
// A failing write writes nothing.
func (f *FaultFS) FailWrites(err error) { f.mu.Lock(); f.writeErr = err; f.mu.Unlock() }

// FailSyncs makes every segment and directory fsync fail with err (nil:
// succeed).
func (f *FaultFS) FailSyncs(err error) { f.mu.Lock(); f.syncErr = err; f.mu.Unlock() }

// FailCreates makes every Create fail with err (nil: succeed).
func (f *FaultFS) FailCreates(err error) { f.mu.Lock(); f.createErr = err; f.mu.Unlock() }

// BeforeSync sets a hook called (without locks) before each segment
// fsync, with the segment's base name; a test can block in it.
func (f *FaultFS) BeforeSync(fn func(name string) error) {
	f.mu.Lock()
	f.beforeSync = fn
	f.mu.Unlock()
}

// Ops returns the operations so far: "create NAME", "remove NAME",
// "sync NAME", "syncdir DIR", with base names.
func (f *FaultFS) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

func (f *FaultFS) record(op, name string) {
	f.ops = append(f.ops, op+" "+filepath.Base(name))
}

// Create opens name for appending unless creates fail.
func (f *FaultFS) Create(name string) (SegmentFile, error) {
	f.mu.Lock()
	err := f.createErr
	f.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	sf, err := f.OSFS.Create(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.record("create", name)
	f.mu.Unlock()
	return &faultFile{fs: f, f: sf, name: filepath.Base(name)}, nil
}

// Remove removes name.
func (f *FaultFS) Remove(name string) error {
	if err := f.OSFS.Remove(name); err != nil {
		return err
	}
	f.mu.Lock()
	f.record("remove", name)
	f.mu.Unlock()
	return nil
}

// SyncDir fsyncs dir unless syncs fail.
func (f *FaultFS) SyncDir(dir string) error {
	f.mu.Lock()
	err := f.syncErr
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	if err := f.OSFS.SyncDir(dir); err != nil {
		return err
	}
	f.mu.Lock()
	f.record("syncdir", dir)
	f.mu.Unlock()
	return nil
}

type faultFile struct {
	fs   *FaultFS
	f    SegmentFile
	name string
}

func (ff *faultFile) Write(p []byte) (int, error) {
	ff.fs.mu.Lock()
	err := ff.fs.writeErr
	ff.fs.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", ff.name, err)
	}
	return ff.f.Write(p)
}

func (ff *faultFile) Sync() error {
	ff.fs.mu.Lock()
	hook := ff.fs.beforeSync
	ff.fs.mu.Unlock()
	if hook != nil {
		if err := hook(ff.name); err != nil {
			return err
		}
	}
	ff.fs.mu.Lock()
	err := ff.fs.syncErr
	ff.fs.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sync %s: %w", ff.name, err)
	}
	if err := ff.f.Sync(); err != nil {
		return err
	}
	ff.fs.mu.Lock()
	ff.fs.record("sync", ff.name)
	ff.fs.mu.Unlock()
	return nil
}

func (ff *faultFile) Close() error { return ff.f.Close() }
