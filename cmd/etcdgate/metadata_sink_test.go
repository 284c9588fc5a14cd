package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"unsafe"

	"github.com/etcdgate/etcdgate/tsdb"
)

func openMetadataDB(t *testing.T, dir string) *tsdb.DB {
	t.Helper()
	o := tsdb.DefaultOptions()
	o.Head.StripeSize = 64
	db, err := tsdb.Open(dir, o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestMetadataSink: the sink keeps what a request carried after the
// request's buffer is reused, writes it through to the store (a reopen
// finds it), and allocates nothing for metadata it already holds.
func TestMetadataSink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tsdb")
	db := openMetadataDB(t, dir)
	sink := newMetadataSink(db, slog.New(slog.DiscardHandler))
	body := []byte("etcd_server_has_leader|gauge|Whether or not a leader exists.")
	s := unsafe.String(&body[0], len(body))
	md := []ingestMetadata{{Metric: s[:22], Type: s[23:28], Help: s[29:]}, {Metric: "etcd_disk_wal_fsync_duration_seconds", Type: "histogram", Help: "fsync.", Unit: "seconds"}}
	sink.AddMetadata(md)
	sink.AddMetadata(nil)
	for i := range body {
		body[i] = '#'
	}
	want := []tsdb.MetricMetadataList{
		{Metric: "etcd_disk_wal_fsync_duration_seconds", Entries: []tsdb.Metadata{{Type: "histogram", Help: "fsync.", Unit: "seconds"}}},
		{Metric: "etcd_server_has_leader", Entries: []tsdb.Metadata{{Type: "gauge", Help: "Whether or not a leader exists."}}},
	}
	if got := db.Metadata("", -1, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the body was reused: %+v\nwant %+v", got, want)
	}
	if !raceEnabled {
		same := make([]ingestMetadata, 200)
		for i := range same {
			same[i] = ingestMetadata{Metric: fmt.Sprint("m", i), Type: "counter", Help: "Things."}
		}
		sink.AddMetadata(same)
		if a := testing.AllocsPerRun(50, func() { sink.AddMetadata(same) }); a != 0 {
			t.Fatalf("%v allocations for metadata the store holds, want 0", a)
		}
	}
	// Written through: a crash would find it too (tsdb tests the crash);
	// here the files are reopened.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openMetadataDB(t, dir)
	defer db.Close()
	if got := db.Metadata("etcd_server_has_leader", -1, 0); !reflect.DeepEqual(got, want[1:]) {
		t.Fatalf("after reopening: %+v", got)
	}
}

func TestMetadataConfig(t *testing.T) {
	cfg, err := LoadConfig("testdata/metadata.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := tsdb.DefaultMetadataOptions()
	want.MaxMetrics, want.MaxPerMetric, want.MaxBytes = 5000, 3, 8<<20
	if got := cfg.DBOptions().Head.Metadata; got != want {
		t.Fatalf("metadata options %+v, want %+v", got, want)
	}
	def, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if got := def.DBOptions().Head.Metadata; got != tsdb.DefaultMetadataOptions() {
		t.Fatalf("default metadata options %+v", got)
	}
}

// TestMetadataLimitsReload: the bounds are reloadable, as the rest of
// the limits section.
func TestMetadataLimitsReload(t *testing.T) {
	f := startReloadFixture(t, "limits:\n  max_metadata_metrics: 1\n", nil)
	sink := newMetadataSink(f.g.db, slog.New(slog.DiscardHandler))
	sink.AddMetadata([]ingestMetadata{{Metric: "a", Type: "gauge"}, {Metric: "b", Type: "gauge"}})
	if got := f.g.db.Metadata("", -1, 0); len(got) != 1 {
		t.Fatalf("max_metadata_metrics 1 kept %+v", got)
	}
	f.write(t, "etcdgate.yml", "data_dir: "+f.dir+"\nlimits:\n  max_metadata_metrics: 3\n")
	if err := f.g.reload(); err != nil {
		t.Fatal(err)
	}
	sink.AddMetadata([]ingestMetadata{{Metric: "a", Type: "gauge"}, {Metric: "b", Type: "gauge"}})
	if got := f.g.db.Metadata("", -1, 0); len(got) != 2 {
		t.Fatalf("after raising max_metadata_metrics to 3: %+v", got)
	}
}
