package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// TestRingPeersAuthenticated runs a ring over TLS with authentication:
// nodes reach each other with ring.peer_client's credentials (role write
// for the internal push, read for stats), and the internal endpoints are
// no way around the write/read split.
func TestRingPeersAuthenticated(t *testing.T) {
	certs := etcdtest.NewCerts(t)
	dir := t.TempDir()
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(certs.CA)
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("CA: %v", err)
	}
	web := webConfigFor(t, dir, certs, "writer", "reader", "peer")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	secureRing := func(peerPassword string) *ringHarness {
		h := newRingHarness(t, fmt.Sprintf("  peer_client:\n    basic_auth: {username: peer, password: %s}\n    tls_config: {ca_file: %s}\n",
			peerPassword, certs.CA))
		h.top = "web:\n  authorization:\n    write: {users: [writer, peer]}\n    read: {users: [reader, peer]}\n"
		h.webConfig, h.client = web, client
		return h
	}
	h := secureRing("peer-pw")
	n0, n1 := h.start("n0", 2), h.start("n1", 2)

	do := func(method, url, user string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, user+"-pw")
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("Content-Encoding", "snappy")
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	headSeries := func(base string) map[string]int64 {
		t.Helper()
		code, body := do(http.MethodGet, base+"/api/v1/status/ring", "reader", nil)
		if code != http.StatusOK {
			t.Fatalf("ring status: %d %s", code, body)
		}
		var r struct {
			Data struct {
				Nodes []struct {
					Name       string `json:"name"`
					State      string `json:"state"`
					HeadSeries *int64 `json:"head_series"`
				} `json:"nodes"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, n := range r.Data.Nodes {
			if n.State == "ACTIVE" && n.HeadSeries != nil {
				out[n.Name] = *n.HeadSeries
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, "both nodes ACTIVE with stats over TLS", func() bool { return len(headSeries(n0.url)) == 2 })

	body := seriesBody("ring_auth", 0, 100, time.Now().UnixMilli(), 1)
	if code, msg := do(http.MethodPost, n0.url+"/api/v1/write", "writer", body); code != http.StatusNoContent {
		t.Fatalf("write through n0: %d %s", code, msg)
	}
	waitFor(t, 10*time.Second, "the write on both nodes", func() bool {
		hs := headSeries(n1.url)
		return hs["n0"] == 100 && hs["n1"] == 100
	})
	for _, c := range []struct {
		user string
		want int
	}{{"", http.StatusUnauthorized}, {"reader", http.StatusForbidden}} {
		if code, msg := do(http.MethodPost, n1.url+"/internal/v1/push", c.user, body); code != c.want {
			t.Errorf("internal push as %q: %d %s, want %d", c.user, code, msg, c.want)
		}
	}
	if code, msg := do(http.MethodGet, n1.url+"/internal/v1/stats", "writer", nil); code != http.StatusForbidden {
		t.Errorf("internal stats as writer: %d %s, want 403", code, msg)
	}
	// Fan-out reads go with the peers' credentials: a query through n1
	// reads n0 over TLS, complete (no warning). The internal select is
	// role read.
	if code, msg := do(http.MethodGet, n1.url+"/api/v1/query?query=count(ring_auth)", "reader", nil); code != http.StatusOK ||
		!strings.Contains(msg, `"100"`) || strings.Contains(msg, "warnings") {
		t.Errorf("query through n1: %d %s, want 100 series and no warning", code, msg)
	}
	if code, msg := do(http.MethodPost, n1.url+"/internal/v1/select", "writer", nil); code != http.StatusForbidden {
		t.Errorf("internal select as writer: %d %s, want 403", code, msg)
	}
	// Whole-ring state: n0 asks n1 for its part with the peers' identity
	// (a warning would name n1 if it could not), and the parts are no
	// way around the read role.
	for _, path := range []string{"/api/v1/rules", "/api/v1/alerts", "/api/v1/slo", "/api/v1/inspections"} {
		if code, body := do(http.MethodGet, n0.url+path, "reader", nil); code != http.StatusOK || strings.Contains(body, "warnings") {
			t.Errorf("%s as reader: %d %s, want 200 without warnings", path, code, body)
		}
	}
	for _, path := range []string{"/internal/v1/rules", "/internal/v1/slo", "/internal/v1/inspections"} {
		if code, msg := do(http.MethodGet, n1.url+path, "writer", nil); code != http.StatusForbidden {
			t.Errorf("%s as writer: %d %s, want 403", path, code, msg)
		}
	}

	// Peers with a wrong password: their 401 is no replica, and a write
	// that needs both nodes is not acknowledged.
	bad := secureRing("wrong")
	b0, _ := bad.start("b0", 2), bad.start("b1", 2)
	waitFor(t, 30*time.Second, "both nodes ACTIVE", func() bool {
		code, body := do(http.MethodGet, b0.url+"/api/v1/status/ring", "reader", nil)
		return code == http.StatusOK && strings.Count(body, `"ACTIVE"`) == 2
	})
	if code, msg := do(http.MethodPost, b0.url+"/api/v1/write", "writer", body); code != http.StatusInternalServerError || !strings.Contains(msg, "401") {
		t.Fatalf("write whose peer refused the credentials: %d %s, want 500 naming the 401", code, msg)
	}
	// A read whose peer refuses the credentials counts that peer as
	// failed (with RF 2 of 2 nodes an acknowledged sample is on both, so
	// one failed node still leaves a complete answer).
	if code, msg := do(http.MethodGet, b0.url+"/api/v1/query?query=count(ring_auth)", "reader", nil); code != http.StatusOK {
		t.Fatalf("query whose peer refused the credentials: %d %s", code, msg)
	}
	if code, msg := do(http.MethodGet, b0.url+"/metrics", "reader", nil); code != http.StatusOK ||
		!strings.Contains(msg, `etcdgate_ring_fanout_requests_total{peer="b1",result="error"} 1`) {
		t.Fatalf("fan-out errors of b1 on b0: %d, want 1 (%d bytes of metrics)", code, len(msg))
	}
	if code, body := do(http.MethodGet, b0.url+"/api/v1/rules", "reader", nil); code != http.StatusOK || !strings.Contains(body, "node b1 did not answer") {
		t.Fatalf("rules whose peer refused the credentials: %d %s, want a warning naming b1", code, body)
	}
}
