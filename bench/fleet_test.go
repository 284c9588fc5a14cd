package bench

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// scraped is one series of one scrape, decoded from the encoded batch.
type scraped struct {
	labels map[string]string
	key    string // the label set, for identity across scrapes
	value  float64
	ts     int64
}

// scrapeFleet scrapes clusters of o's shape for rounds scrapes 15 s
// apart, encoding every member's samples and decoding them with prompb,
// and hands each round's series to check.
func scrapeFleet(t *testing.T, o FleetOptions, clusters, rounds int, check func(round int, series []scraped)) *layout {
	t.Helper()
	l, err := loadLayout(o.Members)
	if err != nil {
		t.Fatal(err)
	}
	var members []*member
	for id := range clusters {
		members = append(members, newCluster(l, &o, id, 15e9).members...)
	}
	r, obs := newRNG(o.Seed), make([]float64, len(l.groups))
	var b batch
	for round := range rounds {
		ts := int64(1_700_000_000_000 + round*15_000)
		b.reset()
		for _, m := range members {
			m.advance(l, &o, 15, r, obs)
			for i := range l.specs {
				b.appendSample(&l.specs[i], m, m.values[i], ts)
			}
		}
		check(round, decodeBatch(t, b.pb))
	}
	return l
}

func decodeBatch(t *testing.T, pb []byte) []scraped {
	t.Helper()
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(pb); err != nil {
		t.Fatalf("prompb cannot decode the batch: %v", err)
	}
	out := make([]scraped, 0, len(wr.Timeseries))
	for _, ts := range wr.Timeseries {
		s := scraped{labels: map[string]string{}}
		var key strings.Builder
		for i, l := range ts.Labels {
			if i > 0 && ts.Labels[i-1].Name >= l.Name {
				t.Fatalf("labels not sorted or repeated: %v", ts.Labels)
			}
			s.labels[l.Name] = l.Value
			key.WriteString(l.Name + "=" + l.Value + ",")
		}
		if len(ts.Samples) != 1 {
			t.Fatalf("%d samples in a series, want 1", len(ts.Samples))
		}
		s.key, s.value, s.ts = key.String(), ts.Samples[0].Value, ts.Samples[0].Timestamp
		out = append(out, s)
	}
	return out
}

func testFleetOptions() FleetOptions {
	o := DefaultOptions().Fleet
	o.LeaderChangeProb, o.SlowFsyncProb = 0.05, 0.2
	return o
}

func TestFleetLabelSets(t *testing.T) {
	o := testFleetOptions()
	l := scrapeFleet(t, o, 4, 1, func(_ int, series []scraped) {
		seen := map[string]bool{}
		perPod := map[string]int{}
		ids := map[string]string{} // pod -> own member ID
		for _, s := range series {
			if seen[s.key] {
				t.Fatalf("series written twice in one scrape: %s", s.key)
			}
			seen[s.key] = true
			for _, name := range []string{"__name__", "cluster", "instance", "job", "namespace", "pod", "region"} {
				if s.labels[name] == "" {
					t.Fatalf("series without %s: %s", name, s.key)
				}
			}
			if s.labels["job"] != "etcd" || !strings.HasPrefix(s.labels["pod"], "etcd-"+s.labels["cluster"]) ||
				!strings.Contains(s.labels["cluster"], s.labels["region"]) {
				t.Fatalf("member labels do not agree: %s", s.key)
			}
			perPod[s.labels["pod"]]++
			if s.labels["__name__"] == "etcd_server_id" {
				ids[s.labels["pod"]] = s.labels["server_id"]
			}
		}
		if len(perPod) != 4*o.Members {
			t.Fatalf("%d members wrote, want %d", len(perPod), 4*o.Members)
		}
		for pod, n := range perPod {
			if n != len(series)/len(perPod) {
				t.Fatalf("member %s wrote %d series, others %d", pod, n, len(series)/len(perPod))
			}
		}
		checkPeerLabels(t, series, ids)
	})
	if l.seriesPerMember() < 1000 {
		t.Fatalf("only %d series per member; a real etcd exposes ~1,800", l.seriesPerMember())
	}
}

// checkPeerLabels: a member's server_id and Local name itself, its To,
// From and Remote name the other members of its cluster.
func checkPeerLabels(t *testing.T, series []scraped, ids map[string]string) {
	t.Helper()
	clusterIDs := map[string][]string{}
	for _, s := range series {
		if s.labels["__name__"] == "etcd_server_id" {
			clusterIDs[s.labels["cluster"]] = append(clusterIDs[s.labels["cluster"]], s.labels["server_id"])
		}
	}
	peers := 0
	for _, s := range series {
		self := ids[s.labels["pod"]]
		if v, ok := s.labels["Local"]; ok && v != self {
			t.Fatalf("Local %s is not the member's ID %s: %s", v, self, s.key)
		}
		for _, name := range []string{"To", "From", "Remote"} {
			v, ok := s.labels[name]
			if !ok || len(v) != 16 {
				continue
			}
			if !slices.Contains(clusterIDs[s.labels["cluster"]], v) || (v == self && name != "Remote") {
				t.Fatalf("%s=%s is not a peer of %s: %s", name, v, self, s.key)
			}
			peers++
		}
	}
	if peers == 0 {
		t.Fatal("no series names a peer")
	}
}

// advanceFleet moves clusters of o's shape through rounds scrapes 15 s
// apart and hands each round's members to check, which reads the values
// by their specs: the encoding is checked apart (TestFleetLabelSets,
// TestBatchDecodesWithPrompb).
func advanceFleet(t *testing.T, o FleetOptions, clusters, rounds int, check func(round int, l *layout, members []*member)) {
	t.Helper()
	l, err := loadLayout(o.Members)
	if err != nil {
		t.Fatal(err)
	}
	var members []*member
	for id := range clusters {
		members = append(members, newCluster(l, &o, id, 15e9).members...)
	}
	r, obs := newRNG(o.Seed), make([]float64, len(l.groups))
	for round := range rounds {
		for _, m := range members {
			m.advance(l, &o, 15, r, obs)
		}
		check(round, l, members)
	}
}

