// Package amtest runs Debian's Alertmanager for integration tests, with a
// webhook receiver that records what it is notified of.
package amtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/testbin"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// binary finds Debian's prometheus-alertmanager; the test fails without it.
func binary(t testing.TB) string {
	t.Helper()
	return testbin.Alertmanager(t)
}

// Webhook is a receiver for the Alertmanager to notify: it records
// "status alertname cluster region" of every alert of every notification.
type Webhook struct {
	mu   sync.Mutex
	got  []string // "status alertname cluster region"
	seen chan struct{}
}

func (w *Webhook) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &msg); err != nil {
		return
	}
	w.mu.Lock()
	for _, a := range msg.Alerts {
		w.got = append(w.got, fmt.Sprintf("%s %s %s %s", a.Status, a.Labels["alertname"], a.Labels["cluster"], a.Labels["region"]))
	}
	w.mu.Unlock()
	select {
	case w.seen <- struct{}{}:
	default:
	}
}

// NewWebhook returns a webhook served on loopback until the test ends,
// and its URL.
func NewWebhook(t testing.TB) (*Webhook, string) {
	w := &Webhook{seen: make(chan struct{}, 1)}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return w, srv.URL
}

// WaitFor waits up to 30 s for a notification line equal to want.
func (w *Webhook) WaitFor(t testing.TB, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		for _, g := range w.got {
			if g == want {
				w.mu.Unlock()
				return
			}
		}
		got := append([]string(nil), w.got...)
		w.mu.Unlock()
		select {
		case <-w.seen:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("webhook never got %q; got %q", want, got)
		}
	}
}

// Start runs Debian's Alertmanager on a free loopback port, clustering
// off, routing every alert to hook without delay, until the test ends.
// It returns the Alertmanager's base URL.
func Start(t testing.TB, hook string) string {
	t.Helper()
	return StartSecure(t, hook, Secure{})
}

// Secure runs the Alertmanager behind its own --web.config.file (TLS,
// basic auth). Client, Username and Password are what the readiness
// check uses to reach it.
type Secure struct {
	WebConfigFile      string
	Client             *http.Client
	Username, Password string
}

// StartSecure is Start with s: over TLS (an https URL is returned) when
// s.Client is set.
func StartSecure(t testing.TB, hook string, s Secure) string {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, cluster]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: true
`, hook)
	cfgFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	args := []string{"--config.file=" + cfgFile, "--storage.path=" + dir, "--web.listen-address=" + addr,
		"--cluster.listen-address=", "--log.level=warn"}
	if s.WebConfigFile != "" {
		args = append(args, "--web.config.file="+s.WebConfigFile)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base, client := "http://"+addr, http.DefaultClient
	if s.Client != nil {
		base, client = "https://"+addr, s.Client
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		req, _ := http.NewRequest(http.MethodGet, base+"/-/ready", nil)
		if s.Username != "" {
			req.SetBasicAuth(s.Username, s.Password)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("alertmanager not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Lines returns every notification line received so far ("status
// alertname cluster region").
func (w *Webhook) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.got...)
}
