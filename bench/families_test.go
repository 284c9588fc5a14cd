package bench

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// capturedLines counts the sample lines of the checked-in capture.
func capturedLines(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", captureFile))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, capturedEtcdMetrics) {
		t.Fatal("the embedded capture differs from testdata")
	}
	n := 0
	for line := range strings.Lines(string(text)) {
		if line != "\n" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

func TestCaptureFamilies(t *testing.T) {
	text, err := CapturedEtcdMetrics()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := parseCapture(text)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	total := 0
	for _, f := range ts.families {
		types[f.Name] = f.Type
		total += f.Series
	}
	for name, typ := range map[string]string{
		"etcd_server_has_leader":                    "gauge",
		"etcd_server_is_leader":                     "gauge",
		"etcd_server_leader_changes_seen_total":     "counter",
		"etcd_disk_wal_fsync_duration_seconds":      "histogram",
		"etcd_disk_backend_commit_duration_seconds": "histogram",
		"etcd_network_peer_round_trip_time_seconds": "histogram",
		"etcd_mvcc_db_total_size_in_bytes":          "gauge",
		"grpc_server_handled_total":                 "counter",
		"go_gc_duration_seconds":                    "summary",
		"process_resident_memory_bytes":             "gauge",
	} {
		if types[name] != typ {
			t.Errorf("family %s: type %q, want %q", name, types[name], typ)
		}
	}
	// Families count what the captured member exposes, all of it.
	if lines := capturedLines(t); total != lines {
		t.Errorf("families hold %d series, the capture has %d lines", total, lines)
	}
	for _, tc := range []struct {
		members int
		want    func(base, peer int) int
	}{
		{3, func(base, peer int) int { return base + 2*peer }},
		{1, func(base, peer int) int { return base }},
		{5, func(base, peer int) int { return base + 4*peer }},
	} {
		base, peer := 0, 0
		for _, tm := range ts.templates {
			if tm.hasPeer {
				peer++
			} else {
				base++
			}
		}
		l := newLayout(ts, tc.members)
		if got, want := l.seriesPerMember(), tc.want(base, peer); got != want {
			t.Errorf("%d members: %d series per member, want %d", tc.members, got, want)
		}
		if tc.members == 3 && l.seriesPerMember() != total+5 {
			t.Errorf("3 members: %d series per member, want the capture's %d and 5 scrape series", l.seriesPerMember(), total)
		}
	}
	if peer := countPeerTemplates(ts); peer == 0 {
		t.Error("no series names a peer")
	}
}

func countPeerTemplates(ts *templateSet) int {
	n := 0
	for _, tm := range ts.templates {
		if tm.hasPeer {
			n++
		}
	}
	return n
}

func TestParseCaptureRejectsGarbage(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "not a { metric\n"} {
		if _, err := parseCapture([]byte(text)); err == nil {
			t.Errorf("parseCapture(%q) succeeded", text)
		}
	}
}