func specLabel(s *spec, name string) string {
	for _, l := range s.t.labels {
		if l.name == name {
			return l.value
		}
	}
	return ""
}

func TestFleetCountersNeverDecrease(t *testing.T) {
	prev := map[*member][]float64{}
	grew, counters := 0, 0
	advanceFleet(t, testFleetOptions(), 3, 200, func(round int, l *layout, members []*member) {
		for _, m := range members {
			for i := range l.specs {
				tm := l.specs[i].t
				switch tm.kind {
				case kindCounter, kindRising, kindBucket, kindHistCount, kindHistSum, kindLeaderChanges:
				default:
					continue
				}
				v := m.values[i]
				if tm.integral && v != math.Trunc(v) {
					t.Fatalf("round %d: count %s is not whole: %v", round, tm.name, v)
				}
				if p := prev[m]; p != nil {
					if v < p[i] {
						t.Fatalf("round %d: counter %s fell from %v to %v", round, tm.name, p[i], v)
					}
					if v > p[i] {
						grew++
					}
					counters++
				}
			}
			prev[m] = slices.Clone(m.values)
		}
	})
	if grew == 0 || grew == counters {
		t.Fatalf("%d of %d counter readings grew: want some, not all", grew, counters)
	}
}

func TestFleetHistogramsConsistent(t *testing.T) {
	// The share of WAL fsyncs above 8 ms with and without slow disks: a
	// slow disk must shift the mass to the upper buckets.
	slowShare := map[bool]float64{}
	for _, slow := range []bool{false, true} {
		o := testFleetOptions()
		o.SlowFsyncProb = 0
		if slow {
			o.SlowFsyncProb = 1
		}
		var above, total float64
		advanceFleet(t, o, 2, 100, func(round int, l *layout, members []*member) {
			for _, m := range members {
				a, n := checkHistograms(t, round, l, m)
				above += a
				total += n
			}
		})
		slowShare[slow] = above / total
	}
	if slowShare[true] <= slowShare[false] {
		t.Fatalf("slow disks did not shift fsync latency up: %.3f slow vs %.3f normal", slowShare[true], slowShare[false])
	}
}

// checkHistograms checks every histogram of a member: buckets cumulative
// in le, +Inf equal to _count, _sum not negative. It returns the WAL
// fsyncs above 8 ms and all of them.
func checkHistograms(t *testing.T, round int, l *layout, m *member) (above, total float64) {
	t.Helper()
	type hist struct {
		les, counts []float64
		count, sum  float64
		name        string
	}
	hists := map[int]*hist{}
	for i := range l.specs {
		s := &l.specs[i]
		if s.group < 0 {
			continue
		}
		h := hists[s.group]
		if h == nil {
			h = &hist{name: s.t.family}
			hists[s.group] = h
		}
		switch s.t.kind {
		case kindBucket:
			le, err := strconv.ParseFloat(specLabel(s, "le"), 64)
			if err != nil {
				t.Fatal(err)
			}
			h.les, h.counts = append(h.les, le), append(h.counts, m.values[i])
		case kindHistCount:
			h.count = m.values[i]
		case kindHistSum:
			h.sum = m.values[i]
		}
	}
	for _, h := range hists {
		n := len(h.les)
		if n == 0 || !math.IsInf(h.les[n-1], 1) || h.counts[n-1] != h.count {
			t.Fatalf("round %d: %s: +Inf bucket %v, _count %v", round, h.name, h.counts, h.count)
		}
		for j := 1; j < n; j++ {
			if h.les[j] <= h.les[j-1] || h.counts[j] < h.counts[j-1] {
				t.Fatalf("round %d: %s: buckets not cumulative: le %v counts %v", round, h.name, h.les, h.counts)
			}
		}
		if h.sum < 0 || (h.count == 0 && h.sum != 0) {
			t.Fatalf("round %d: %s: _sum %v with _count %v", round, h.name, h.sum, h.count)
		}
		if h.name == "etcd_disk_wal_fsync_duration_seconds" {
			j := slices.Index(h.les, 0.008)
			above += h.count - h.counts[j]
			total += h.count
		}
	}
	return above, total
}

func TestFleetLeaderChanges(t *testing.T) {
	changes := 0
	prev := map[*member]float64{}
	advanceFleet(t, testFleetOptions(), 5, 200, func(round int, l *layout, members []*member) {
		leaders := map[*cluster]int{}
		increments := map[*cluster]map[float64]bool{}
		for _, m := range members {
			for i := range l.specs {
				switch l.specs[i].t.kind {
				case kindIsLeader:
					leaders[m.cluster] += int(m.values[i])
				case kindLeaderChanges:
					if increments[m.cluster] == nil {
						increments[m.cluster] = map[float64]bool{}
					}
					if p, ok := prev[m]; ok {
						increments[m.cluster][m.values[i]-p] = true
						if m.values[i] > p {
							changes++
						}
					}
					prev[m] = m.values[i]
				}
			}
		}
		for c, n := range leaders {
			if n != 1 {
				t.Fatalf("round %d: cluster %s has %d leaders", round, c.name, n)
			}
		}
		for c, inc := range increments {
			if len(inc) > 1 {
				t.Fatalf("round %d: the members of %s disagree on leader changes: %v", round, c.name, inc)
			}
		}
	})
	if changes == 0 {
		t.Fatal("no leader change in 200 scrapes of 5 clusters at 5% per scrape")
	}
}
