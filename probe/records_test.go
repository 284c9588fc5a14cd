package probe

import (
	"testing"
	"time"
)

func TestRecordStore(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := NewRecordStore(time.Hour, 3)
	s.now = func() time.Time { return now }
	add := func(cluster, insp string, st Status, age time.Duration) {
		s.Add(Record{Cluster: cluster, Inspection: insp, Status: st, End: now.Add(-age)})
	}
	add("a", "health", StatusSuccess, 2*time.Hour) // past retention: dropped on the next Add
	add("a", "health", StatusFailed, 30*time.Minute)
	add("b", "health", StatusSuccess, 20*time.Minute)
	add("a", "consistency", StatusWarning, 10*time.Minute)
	if got := s.List(Filter{}); len(got) != 3 || got[0].Inspection != "consistency" || got[2].Status != StatusFailed {
		t.Fatalf("list %+v", got)
	}
	if got := s.List(Filter{Cluster: "a", Inspection: "health"}); len(got) != 1 || got[0].Status != StatusFailed {
		t.Fatalf("filtered %+v", got)
	}
	if got := s.List(Filter{Status: StatusSuccess, Limit: 5}); len(got) != 1 || got[0].Cluster != "b" {
		t.Fatalf("by status %+v", got)
	}
	if got := s.List(Filter{Limit: 1}); len(got) != 1 {
		t.Fatalf("limit %+v", got)
	}
	add("c", "hot_keys", StatusSuccess, 0) // a fourth: the oldest goes
	if got := s.List(Filter{Cluster: "a", Inspection: "health"}); len(got) != 0 {
		t.Fatalf("kept over max: %+v", got)
	}
	now = now.Add(55 * time.Minute) // b's record is now 75 minutes old
	if got := s.List(Filter{Cluster: "b"}); len(got) != 0 {
		t.Fatalf("kept past retention: %+v", got)
	}
}
