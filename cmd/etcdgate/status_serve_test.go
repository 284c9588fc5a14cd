package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestStatusConfigMasksSecrets: a config with a secret in every place a
// config holds one serves none of them on /api/v1/status/config, and
// what it serves is the config (it loads back, masks aside).
func TestStatusConfigMasksSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etcdgate.yml")
	conf := `
retention: 10d
registry:
  etcd:
    endpoints: [https://127.0.0.1:2379]
    username: reg-user
    password: SECRET-registry-etcd
ring:
  etcd:
    username: ring-user
    password: SECRET-ring-etcd
  peer_client:
    basic_auth: {username: peer, password: SECRET-peer-basic}
    tls_config:
      cert: "SECRET-NOT-cert-is-public"
      key: SECRET-peer-tls-key
alerting:
  alertmanagers:
    - static_configs: [{targets: [am1:9093]}]
      authorization: {credentials: SECRET-am-bearer}
    - static_configs: [{targets: [am2:9093]}]
      basic_auth: {username: am, password: SECRET-am-basic}
    - static_configs: [{targets: [am3:9093]}]
      oauth2: {client_id: id, client_secret: SECRET-am-oauth2, token_url: "https://idp/token"}
      http_headers:
        X-Api-Key: {secrets: [SECRET-am-header]}
`
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Ring.PeerClient.TLSConfig.Key) != "SECRET-peer-tls-key" || len(cfg.Alerting.Alertmanagers) != 3 {
		t.Fatalf("the secrets were not loaded: %+v", cfg.Ring.PeerClient)
	}
	out, err := marshalConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "SECRET-") && !strings.Contains(line, "SECRET-NOT") {
			t.Errorf("a secret is served: %s", line)
		}
	}
	if n := strings.Count(out, "<secret>"); n < 7 {
		t.Errorf("%d masks, want at least 7:\n%s", n, out)
	}
	var back map[string]any
	if err := yaml.Unmarshal([]byte(out), &back); err != nil || !strings.Contains(out, "retention: 10d") || !strings.Contains(out, "reg-user") {
		t.Fatalf("served config %v:\n%s", err, out)
	}
}
