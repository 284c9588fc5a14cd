package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/etcdgate/etcdgate/ring"
)

// In a ring, each rule group, SLO and probe target has one owner node
// (ring.Snapshot.Owner), which alone holds its state. /api/v1/rules,
// /api/v1/alerts, /api/v1/slo and /api/v1/inspections on any node show
// the whole ring: the node answering takes its own part and asks every
// other ACTIVE node for its part at an internal endpoint (ring.*PartPath,
// role read), naming each item's node in an owner field. A node that
// does not answer in time costs its part only: the answer has the others'
// and a warning naming it.

// RingParts asks the other nodes of the ring for their parts.
// cmd/etcdgate implements it over ring.Peers.Part.
type RingParts interface {
	// Self is this node's name.
	Self() string
	// Parts GETs pathQuery (a ring.*PartPath with its query string) of
	// every ACTIVE node but this one, concurrently, bounded by ctx, and
	// returns each node's answer (the data of its JSON reply) or error.
	Parts(ctx context.Context, pathQuery string) []RingPart
}

// RingPart is one node's part of a whole-ring state.
type RingPart struct {
	Node string
	Data json.RawMessage
	Err  error
}

// ringStateTimeout bounds gathering the other nodes' parts.
const ringStateTimeout = 10 * time.Second

// gatherParts asks the other nodes for their parts of pathQuery and
// decodes each into a T with decode; a node that fails or answers
// garbage becomes a warning naming it and what is missing.
func gatherParts[T any](ctx context.Context, rp RingParts, pathQuery, what string, decode func(node string, data json.RawMessage) (T, error)) ([]T, []string) {
	ctx, cancel := context.WithTimeout(ctx, ringStateTimeout)
	defer cancel()
	var out []T
	var warnings []string
	for _, p := range rp.Parts(ctx, pathQuery) {
		err := p.Err
		var v T
		if err == nil {
			v, err = decode(p.Node, p.Data)
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("node %s did not answer; its %s are missing: %v", p.Node, what, err))
			continue
		}
		out = append(out, v)
	}
	return out, warnings
}

// localRuleGroups returns this node's rule groups; in a ring, the ones it
// owns, each named with this node as its owner.
func (a *API) localRuleGroups() []RuleGroup {
	if a.opts.Rules == nil {
		return nil
	}
	gs := a.opts.Rules.RuleGroups()
	if a.opts.RingParts != nil {
		for i := range gs {
			gs[i].Owner = a.opts.RingParts.Self()
		}
	}
	return gs
}

// allRuleGroups returns the rule groups of the whole ring (of this node
// alone outside a ring), sorted by file and name, with warnings for the
// nodes whose groups are missing.
func (a *API) allRuleGroups(ctx context.Context) ([]RuleGroup, []string) {
	local := a.localRuleGroups()
	if a.opts.RingParts == nil {
		return local, nil
	}
	parts, warnings := gatherParts(ctx, a.opts.RingParts, ring.RulesPartPath, "rule groups and alerts",
		func(node string, data json.RawMessage) ([]RuleGroup, error) {
			var gs []RuleGroup
			if err := json.Unmarshal(data, &gs); err != nil {
				return nil, err
			}
			for i := range gs {
				gs[i].Owner = node
			}
			return gs, nil
		})
	all := local
	for _, gs := range parts {
		all = append(all, gs...)
	}
	// Right after a membership change two nodes may both name themselves
	// owner of a group for up to an interval: show it once, preferring
	// this node's own copy, then the owner named first.
	slices.SortStableFunc(all, func(x, y RuleGroup) int {
		return cmp.Or(cmp.Compare(x.File, y.File), cmp.Compare(x.Name, y.Name))
	})
	all = slices.CompactFunc(all, func(x, y RuleGroup) bool { return x.File == y.File && x.Name == y.Name })
	return all, warnings
}

// rulesPart serves ring.RulesPartPath: the rule groups this node owns.
func (a *API) rulesPart(w http.ResponseWriter, _ *http.Request) {
	gs := a.localRuleGroups()
	if gs == nil {
		gs = []RuleGroup{}
	}
	respond(w, gs, nil)
}

