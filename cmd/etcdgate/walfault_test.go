package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWALDiskFullAnswers503 fills the disk under a running etcdgate's
// WAL: its next segments are made symlinks to /dev/full, where every
// write fails with ENOSPC. Writes must answer 503 with Retry-After and
// /-/ready 503 naming the cause; once the disk has room again (the links
// are gone) the node must be ready and accept writes again by itself; and
// after kill -9 every write acknowledged before, during and after is
// stored exactly once.
func TestWALDiskFullAnswers503(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("this test needs /dev/full to fill the WAL's disk: %v", err)
	}
	dataDir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "etcdgate.yml")
	cfg := "head:\n  checkpoint_interval: 200ms\n  out_of_order_window: 0s\nwal:\n  recovery_interval: 50ms\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, url := startGatewayIn(t, dataDir, "--config", cfgPath)
	c := &crashClient{id: 0, next: time.Now().Add(-time.Hour).UnixMilli()}
	client := &http.Client{Timeout: 10 * time.Second}
	write := func() (code int, retryAfter, body string) {
		ts := c.next
		c.next += crashStep
		resp, err := client.Post(url+"/api/v1/write", "application/x-protobuf", strings.NewReader(string(c.body(ts))))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusNoContent {
			c.acked = append(c.acked, ts)
		}
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
	}
	for range 20 {
		if code, _, body := write(); code != http.StatusNoContent {
			t.Fatalf("write on a healthy disk: %d %s", code, body)
		}
	}

	// The disk fills: the next segments the WAL opens are /dev/full.
	walDir := filepath.Join(dataDir, "tsdb", "wal")
	segs, err := os.ReadDir(walDir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("WAL directory: %v (%d entries)", err, len(segs))
	}
	var newest int
	fmt.Sscanf(segs[len(segs)-1].Name(), "%d", &newest)
	var links []string
	for i := newest + 1; i <= newest+500; i++ {
		link := filepath.Join(walDir, fmt.Sprintf("%08d", i))
		if err := os.Symlink("/dev/full", link); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
		links = append(links, link)
	}
	var code int
	var retryAfter, body string
	waitFor(t, 30*time.Second, "a write refused for the full disk", func() bool {
		code, retryAfter, body = write()
		return code != http.StatusNoContent
	})
	// /dev/full fails a write with ENOSPC and an fsync with EINVAL:
	// whichever the WAL met first is the cause.
	if code != http.StatusServiceUnavailable || retryAfter == "" || !strings.Contains(body, "WAL failed") {
		t.Fatalf("write on a full disk: %d Retry-After %q %q", code, retryAfter, body)
	}
	code, body = httpGet(url + "/-/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "WAL failed") || !strings.Contains(body, "wal/0") {
		t.Fatalf("/-/ready on a full disk: %d %q", code, body)
	}
	if code, _, body := write(); code != http.StatusServiceUnavailable {
		t.Fatalf("second write on a full disk: %d %q", code, body)
	}

	// Room again: the node recovers by itself.
	for _, link := range links {
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "ready again once the disk has room", func() bool {
		code, _ := httpGet(url + "/-/ready")
		return code == http.StatusOK
	})
	for range 20 {
		if code, _, body := write(); code != http.StatusNoContent {
			t.Fatalf("write after recovery: %d %s", code, body)
		}
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	verifyCrashData(t, dataDir, []*crashClient{c}, 0)
}
