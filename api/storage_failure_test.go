package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/tsdb"
)

// TestWALFailureAnswers503 runs the API over a real store whose WAL disk
// fills up: writes answer 503 with Retry-After and /-/ready answers 503
// naming the cause, reads go on, and once the disk accepts writes again
// and the store has checkpointed, both are back to normal with nothing
// acknowledged lost.
func TestWALFailureAnswers503(t *testing.T) {
	fs := &tsdb.FaultFS{}
	o := tsdb.DefaultOptions()
	o.Head.StripeSize = 16
	o.CheckpointInterval, o.WALRecoveryInterval = time.Hour, time.Hour // the test checkpoints
	o.WALFS = fs
	db, err := tsdb.Open(t.TempDir(), o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	in, err := ingest.New(db, ingest.Options{Limits: ingest.DefaultLimits(), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(New(Options{Ingester: in, Storage: db, Registerer: reg, Gatherer: reg}).Handler())
	defer srv.Close()
	e := &testEnv{t: t, server: srv}
	ready := func() (int, string) {
		resp, err := http.Get(srv.URL + "/-/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	write := func(name string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/write",
			strings.NewReader(string(encode(t, series(one(1), "__name__", name, "job", "etcd")))))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
	}

	if code, _, body := write("before"); code != http.StatusNoContent {
		t.Fatalf("healthy write: %d %s", code, body)
	}
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("healthy ready: %d %s", code, body)
	}
	fs.FailWrites(syscall.ENOSPC)
	for i, name := range []string{"during", "during_again"} { // the second is refused before the body is read
		code, retry, body := write(name)
		if code != http.StatusServiceUnavailable || retry == "" || !strings.Contains(body, "no space left on device") {
			t.Fatalf("write %d with a full WAL disk: %d Retry-After %q %q", i, code, retry, body)
		}
	}
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "WAL failed") || !strings.Contains(body, "no space left on device") {
		t.Fatalf("ready with a full WAL disk: %d %q", code, body)
	}
	if got := e.seriesNames(`{job="etcd"}`); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("reads while the WAL is failed: %v", got)
	}
	fs.FailWrites(nil)
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("ready after recovery: %d %s", code, body)
	}
	if code, _, body := write("after"); code != http.StatusNoContent {
		t.Fatalf("write after recovery: %d %s", code, body)
	}
	if got := e.seriesNames(`{job="etcd"}`); !slices.Equal(got, []string{"after", "before"}) {
		t.Fatalf("series after recovery: %v", got)
	}
}
