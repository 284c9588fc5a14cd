package probe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Health reports what each member says of itself and of the cluster: a
// leader and agreement on it, leader changes (raft term increases) since
// the previous run, active alarms (NOSPACE, CORRUPT), db size against the
// quota, db size in use against allocated (fragmentation), raft apply
// lag, member list changes, server versions and the latency of the
// status request. It reads no keys: one Status per member, one
// MemberList and one AlarmList.
type Health struct {
	// QuotaWarnRatio: a member whose db size passes this share of its
	// quota is a warning (etcd raises NOSPACE at the quota).
	QuotaWarnRatio float64
	// MaxApplyLag: a member whose committed raft index runs more entries
	// ahead of its applied index is a warning (etcd stops accepting
	// proposals at a gap of 5,000).
	MaxApplyLag uint64
}

// DefaultHealth returns the thresholds health runs with by default.
func DefaultHealth() Health { return Health{QuotaWarnRatio: 0.8, MaxApplyLag: 1000} }

// Validate checks the thresholds.
func (h Health) Validate() error {
	if h.QuotaWarnRatio <= 0 || h.QuotaWarnRatio > 1 {
		return fmt.Errorf("health: quota_warn_ratio %g: want a ratio in (0, 1]", h.QuotaWarnRatio)
	}
	if h.MaxApplyLag == 0 {
		return errors.New("health: max_apply_lag must be positive")
	}
	return nil
}

// Name implements Inspection.
func (Health) Name() string { return "health" }

// healthState is what health remembers of a target between runs.
type healthState struct {
	Term    uint64
	Leader  uint64
	Members map[uint64]string // member ID → name
}

// Inspect implements Inspection.
func (h Health) Inspect(ctx context.Context, s *Session, prev any) (Result, error) {
	all := statusAll(ctx, s)
	ok, err := reachable(all)
	if err != nil {
		return Result{}, err
	}
	var res Result
	var problems []string
	for _, st := range all {
		res.Findings = append(res.Findings, h.memberFindings(st)...)
		problems = append(problems, h.memberProblems(st)...)
	}
	state := healthState{}
	leaders := map[uint64]bool{}
	for _, st := range ok {
		leaders[st.Resp.Leader] = true
		state.Term = max(state.Term, st.Resp.RaftTerm)
		state.Leader = st.Resp.Leader
	}
	hasLeader := len(leaders) == 1 && !leaders[0]
	if !hasLeader {
		problems = append(problems, fmt.Sprintf("members disagree on the leader or have none: %v", idList(leaders)))
	}
	res.Findings = append(res.Findings,
		Finding{Name: "etcdgate_inspection_has_leader", Value: boolValue(hasLeader)},
		Finding{Name: "etcdgate_inspection_leaders", Value: float64(len(leaders))},
		Finding{Name: "etcdgate_inspection_members_unreachable", Value: float64(len(all) - len(ok))},
	)
	p, ok2 := prev.(healthState)
	if ok2 && state.Term >= p.Term {
		res.Findings = append(res.Findings, Finding{Name: "etcdgate_inspection_leader_changes", Value: float64(state.Term - p.Term)})
		if hasLeader && state.Leader != p.Leader {
			problems = append(problems, fmt.Sprintf("leader changed from %s to %s", memberID(p.Leader), memberID(state.Leader)))
		}
	}
	fs, ps := h.clusterChecks(ctx, s, &state, p.Members)
	res.Findings, problems = append(res.Findings, fs...), append(problems, ps...)
	res.State = state
	res.Status, res.Message = StatusSuccess, fmt.Sprintf("%d of %d members answered, leader %s, raft term %d",
		len(ok), len(all), memberID(state.Leader), state.Term)
	if len(problems) > 0 {
		res.Status, res.Message = StatusWarning, res.Message+"; "+strings.Join(problems, "; ")
	}
	return res, nil
}

// memberFindings turns one member's status into samples.
func (h Health) memberFindings(st memberStatus) []Finding {
	ls := []labels.Label{{Name: "endpoint", Value: st.Endpoint}}
	if st.Err != nil {
		return []Finding{{Name: "etcdgate_inspection_member_up", Labels: ls, Value: 0}}
	}
	r := st.Resp
	info := append(slices.Clone(ls), labels.Label{Name: "member", Value: memberID(r.Header.MemberId)},
		labels.Label{Name: "version", Value: labelValue([]byte(r.Version))})
	fs := []Finding{
		{Name: "etcdgate_inspection_member_up", Labels: ls, Value: 1},
		{Name: "etcdgate_inspection_member_info", Labels: info, Value: 1},
		{Name: "etcdgate_inspection_member_has_leader", Labels: ls, Value: boolValue(r.Leader != 0)},
		{Name: "etcdgate_inspection_member_is_learner", Labels: ls, Value: boolValue(r.IsLearner)},
		{Name: "etcdgate_inspection_member_status_latency_seconds", Labels: ls, Value: st.Latency.Seconds()},
		{Name: "etcdgate_inspection_member_db_size_bytes", Labels: ls, Value: float64(r.DbSize)},
		{Name: "etcdgate_inspection_member_db_size_in_use_bytes", Labels: ls, Value: float64(r.DbSizeInUse)},
		{Name: "etcdgate_inspection_member_db_quota_bytes", Labels: ls, Value: float64(r.DbSizeQuota)},
		{Name: "etcdgate_inspection_member_apply_lag", Labels: ls, Value: float64(r.RaftIndex - min(r.RaftAppliedIndex, r.RaftIndex))},
	}
	if r.DbSize > 0 {
		fs = append(fs, Finding{Name: "etcdgate_inspection_member_db_fragmentation_ratio", Labels: ls,
			Value: 1 - float64(r.DbSizeInUse)/float64(r.DbSize)})
	}
	return fs
}

