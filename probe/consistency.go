package probe

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Consistency compares the members' data: each member's revision, raft
// index and term, its key count and its HashKV at one revision every
// member has. Members whose hash or key count differs from the majority
// are reported with the difference (the check operators call node key
// diff). It reads no values: HashKV is computed by the members, and key
// counts are count-only requests served from each member's own store.
type Consistency struct{}

// Name implements Inspection.
func (Consistency) Name() string { return "consistency" }

// memberData is what one member says at the common revision.
type memberData struct {
	memberStatus
	Keys int64
	Hash uint32
	// CompactRevision is the compaction HashKV started from: hashes
	// compare only between members that compacted to the same revision.
	CompactRevision int64
	Err             error
}

// Inspect implements Inspection.
func (Consistency) Inspect(ctx context.Context, s *Session, _ any) (Result, error) {
	all := statusAll(ctx, s)
	ok, err := reachable(all)
	if err != nil {
		return Result{}, err
	}
	// The smallest revision is one every answering member has applied.
	rev := ok[0].Resp.Header.Revision
	for _, st := range ok[1:] {
		rev = min(rev, st.Resp.Header.Revision)
	}
	data := make([]memberData, len(ok))
	var wg sync.WaitGroup
	for i, st := range ok {
		data[i].memberStatus = st
		wg.Go(func() {
			defer recoverInto(&data[i].Err)
			data[i] = readMember(ctx, s, st, rev)
		})
	}
	wg.Wait()
	var res Result
	_, problems := partition(all, func(st memberStatus) error { return st.Err })
	answered, failed := partition(data, func(d memberData) error { return d.Err })
	problems = append(problems, failed...)
	if len(answered) == 0 {
		return Result{}, fmt.Errorf("no member answered at revision %d: %s", rev, strings.Join(problems, "; "))
	}
	res.Findings, problems = compareMembers(answered, problems)
	res.Findings = append(res.Findings, Finding{Name: "etcdgate_inspection_members_unreachable", Value: float64(len(all) - len(answered))})
	res.Message = consistencyMessage(answered, rev, problems)
	res.Status = StatusSuccess
	if len(problems) > 0 {
		res.Status = StatusWarning
	}
	return res, nil
}

// readMember counts the keys of one member and hashes its store, both at
// rev and from the member's own store (serializable).
func readMember(ctx context.Context, s *Session, st memberStatus, rev int64) memberData {
	d := memberData{memberStatus: st}
	c, err := s.Member(st.Endpoint)
	if err != nil {
		d.Err = err
		return d
	}
	cnt, err := c.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly(), clientv3.WithRev(rev), clientv3.WithSerializable())
	if err != nil {
		d.Err = fmt.Errorf("count keys of %s at revision %d: %w", st.Endpoint, rev, err)
		return d
	}
	h, err := s.Client.HashKV(ctx, st.Endpoint, rev)
	if err != nil {
		d.Err = fmt.Errorf("hash of %s at revision %d: %w", st.Endpoint, rev, err)
		return d
	}
	d.Keys, d.Hash, d.CompactRevision = cnt.Count, h.Hash, h.CompactRevision
	return d
}

// compareMembers finds the majority's hash and key count and reports each
// member against them.
func compareMembers(ms []memberData, problems []string) ([]Finding, []string) {
	type sig struct {
		hash    uint32
		compact int64
	}
	votes := map[sig]int{}
	for _, m := range ms {
		votes[sig{m.Hash, m.CompactRevision}]++
	}
	var major sig
	for k, n := range votes {
		if n > votes[major] || n == votes[major] && (k.hash < major.hash) {
			major = k
		}
	}
	counts := make([]int64, len(ms))
	for i, m := range ms {
		counts[i] = m.Keys
	}
	slices.Sort(counts)
	ref := counts[len(counts)/2] // the median: the majority's count when there is one
	var fs []Finding
	for _, m := range ms {
		ls := []labels.Label{{Name: "endpoint", Value: m.Endpoint}, {Name: "member", Value: memberID(m.Resp.Header.MemberId)}}
		mismatch := 0.0
		if (sig{m.Hash, m.CompactRevision}) != major {
			mismatch = 1
			p := fmt.Sprintf("member %s (%s) hash %d differs from the majority's %d",
				memberID(m.Resp.Header.MemberId), m.Endpoint, m.Hash, major.hash)
			if m.CompactRevision != major.compact {
				p += fmt.Sprintf(" (compacted to revision %d, the majority to %d)", m.CompactRevision, major.compact)
			}
			problems = append(problems, p)
		}
		if m.Keys != ref {
			problems = append(problems, fmt.Sprintf("member %s (%s) has %d keys, %+d against the majority",
				memberID(m.Resp.Header.MemberId), m.Endpoint, m.Keys, m.Keys-ref))
		}
		fs = append(fs,
			Finding{Name: "etcdgate_inspection_member_keys", Labels: ls, Value: float64(m.Keys)},
			Finding{Name: "etcdgate_inspection_member_key_diff", Labels: ls, Value: float64(m.Keys - ref)},
			Finding{Name: "etcdgate_inspection_member_hash_mismatch", Labels: ls, Value: mismatch},
			Finding{Name: "etcdgate_inspection_member_revision", Labels: ls, Value: float64(m.Resp.Header.Revision)},
			Finding{Name: "etcdgate_inspection_member_raft_index", Labels: ls, Value: float64(m.Resp.RaftIndex)},
			Finding{Name: "etcdgate_inspection_member_raft_term", Labels: ls, Value: float64(m.Resp.RaftTerm)},
		)
	}
	fs = append(fs,
		Finding{Name: "etcdgate_inspection_keys", Value: float64(ref)},
		Finding{Name: "etcdgate_inspection_key_diff", Value: float64(counts[len(counts)-1] - counts[0])},
	)
	return fs, problems
}

func consistencyMessage(ms []memberData, rev int64, problems []string) string {
	lo, hi := ms[0].Keys, ms[0].Keys
	for _, m := range ms[1:] {
		lo, hi = min(lo, m.Keys), max(hi, m.Keys)
	}
	msg := fmt.Sprintf("total key num is %d, nodeKeyDiff is %d, %d members compared at revision %d", hi, hi-lo, len(ms), rev)
	if len(problems) == 0 {
		return msg + ", hashes agree"
	}
	return msg + "; " + strings.Join(problems, "; ")
}
