package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcdgate/etcdgate/tsdb"
)

// Options wire a Manager to the rest of the process.
type Options struct {
	Query      QueryFunc
	Appendable Appendable
	// Queryable reads ALERTS_FOR_STATE to restore alert clocks after a
	// restart; nil skips the restore.
	Queryable tsdb.Queryable
	// Notify receives alerts due for a notification; nil sends none.
	Notify NotifyFunc
	// EvaluationInterval is the interval of groups that set none.
	EvaluationInterval time.Duration
	// ResendDelay is how often a firing alert is sent again.
	ResendDelay time.Duration
	// OutageTolerance is how far back a restart looks for
	// ALERTS_FOR_STATE; ForGracePeriod the least time a restored alert
	// with a long 'for' waits before firing.
	OutageTolerance time.Duration
	ForGracePeriod  time.Duration
	// ExternalLabels and ExternalURL are the $externalLabels and
	// $externalURL of templates.
	ExternalLabels map[string]string
	ExternalURL    string
	Registerer     prometheus.Registerer
	Logger         *slog.Logger
	// Owns, when set, decides at every scheduled round whether this node
	// evaluates the group of that file and name (a ring: one owner per
	// group). A node that gains a group restores its alerts' 'for' clocks
	// from ALERTS_FOR_STATE (read through Queryable) before it evaluates
	// it; a node that loses one drops its alerts without resolving them
	// and writes no stale markers: the new owner carries on. Nil: every
	// group is this node's.
	Owns func(file, group string) bool
	// Manual leaves groups unscheduled: the caller drives Group.Eval
	// and Group.RestoreForState on a clock of its own (rule tests,
	// backfilling rules over past data).
	Manual bool
}

// DefaultOptions returns Prometheus's defaults, with etcdgate's 30 s
// evaluation interval.
func DefaultOptions() Options {
	return Options{
		EvaluationInterval: 30 * time.Second,
		ResendDelay:        time.Minute,
		OutageTolerance:    time.Hour,
		ForGracePeriod:     10 * time.Minute,
	}
}

// Validate reports missing wiring and bad durations.
func (o Options) Validate() error {
	switch {
	case o.Query == nil:
		return errors.New("rules: no query function")
	case o.Appendable == nil:
		return errors.New("rules: no appendable")
	case o.EvaluationInterval <= 0:
		return errors.New("rules: evaluation interval must be positive")
	case o.ResendDelay <= 0 || o.OutageTolerance <= 0 || o.ForGracePeriod < 0:
		return errors.New("rules: resend delay and outage tolerance must be positive, for grace period not negative")
	}
	return nil
}

// Manager runs rule groups and swaps them on Update.
type Manager struct {
	opts    Options // immutable
	metrics *metrics

	// updateMu serialises Prepare-Apply pairs against each other and
	// against Stop; it is held while old groups halt (which waits for an
	// evaluation in flight) but nothing that serves reads takes it.
	updateMu sync.Mutex
	restored bool // guarded by updateMu: the first Apply happened: later groups do not restore
	stopped  bool // guarded by updateMu

	mu     sync.Mutex        // guards groups only, held briefly
	groups map[string]*Group // guarded by mu
}

// NewManager returns a manager with no groups.
func NewManager(opts Options) (*Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Logger = orDiscard(opts.Logger)
	m := &Manager{opts: opts, metrics: newMetrics(opts.Registerer), groups: map[string]*Group{}}
	if opts.Owns != nil && opts.Registerer != nil {
		opts.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "etcdgate_ring_owned_rule_groups",
			Help: "The number of rule groups this node of the ring owns, and so evaluates, as of their last scheduled round.",
		}, func() float64 { return float64(m.ownedGroups()) }))
	}
	return m, nil
}

// ownedGroups counts the groups this node evaluates.
func (m *Manager) ownedGroups() int {
	n := 0
	for _, g := range m.Groups() {
		if g.Owned() {
			n++
		}
	}
	return n
}

// Update replaces the running groups with specs: Prepare, then Apply.
func (m *Manager) Update(specs []GroupSpec) error {
	u, err := m.Prepare(specs)
	if err != nil {
		return err
	}
	return m.Apply(u)
}

// PreparedUpdate is a validated set of groups, ready for Apply. It holds
// no group yet: Apply builds them against the groups running then.
type PreparedUpdate struct {
	specs []GroupSpec
}

// Prepare validates specs for Apply without touching the running groups:
// a reload that fails later, in another component, leaves them as they
// are. Specs must be valid (ParseFile validates files; generators
// produce valid specs); Prepare checks every group and that the group
// keys are unique.
func (m *Manager) Prepare(specs []GroupSpec) (*PreparedUpdate, error) {
	seen := map[string]bool{}
	for _, s := range specs {
		k := s.File + ";" + s.Name
		if seen[k] {
			return nil, fmt.Errorf("rule group %q of %q defined twice", s.Name, s.File)
		}
		seen[k] = true
		if errs := (&RuleFile{Groups: []GroupSpec{s}}).Validate(); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	return &PreparedUpdate{specs: slices.Clone(specs)}, nil
}

// Apply replaces the running groups with u's. A group whose spec did not
// change keeps running untouched; a changed group takes over the alert
// state and series of its predecessor's rules (matched by kind, name and
// labels); a removed group's series get stale markers. It fails only
// when the manager was stopped. Groups() is never blocked by it: old
// groups halt, and stale markers are written, without the lock Groups
// takes.
func (m *Manager) Apply(u *PreparedUpdate) error {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	if m.stopped {
		return errors.New("rules: manager stopped")
	}
	m.mu.Lock()
	cur := m.groups
	m.mu.Unlock()
	next := make(map[string]*Group, len(u.specs))
	type handover struct{ old, new *Group }
	var changed []handover
	for _, s := range u.specs {
		k := s.File + ";" + s.Name
		old := cur[k]
		if old != nil && reflect.DeepEqual(old.spec, s) {
			next[k] = old
			continue
		}
		g := newGroup(s, &m.opts, m.metrics)
		g.shouldRestore = !m.restored
		if !g.shouldRestore {
			g.setRestored()
		}
		next[k] = g
		if old != nil {
			changed = append(changed, handover{old, g})
		}
	}
	// Halted first, so that an old group does not evaluate after its
	// state moved on; its successor starts after taking the state over.
	for _, h := range changed {
		h.old.halt()
		h.new.copyState(h.old)
	}
	var removed []string
	for k, old := range cur {
		if next[k] == nil {
			old.halt()
			removed = append(removed, k)
		}
	}
	m.mu.Lock()
	m.groups = next
	m.mu.Unlock()
	m.restored = true
	for k, g := range next {
		if cur[k] != g && !m.opts.Manual {
			g.start()
		}
	}
	now := time.Now()
	for _, h := range changed {
		h.old.markStale(context.Background(), now, h.new.inheritedFrom)
	}
	for _, k := range removed {
		cur[k].markStale(context.Background(), now, nil)
		m.metrics.deleteGroup(k)
	}
	return nil
}

// Stop halts every group and waits for evaluations in flight.
func (m *Manager) Stop() {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	m.mu.Lock()
	groups := m.groups
	m.mu.Unlock()
	for _, g := range groups {
		g.halt()
	}
	m.stopped = true
}

// Groups returns the running groups sorted by file and name.
func (m *Manager) Groups() []*Group {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Group, 0, len(m.groups))
	for _, g := range m.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].spec.File != out[j].spec.File {
			return out[i].spec.File < out[j].spec.File
		}
		return out[i].spec.Name < out[j].spec.Name
	})
	return out
}