// sloPart serves ring.SLOPartPath: the SLOs this node computes.
func (a *API) sloPart(w http.ResponseWriter, r *http.Request) {
	a.sloStatusOf(w, r, false)
}

// sloEntries is the shape of an SLO status answer, kept opaque but for
// the name (to sort by) and the owner (which the merge adds).
type sloEntries struct {
	SLOs []map[string]json.RawMessage `json:"slos"`
}

// mergeSLOs merges this node's SLO statuses (local, as SLOStatus returned
// them) with the other nodes', each named with its owner.
func (a *API) mergeSLOs(ctx context.Context, local any, rawQuery string) (any, []string, error) {
	b, err := json.Marshal(local)
	if err != nil {
		return nil, nil, err
	}
	var mine sloEntries
	if err := json.Unmarshal(b, &mine); err != nil {
		return nil, nil, fmt.Errorf("SLO status of this node: %w", err)
	}
	self, _ := json.Marshal(a.opts.RingParts.Self())
	for _, s := range mine.SLOs {
		s["owner"] = self
	}
	parts, warnings := gatherParts(ctx, a.opts.RingParts, ring.SLOPartPath+"?"+rawQuery, "SLOs",
		func(node string, data json.RawMessage) ([]map[string]json.RawMessage, error) {
			var e sloEntries
			if err := json.Unmarshal(data, &e); err != nil {
				return nil, err
			}
			owner, _ := json.Marshal(node)
			for _, s := range e.SLOs {
				s["owner"] = owner
			}
			return e.SLOs, nil
		})
	all := mine.SLOs
	for _, p := range parts {
		all = append(all, p...)
	}
	if all == nil {
		all = []map[string]json.RawMessage{}
	}
	name := func(s map[string]json.RawMessage) string {
		var n string
		_ = json.Unmarshal(s["name"], &n)
		return n
	}
	slices.SortStableFunc(all, func(x, y map[string]json.RawMessage) int { return cmp.Compare(name(x), name(y)) })
	return sloEntries{SLOs: all}, warnings, nil
}

// localInspections returns this node's records f selects, each named
// with this node when in a ring.
func (a *API) localInspections(f InspectionFilter) []InspectionRecord {
	recs := []InspectionRecord{}
	if a.opts.Inspections != nil {
		recs = append(recs, a.opts.Inspections.Inspections(f)...)
	}
	if a.opts.RingParts != nil {
		for i := range recs {
			recs[i].Owner = a.opts.RingParts.Self()
		}
	}
	return recs
}

// allInspections merges this node's records with the other nodes' (each
// asked with the same filter), newest first, up to f.Limit.
func (a *API) allInspections(ctx context.Context, f InspectionFilter, rawQuery string) ([]InspectionRecord, []string) {
	recs := a.localInspections(f)
	if a.opts.RingParts == nil {
		return recs, nil
	}
	parts, warnings := gatherParts(ctx, a.opts.RingParts, ring.InspectionsPartPath+"?"+rawQuery, "inspection records",
		func(node string, data json.RawMessage) ([]InspectionRecord, error) {
			var rs []InspectionRecord
			if err := json.Unmarshal(data, &rs); err != nil {
				return nil, err
			}
			if f.Limit > 0 && len(rs) > f.Limit {
				rs = rs[:f.Limit]
			}
			for i := range rs {
				rs[i].Owner = node
			}
			return rs, nil
		})
	for _, p := range parts {
		recs = append(recs, p...)
	}
	slices.SortStableFunc(recs, func(x, y InspectionRecord) int { return y.End.Compare(x.End) })
	if f.Limit > 0 && len(recs) > f.Limit {
		recs = recs[:f.Limit]
	}
	return recs, warnings
}

// inspectionsPart serves ring.InspectionsPartPath: this node's records.
func (a *API) inspectionsPart(w http.ResponseWriter, r *http.Request) {
	var names []string
	if a.opts.Inspections != nil {
		names = a.opts.Inspections.InspectionNames()
	}
	f, err := parseInspectionFilter(r, names)
	if err != nil {
		respondError(w, badData(err))
		return
	}
	respond(w, a.localInspections(f), nil)
}
