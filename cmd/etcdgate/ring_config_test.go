package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/testnet"
)

// TestRingConfigErrors checks that each bad ring setting is refused with
// an error naming its key, by `etcdgate check config` and by serve.
func TestRingConfigErrors(t *testing.T) {
	base := "ring:\n  enabled: true\n  node_name: n0\n  advertise_url: http://127.0.0.1:9390\n  etcd: {endpoints: [127.0.0.1:2379]}\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"rf zero", base + "  replication_factor: 0\n", "ring.replication_factor"},
		{"negative pushdown minimum", base + "  pushdown_min_series: -1\n", "ring.pushdown_min_series"},
		{"rf negative", base + "  replication_factor: -1\n", "ring.replication_factor"},
		{"no advertise url", strings.Replace(base, "advertise_url: http://127.0.0.1:9390", "advertise_url: ''", 1), "ring.advertise_url"},
		{"bad advertise url", strings.Replace(base, "http://127.0.0.1:9390", "127.0.0.1:9390", 1), "ring.advertise_url"},
		{"no etcd", strings.Replace(base, "endpoints: [127.0.0.1:2379]", "endpoints: []", 1), "ring.etcd.endpoints"},
		{"name with slash", strings.Replace(base, "node_name: n0", "node_name: a/b", 1), "ring.node_name"},
		{"tokens", base + "  tokens: 0\n", "ring.tokens"},
		{"ttl", base + "  heartbeat_ttl: 100ms\n", "ring.heartbeat_ttl"},
		{"prefix", strings.Replace(base, "endpoints: [127.0.0.1:2379]", "endpoints: [127.0.0.1:2379], prefix: /no-slash", 1), "ring.etcd.prefix"},
		{"ha labels", base + "  ha_dedup: {enabled: true, replica_label: ''}\n", "ring.ha_dedup"},
		{"forward", base + "  forward: {max_inflight_requests: 0}\n", "ring.forward"},
		{"unknown key", base + "  replicas: 3\n", "replicas"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yml")
			if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			p := startProcess(t, gatewayBinary, "check", "config", path)
			<-p.done
			if p.err == nil || !strings.Contains(p.out.String(), c.want) {
				t.Fatalf("check config: err %v, output %q; want a failure naming %s", p.err, p.out.String(), c.want)
			}
		})
	}
}

// TestRingEtcdUnreachableAtStart: serve stops with an error naming
// ring.etcd.endpoints when etcd does not answer.
func TestRingEtcdUnreachableAtStart(t *testing.T) {
	port, dead := testnet.FreePort(t), testnet.FreePort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yml")
	yaml := fmt.Sprintf("ring:\n  enabled: true\n  node_name: n0\n  advertise_url: http://127.0.0.1:%d\n  etcd: {endpoints: [127.0.0.1:%d]}\n", port, dead)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, gatewayBinary, "serve", "--config", cfg, "--listen-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", filepath.Join(dir, "data"))
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop without etcd")
	}
	if p.err == nil || !strings.Contains(p.out.String(), "ring.etcd.endpoints") {
		t.Fatalf("exit %v, output %q: want an error naming ring.etcd.endpoints", p.err, p.out.String())
	}
}

// TestRingDuplicateNodeName: a second node with a live node's name is
// refused once the first node's lease has held for the whole TTL.
func TestRingDuplicateNodeName(t *testing.T) {
	h := newRingHarness(t, "")
	h.start("n0", 1)
	port := testnet.FreePort(t)
	dup := &ringProc{name: "n0", dir: filepath.Join(t.TempDir(), "data"), port: port, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	dup.cfg = h.config(dup, 1)
	p := startProcess(t, gatewayBinary, "serve", "--config", dup.cfg, "--listen-address", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dup.dir)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("a second node named n0 was not refused")
	}
	if p.err == nil || !strings.Contains(p.out.String(), `join as \"n0\"`) || !strings.Contains(p.out.String(), "already holds this name") {
		t.Fatalf("exit %v, output %q: want a refusal of the duplicate node name", p.err, p.out.String())
	}
}

// TestRingKeepsServingWithoutEtcd: with etcd gone, nodes keep their last
// ring and keep taking writes, past the lease TTL.
func TestRingKeepsServingWithoutEtcd(t *testing.T) {
	h := newRingHarness(t, "")
	n0, n1 := h.start("n0", 2), h.start("n1", 2)
	waitActive(t, n0.url, 30*time.Second, "n0", "n1")
	waitActive(t, n1.url, 30*time.Second, "n0", "n1")
	for _, m := range h.etcd.Members {
		m.Stop()
	}
	deadline := time.Now().Add(8 * time.Second) // past the 5 s TTL
	writes := 0
	for time.Now().Before(deadline) {
		ts := time.Now().UnixMilli()
		for i, n := range []*ringProc{n0, n1} {
			if code, msg := ringWrite(n.url, seriesBody("ring_outage", i, 100, ts, 1)); code != http.StatusNoContent {
				t.Fatalf("write through %s with etcd down: %d %s", n.name, code, msg)
			}
			writes++
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitActive(t, n0.url, time.Second, "n0", "n1")
	t.Logf("%d writes acknowledged with etcd down for 8 s", writes)
}

func TestFanoutBudget(t *testing.T) {
	const gib = int64(1) << 30
	for _, c := range []struct {
		memLimit, perNode, perRead int64
	}{
		{0, gib, 2 * gib},           // no limit: the defaults
		{64 * gib, gib, 2 * gib},    // a big node: the defaults
		{4 * gib, gib / 2, gib / 2}, // 4 GiB: an eighth per read
		{256 << 20, 64 << 20, 64 << 20},
	} {
		n, r := fanoutBudget(gib, 2*gib, c.memLimit)
		if n != c.perNode || r != c.perRead {
			t.Errorf("memory limit %d: per node %d, per read %d; want %d, %d", c.memLimit, n, r, c.perNode, c.perRead)
		}
	}
}

// TestRingIdentityFlags: --ring.node-name and --ring.advertise-url
// override the shared config file's ring identity (one file for all the
// pods of a StatefulSet), and are checked like the keys.
func TestRingIdentityFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring.yml")
	cfg := "ring:\n  enabled: true\n  etcd: {endpoints: [127.0.0.1:2379]}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (serveFlags{configFile: path}).load(); err == nil || !strings.Contains(err.Error(), "ring.advertise_url") {
		t.Fatalf("no advertise URL anywhere: %v, want an error naming ring.advertise_url", err)
	}
	got, err := serveFlags{configFile: path, ringNodeName: "etcdgate-1", ringAdvertiseURL: "http://etcdgate-1.etcdgate:9390"}.load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Ring.NodeName != "etcdgate-1" || got.Ring.AdvertiseURL != "http://etcdgate-1.etcdgate:9390" {
		t.Fatalf("ring identity %q %q, want the flags'", got.Ring.NodeName, got.Ring.AdvertiseURL)
	}
	if _, err := (serveFlags{configFile: path, ringAdvertiseURL: "etcdgate-1:9390"}).load(); err == nil || !strings.Contains(err.Error(), "ring.advertise_url") {
		t.Fatalf("bad advertise URL flag: %v, want an error naming ring.advertise_url", err)
	}
}
