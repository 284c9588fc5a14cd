//go:build capture

package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// TestCaptureEtcdMetrics regenerates testdata/etcd-metrics.txt.gz, the
// /metrics page of one member of a real 3-member etcd cluster after some
// traffic, from which the synthetic fleet is generated. It starts
// embedded etcd servers and takes 40 s, so it builds only when asked
// (which also keeps etcd's server out of every other test build):
//
//	go test -tags capture -run TestCaptureEtcdMetrics ./bench
func TestCaptureEtcdMetrics(t *testing.T) {
	start := time.Now()
	members := etcdtest.Start(t, etcdtest.Options{Members: 3}).Members
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{members[0].ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	etcdTraffic(t, client)
	// etcd observes peer round-trip times every 30 s (rafthttp's
	// statusMonitoringInterval): wait for one round so they exist.
	time.Sleep(35 * time.Second)

	page := scrapeEtcd(t, members[0].Etcd.Config().ListenClientUrls[0])
	self := members[0].Etcd.Server.MemberID().String()
	var text bytes.Buffer
	fmt.Fprintf(&text, "# etcdgate capture: /metrics of member 0 of a 3-member embedded etcd v3.7.3 cluster (--metrics=basic)\n")
	fmt.Fprintf(&text, "# etcdgate capture: uptime_seconds=%.0f\n", time.Since(start).Seconds())
	for line := range strings.Lines(page) {
		// HELP text is a third of the page and the generator does not need it.
		if strings.HasPrefix(line, "# HELP ") || !ownSeries(line, self) {
			continue
		}
		text.WriteString(line)
	}
	// A real member exposes ~1,800 series (~180 KiB of text): gzip keeps
	// the checked-in file small.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(text.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", captureFile), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote testdata/%s: %d bytes of text, %d gzipped", captureFile, text.Len(), gz.Len())
}

// ownSeries reports whether a line of the page belongs to member self. The
// three embedded members share the process's default registry, so the
// page holds the member-scoped series of all three; a real member exposes
// only its own: Local and server_id naming itself, To and From naming its
// peers.
func ownSeries(line, self string) bool {
	for _, name := range []string{"Local", "server_id"} {
		if v, ok := labelValue(line, name); ok && v != self {
			return false
		}
	}
	for _, name := range []string{"To", "From"} {
		if v, ok := labelValue(line, name); ok && v == self {
			return false
		}
	}
	return true
}

func labelValue(line, name string) (string, bool) {
	_, rest, ok := strings.Cut(line, "{"+name+`="`)
	if !ok {
		_, rest, ok = strings.Cut(line, ","+name+`="`)
	}
	if !ok {
		return "", false
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v, true
}

// etcdTraffic exercises the gRPC methods a Kubernetes API server uses, so
// that their series appear on /metrics.
func etcdTraffic(t *testing.T, c *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wch := c.Watch(ctx, "/registry/", clientv3.WithPrefix())
	lease, err := c.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeepAliveOnce(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	var rev int64
	for i := range 200 {
		key := fmt.Sprintf("/registry/pods/default/pod-%d", i)
		resp, err := c.Put(ctx, key, strings.Repeat("v", 100+i), clientv3.WithLease(lease.ID))
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
		if _, err := c.Get(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, "updated")).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "/registry/pods/default/pod-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MemberList(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, c.Endpoints()[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wch:
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
}

func scrapeEtcd(t *testing.T, client url.URL) string {
	t.Helper()
	resp, err := http.Get(client.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape etcd: %d %v", resp.StatusCode, err)
	}
	return string(b)
}
