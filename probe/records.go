package probe

import (
	"sync"
	"time"
)

// Record is what one inspection run found, for a person to read.
type Record struct {
	Cluster    string            `json:"cluster"`
	Inspection string            `json:"inspection"`
	Labels     map[string]string `json:"labels,omitempty"` // product, scenario, size, region, extras
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Status     Status            `json:"status"`
	Message    string            `json:"message"`
	// Requests and BytesRead are the load the run put on the cluster:
	// requests sent (retries included) and response bytes received.
	Requests  int64 `json:"requests"`
	BytesRead int64 `json:"bytesRead"`
}

// Filter selects records; empty fields match any.
type Filter struct {
	Cluster    string
	Inspection string
	Status     Status
	// Limit bounds the records returned (newest first); 0 means all.
	Limit int
}

func (f Filter) match(r *Record) bool {
	return (f.Cluster == "" || f.Cluster == r.Cluster) && (f.Inspection == "" || f.Inspection == r.Inspection) &&
		(f.Status == "" || f.Status == r.Status)
}

// RecordStore keeps the records of the last Retention, at most MaxRecords
// of them, in memory: they are for reading what was found lately; the
// findings that matter over time are series in the store.
type RecordStore struct {
	retention time.Duration // immutable
	max       int           // immutable
	now       func() time.Time

	mu      sync.Mutex
	records []Record // guarded by mu; oldest first
}

// NewRecordStore keeps records for retention, at most max of them.
func NewRecordStore(retention time.Duration, max int) *RecordStore {
	return &RecordStore{retention: retention, max: max, now: time.Now}
}

// Add keeps r and forgets what is too old or too many.
func (s *RecordStore) Add(r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
	cut := max(len(s.records)-s.max, 0)
	oldest := s.now().Add(-s.retention)
	for cut < len(s.records) && s.records[cut].End.Before(oldest) {
		cut++
	}
	if cut > 0 {
		// Copy down rather than reslice, so the backing array does not
		// grow forever and dropped records are not kept alive.
		n := copy(s.records, s.records[cut:])
		clear(s.records[n:])
		s.records = s.records[:n]
	}
}

// List returns the records f selects, newest first.
func (s *RecordStore) List(f Filter) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	oldest := s.now().Add(-s.retention)
	out := []Record{}
	for i := len(s.records) - 1; i >= 0; i-- {
		r := &s.records[i]
		if r.End.Before(oldest) {
			break
		}
		if f.match(r) {
			out = append(out, *r)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out
}