// memberProblems names what is wrong with one member.
func (h Health) memberProblems(st memberStatus) []string {
	if st.Err != nil {
		return []string{fmt.Sprintf("member %s unreachable: %v", st.Endpoint, st.Err)}
	}
	r := st.Resp
	var ps []string
	if r.DbSizeQuota > 0 && float64(r.DbSize) > h.QuotaWarnRatio*float64(r.DbSizeQuota) {
		ps = append(ps, fmt.Sprintf("member %s db size %d is %.0f%% of its quota %d", st.Endpoint, r.DbSize,
			100*float64(r.DbSize)/float64(r.DbSizeQuota), r.DbSizeQuota))
	}
	if lag := r.RaftIndex - min(r.RaftAppliedIndex, r.RaftIndex); lag > h.MaxApplyLag {
		ps = append(ps, fmt.Sprintf("member %s applies %d raft entries behind its commit index", st.Endpoint, lag))
	}
	for _, e := range r.Errors[:min(len(r.Errors), maxMemberErrors)] {
		ps = append(ps, fmt.Sprintf("member %s reports: %s", st.Endpoint, truncate(e, 256)))
	}
	if len(r.Errors) > maxMemberErrors {
		ps = append(ps, fmt.Sprintf("member %s reports %d more errors", st.Endpoint, len(r.Errors)-maxMemberErrors))
	}
	return ps
}

// clusterChecks asks for alarms and the member list, and compares the
// list with the previous run's.
func (h Health) clusterChecks(ctx context.Context, s *Session, state *healthState, prevMembers map[uint64]string) ([]Finding, []string) {
	var fs []Finding
	var ps []string
	if al, err := s.Client.AlarmList(ctx); err != nil {
		ps = append(ps, fmt.Sprintf("alarm list: %v", err))
	} else {
		for i, a := range al.Alarms {
			if a == nil || i >= maxListed {
				continue
			}
			fs = append(fs, Finding{Name: "etcdgate_inspection_alarm", Value: 1, Labels: []labels.Label{
				{Name: "alarm", Value: a.Alarm.String()}, {Name: "member", Value: memberID(a.MemberID)}}})
			ps = append(ps, fmt.Sprintf("alarm %s on member %s", a.Alarm, memberID(a.MemberID)))
		}
		fs = append(fs, Finding{Name: "etcdgate_inspection_alarms", Value: float64(len(al.Alarms))})
	}
	// Serializable: a member answers from its own view, so the list is
	// read even when the cluster has lost quorum.
	ml, err := s.Client.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		return fs, append(ps, fmt.Sprintf("member list: %v", err))
	}
	state.Members = make(map[uint64]string, min(len(ml.Members), maxListed))
	for _, m := range ml.Members {
		if m != nil && len(state.Members) < maxListed {
			state.Members[m.ID] = labelValue([]byte(m.Name))
		}
	}
	if len(ml.Members) > maxListed {
		ps = append(ps, fmt.Sprintf("member list has %d members; only the first %d are compared", len(ml.Members), maxListed))
	}
	fs = append(fs, Finding{Name: "etcdgate_inspection_members", Value: float64(len(ml.Members))})
	if prevMembers != nil {
		var changes []string
		for id, name := range state.Members {
			if _, ok := prevMembers[id]; !ok {
				changes = append(changes, fmt.Sprintf("member %s (%s) added", memberID(id), name))
			}
		}
		for id, name := range prevMembers {
			if _, ok := state.Members[id]; !ok {
				changes = append(changes, fmt.Sprintf("member %s (%s) removed", memberID(id), name))
			}
		}
		slices.Sort(changes)
		fs = append(fs, Finding{Name: "etcdgate_inspection_member_list_changes", Value: float64(len(changes))})
		ps = append(ps, changes...)
	}
	return fs, ps
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func idList(ids map[uint64]bool) []string {
	out := make([]string, 0, len(ids))
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		out = append(out, memberID(id))
	}
	return out
}
