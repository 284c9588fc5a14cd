package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/etcdgate/etcdgate/evaluator/notifier/amtest"
	"github.com/etcdgate/etcdgate/internal/etcdtest"
	"github.com/etcdgate/etcdgate/internal/testnet"
)

// secureGateway is an etcdgate process serving TLS with basic auth.
type secureGateway struct {
	t      *testing.T
	p      *process
	base   string // https://127.0.0.1:port
	client *http.Client
	certs  *etcdtest.Certs
	dir    string
}

// webConfigFor writes a web config file: server TLS from certs, client
// certificates verified if given, and users with password "<user>-pw".
func webConfigFor(t *testing.T, dir string, certs *etcdtest.Certs, users ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_ca_file: %s\n  client_auth_type: VerifyClientCertIfGiven\n",
		certs.ServerCert, certs.ServerKey, certs.CA)
	b.WriteString("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\nbasic_auth_users:\n")
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %s: %s\n", u, h)
	}
	path := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const rolesConfig = `web:
  authorization:
    write: {users: [writer, prometheus], client_certs: [scraper]}
    read: {users: [reader]}
    admin: {users: [admin]}
`

// startSecureGateway runs `etcdgate serve` with a web config file (TLS,
// users writer, reader, admin, prometheus) and rolesConfig.
func startSecureGateway(t *testing.T, extra ...string) *secureGateway {
	t.Helper()
	g := &secureGateway{t: t, certs: etcdtest.NewCerts(t), dir: t.TempDir()}
	webCfg := webConfigFor(t, g.dir, g.certs, "writer", "reader", "admin", "prometheus")
	cfgPath := filepath.Join(g.dir, "etcdgate.yml")
	if err := os.WriteFile(cfgPath, []byte(rolesConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(g.certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	g.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	port := testnet.FreePort(t)
	g.base = fmt.Sprintf("https://127.0.0.1:%d", port)
	args := append([]string{"serve", "--listen-address", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", filepath.Join(g.dir, "data"),
		"--config", cfgPath, "--web.config.file", webCfg}, extra...)
	g.p = startProcess(t, gatewayBinary, args...)
	waitFor(t, 20*time.Second, "etcdgate ready over TLS", func() bool {
		code, _ := g.do(http.MethodGet, "/-/ready", "", nil)
		return code == http.StatusOK
	})
	return g
}

// do sends a request as user (password "<user>-pw"; "" sends none).
func (g *secureGateway) do(method, path, user string, body []byte) (int, string) {
	req, err := http.NewRequest(method, g.base+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, user+"-pw")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func leaderWrite(t *testing.T) []byte {
	t.Helper()
	ts := prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: "etcd_server_has_leader"}, {Name: "cluster", Value: "c1"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
	}
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// TestServeAuth runs the binary with TLS, basic auth and roles: health is
// open, everything else needs credentials; a writer cannot query and a
// reader cannot write; the admin reloads over HTTP; the plain-HTTP port is
// not served; a reload with a broken web config changes nothing, and one
// that moves a user between roles applies to the next request.
func TestServeAuth(t *testing.T) {
	g := startSecureGateway(t, "--web.enable-lifecycle")
	query := "/api/v1/query?" + url.Values{"query": {"etcd_server_has_leader"}}.Encode()
	for _, tc := range []struct {
		method, path, user string
		body               []byte
		want               int
	}{
		{"GET", "/-/healthy", "", nil, 200},
		{"GET", "/-/ready", "", nil, 200},
		{"GET", query, "", nil, 401},
		{"GET", "/metrics", "", nil, 401},
		{"POST", "/api/v1/write", "", leaderWrite(t), 401},
		{"POST", "/-/reload", "", nil, 401},
		{"GET", query, "nobody", nil, 401},
		{"POST", "/api/v1/write", "writer", leaderWrite(t), 204},
		{"GET", query, "writer", nil, 403},
		{"GET", "/metrics", "writer", nil, 403},
		{"POST", "/api/v1/write", "reader", leaderWrite(t), 403},
		{"GET", query, "reader", nil, 200},
		{"GET", "/metrics", "reader", nil, 200},
		{"POST", "/-/reload", "reader", nil, 403},
		{"POST", "/-/reload", "admin", nil, 200},
		{"GET", "/debug/pprof/", "admin", nil, 404}, // --web.enable-pprof is off
		// The status and helper endpoints of issue 15: reads, but the
		// config (its secrets masked) only for admins.
		{"GET", "/api/v1/status/config", "writer", nil, 403},
		{"GET", "/api/v1/status/config", "reader", nil, 403},
		{"GET", "/api/v1/status/config", "admin", nil, 200},
		{"GET", "/api/v1/status/runtimeinfo", "writer", nil, 403},
		{"GET", "/api/v1/status/runtimeinfo", "reader", nil, 200},
		{"GET", "/api/v1/format_query?query=up", "writer", nil, 403},
		{"GET", "/api/v1/format_query?query=up", "reader", nil, 200},
		{"GET", "/api/v1/parse_query?query=up", "writer", nil, 403},
		{"GET", "/api/v1/parse_query?query=up", "reader", nil, 200},
		{"GET", "/api/v1/query_exemplars?query=up", "writer", nil, 403},
		{"GET", "/api/v1/query_exemplars?query=up", "reader", nil, 200},
	} {
		if code, body := g.do(tc.method, tc.path, tc.user, tc.body); code != tc.want {
			t.Errorf("%s %s as %q: %d %s, want %d", tc.method, tc.path, tc.user, code, body, tc.want)
		}
	}
	plain := strings.Replace(g.base, "https://", "http://", 1)
	if code, body := httpGet(plain + query); code == http.StatusOK {
		t.Fatalf("plain HTTP served a query: %s", body)
	}
	if strings.Contains(g.p.out.String(), "-pw") || strings.Contains(g.p.out.String(), "$2a$") {
		t.Fatalf("a password or hash in the log:\n%s", g.p.out.String())
	}

	// A broken web config: the reload fails, the old users stay.
	webCfg := filepath.Join(g.dir, "web.yml")
	good, _ := os.ReadFile(webCfg)
	if err := os.WriteFile(webCfg, []byte("basic_auth_users:\n  reader: not-a-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := g.do("POST", "/-/reload", "admin", nil); code != http.StatusInternalServerError || !strings.Contains(body, "web config") {
		t.Fatalf("reload of a broken web config: %d %s", code, body)
	}
	if code, _ := g.do("GET", query, "reader", nil); code != 200 {
		t.Fatalf("reader after a failed reload: %d", code)
	}
	// Roles change at reload (SIGHUP): reader becomes a writer only.
	os.WriteFile(webCfg, good, 0o600)
	os.WriteFile(filepath.Join(g.dir, "etcdgate.yml"), []byte(`web:
  authorization:
    write: {users: [writer, reader]}
    admin: {users: [admin]}
`), 0o600)
	g.p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the new roles", func() bool {
		code, _ := g.do("GET", query, "reader", nil)
		return code == http.StatusForbidden
	})
	if code, body := g.do("POST", "/api/v1/write", "reader", leaderWrite(t)); code != http.StatusNoContent {
		t.Fatalf("reader as a writer after reload: %d %s", code, body)
	}
}

// TestServeAuthClientCert: a client certificate of the CA whose CN is a
// writer writes without a password; one of another CA is refused in
// the handshake.
func TestServeAuthClientCert(t *testing.T) {
	g := startSecureGateway(t)
	send := func(certs *etcdtest.Certs, cn string) (int, error) {
		cf, kf := certs.IssueClient(t, cn)
		pair, err := tls.LoadX509KeyPair(cf, kf)
		if err != nil {
			t.Fatal(err)
		}
		tr := g.client.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{pair}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := c.Post(g.base+"/api/v1/write", "application/x-protobuf", bytes.NewReader(leaderWrite(t)))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := send(g.certs, "scraper"); err != nil || code != http.StatusNoContent {
		t.Fatalf("scraper certificate: %d %v", code, err)
	}
	if code, err := send(g.certs, "grafana"); err != nil || code != http.StatusForbidden {
		t.Fatalf("certificate without a role: %d %v", code, err)
	}
	if code, err := send(etcdtest.NewCerts(t), "scraper"); err == nil {
		t.Fatalf("certificate of another CA: %d", code)
	}
}

// TestServeRefusesBadWebConfig: serve stops at start with a clear error.
func TestServeRefusesBadWebConfig(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"plain password":    "basic_auth_users:\n  alice: hunter2\n",
		"missing cert":      "tls_server_config:\n  cert_file: nope.pem\n  key_file: nope-key.pem\n",
		"unknown role user": "",
	} {
		t.Run(name, func(t *testing.T) {
			webCfg := filepath.Join(dir, "web.yml")
			os.WriteFile(webCfg, []byte(body), 0o600)
			args := []string{"serve", "--listen-address", fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t)),
				"--data-dir", filepath.Join(dir, "data"), "--web.config.file", webCfg}
			want := "invalid web configuration"
			if body == "" {
				cfg := filepath.Join(dir, "etcdgate.yml")
				os.WriteFile(cfg, []byte("web: {authorization: {read: {users: [ghost]}}}\n"), 0o600)
				os.WriteFile(webCfg, []byte(fmt.Sprintf("basic_auth_users:\n  alice: %s\n", mustHash(t, "pw"))), 0o600)
				args = append(args, "--config", cfg)
				want = "is not in basic_auth_users"
			}
			p := startProcess(t, gatewayBinary, args...)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop")
			}
			if p.err == nil || !strings.Contains(p.out.String(), want) {
				t.Fatalf("exit %v, output:\n%s", p.err, p.out.String())
			}
			if strings.Contains(p.out.String(), "hunter2") {
				t.Fatalf("the password in the log:\n%s", p.out.String())
			}
		})
	}
	var out, errOut bytes.Buffer
	good := filepath.Join(dir, "good.yml")
	os.WriteFile(good, []byte(fmt.Sprintf("basic_auth_users:\n  alice: %s\n", mustHash(t, "pw"))), 0o600)
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("basic_auth_users:\n  alice: hunter2\n"), 0o600)
	if code := run([]string{"check", "web-config", good}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "SUCCESS") {
		t.Fatalf("check web-config good: %d %s %s", code, out.String(), errOut.String())
	}
	if code := run([]string{"check", "web-config", bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "FAILED") {
		t.Fatalf("check web-config bad: %d %s", code, errOut.String())
	}
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// authTestBinary finds an external binary the auth tests need, failing
// with what to install when it is missing.
func authTestBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not installed: apt-get install %s (.ci/run installs it)", name, pkg)
	}
	return path
}

// TestPrometheusRemoteWriteSecure: Debian's Prometheus remote-writes to
// etcdgate over TLS (verifying etcdgate's certificate against the CA)
// with basic auth as a writer; a reader then queries what arrived, and
// the writer's credential cannot read it.
func TestPrometheusRemoteWriteSecure(t *testing.T) {
	promBin := authTestBinary(t, "prometheus", "prometheus")
	g := startSecureGateway(t)
	promPort := testnet.FreePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:%d"]}]
remote_write:
  - url: %s/api/v1/write
    basic_auth: {username: prometheus, password: prometheus-pw}
    tls_config: {ca_file: %q}
    queue_config: {batch_send_deadline: 1s}
`, promPort, g.base, g.certs.CA)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := startProcess(t, promBin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort), "--storage.remote.flush-deadline=5s")
	query := "/api/v1/query?" + url.Values{"query": {`up{job="prometheus"}`}}.Encode()
	waitFor(t, 90*time.Second, "Prometheus's up series, queried as reader", func() bool {
		code, body := g.do("GET", query, "reader", nil)
		return code == http.StatusOK && strings.Contains(body, `"job":"prometheus"`)
	})
	if code, _ := g.do("GET", query, "prometheus", nil); code != http.StatusForbidden {
		t.Fatalf("the writer's credential queried: %d", code)
	}
	if err := prom.stop(30 * time.Second); err != nil {
		t.Fatalf("stop prometheus: %v", err)
	}
	_, metrics := g.do("GET", "/metrics", "reader", nil)
	for _, code := range []string{"401", "403"} {
		if strings.Contains(metrics, fmt.Sprintf(`etcdgate_http_requests_total{code=%q,handler="write"}`, code)) {
			t.Fatalf("Prometheus's writes were refused with %s", code)
		}
	}
	if !strings.Contains(metrics, `etcdgate_http_requests_total{code="204",handler="write"}`) {
		t.Fatal("no write of Prometheus's was accepted")
	}
}

// TestServeRulesToSecureAlertmanager: Debian's Alertmanager behind its
// own web config (TLS and basic auth) receives etcdgate's alerts, sent
// with the alertmanagers entry's tls_config (a CA file relative to the
// config) and basic_auth.
func TestServeRulesToSecureAlertmanager(t *testing.T) {
	authTestBinary(t, "prometheus-alertmanager", "prometheus-alertmanager")
	certs := etcdtest.NewCerts(t)
	dir := t.TempDir()
	amWeb := filepath.Join(dir, "am-web.yml")
	if err := os.WriteFile(amWeb, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  etcdgate: %s\n",
		certs.ServerCert, certs.ServerKey, mustHash(t, "am-pw"))), 0o600); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	amClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	hook, hookURL := amtest.NewWebhook(t)
	amURL := amtest.StartSecure(t, hookURL, amtest.Secure{WebConfigFile: amWeb, Client: amClient, Username: "etcdgate", Password: "am-pw"})
	if resp, err := amClient.Get(amURL + "/api/v2/alerts"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Alertmanager without credentials: %v %v", err, resp)
	}
	am, _ := url.Parse(amURL)

	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etcd.yml"), []byte(e2eRules), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`rule_files: [etcd.yml]
evaluation_interval: 1s
alerting:
  resend_delay: 1s
  external_labels: {region: eu-west}
  alertmanagers:
    - scheme: https
      static_configs: [{targets: [%q]}]
      tls_config: {ca_file: ca.pem}
      basic_auth: {username: etcdgate, password: am-pw}
`, am.Host)
	cfgFile := filepath.Join(dir, "etcdgate.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p, base := startGateway(t, "--config", cfgFile)
	pushLeader(t, base, 0)
	hook.WaitFor(t, "firing EtcdNoLeader c1 eu-west")
	if strings.Contains(p.out.String(), "am-pw") {
		t.Fatalf("the Alertmanager password in the log:\n%s", p.out.String())
	}
}

// TestAlertmanagerHTTPConfig: the alertmanagers entry takes Prometheus's
// http_config keys; files are relative to the config, a missing one or a
// contradictory entry fails the load, and secrets are masked when the
// config is marshalled.
func TestAlertmanagerHTTPConfig(t *testing.T) {
	dir := t.TempDir()
	certs := etcdtest.NewCerts(t)
	pem, _ := os.ReadFile(certs.CA)
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem, 0o600)
	load := func(entry string) (Config, error) {
		path := filepath.Join(dir, "etcdgate.yml")
		os.WriteFile(path, []byte("alerting:\n  alertmanagers:\n    - static_configs: [{targets: [am:9093]}]\n"+entry), 0o600)
		return LoadConfig(path)
	}
	cfg, err := load("      scheme: https\n      tls_config: {ca_file: ca.pem}\n      basic_auth: {username: u, password: s3cret}\n")
	if err != nil {
		t.Fatal(err)
	}
	am := cfg.Alerting.Alertmanagers[0].HTTPClientConfig
	if am.TLSConfig.CAFile != filepath.Join(dir, "ca.pem") || am.BasicAuth == nil || string(am.BasicAuth.Password) != "s3cret" {
		t.Fatalf("parsed %+v", am)
	}
	o, err := cfg.NotifierOptions()
	if err != nil || o.Clients["https://am:9093/"] == nil {
		t.Fatalf("clients %v, %v", o.Clients, err)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil || strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "<secret>") {
		t.Fatalf("marshalled config shows the secret or no mask: %v\n%s", err, out)
	}
	for name, entry := range map[string]string{
		"missing CA":       "      tls_config: {ca_file: nope.pem}\n",
		"basic and bearer": "      basic_auth: {username: u, password: p}\n      authorization: {credentials: t}\n",
		"unknown key":      "      tls_confg: {ca_file: ca.pem}\n",
	} {
		if _, err := load(entry); err == nil {
			t.Errorf("%s: loaded", name)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows a secret: %v", name, err)
		}
	}
}

// TestRegistryEtcdTLSAndAuth: the registry's etcd serves TLS only, with
// client certificates and etcd authentication on; etcdgate reads the
// registry with registry.etcd.tls and its etcd user; a wrong password
// stops the start with a clear error and is never logged.
func TestRegistryEtcdTLSAndAuth(t *testing.T) {
	certs := etcdtest.NewCerts(t)
	cluster := etcdtest.Start(t, etcdtest.Options{TLS: certs})
	client := cluster.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "/etcdgate/clusters/"
	if _, err := client.Put(ctx, prefix+"etcd-a", `{"product": "payments"}`); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := client.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := client.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := client.UserAdd(ctx, "registry", "registry-pw"); return err },
		func() error { _, err := client.RoleAdd(ctx, "registry-read"); return err },
		func() error {
			_, err := client.RoleGrantPermission(ctx, "registry-read", prefix, clientv3.GetPrefixRangeEnd(prefix),
				clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := client.UserGrantRole(ctx, "registry", "registry-read"); return err },
		func() error { _, err := client.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{certs.CA, certs.ClientCert, certs.ClientKey} {
		b, _ := os.ReadFile(f)
		os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600)
	}
	config := func(password string) string {
		path := filepath.Join(dir, password+".yml")
		os.WriteFile(path, []byte(fmt.Sprintf(`registry:
  etcd:
    endpoints: [%s]
    prefix: %s
    tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem}
    username: registry
    password: %s
`, strings.Join(cluster.Endpoints(), ", "), prefix, password)), 0o600)
		return path
	}
	p, base := startGateway(t, "--config", config("registry-pw"))
	waitFor(t, 20*time.Second, "the registry's cluster", func() bool {
		return metricValue(t, base, "etcdgate_relabel_registry_clusters") == "1"
	})
	// A wrong password stops the start with etcd's reason.
	bad := startProcess(t, gatewayBinary, "serve", "--listen-address", fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t)),
		"--data-dir", t.TempDir(), "--config", config("wrong-pw"))
	select {
	case <-bad.done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve with a wrong registry password did not stop")
	}
	if bad.err == nil || !strings.Contains(bad.out.String(), "registry etcd client: etcdserver: authentication failed") {
		t.Fatalf("exit %v:\n%s", bad.err, bad.out.String())
	}
	for _, out := range []string{p.out.String(), bad.out.String()} {
		if strings.Contains(out, "registry-pw") || strings.Contains(out, "wrong-pw") {
			t.Fatalf("a password in the log:\n%s", out)
		}
	}
}

// TestRegistryEtcdConfigRefused: inconsistent registry etcd credentials
// or a missing TLS file fail the load; the password is masked when the
// config is marshalled.
func TestRegistryEtcdConfigRefused(t *testing.T) {
	dir := t.TempDir()
	load := func(etcd string) (Config, error) {
		path := filepath.Join(dir, "etcdgate.yml")
		os.WriteFile(path, []byte("registry:\n  etcd:\n    endpoints: [https://127.0.0.1:2379]\n"+etcd), 0o600)
		return LoadConfig(path)
	}
	cfg, err := load("    username: u\n    password: s3cret\n")
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := yaml.Marshal(cfg); strings.Contains(string(out), "s3cret") {
		t.Fatalf("marshalled config shows the password:\n%s", out)
	}
	for name, etcd := range map[string]string{
		"user without password": "    username: u\n",
		"password without user": "    password: p\n",
		"cert without key":      "    tls: {cert_file: c.pem}\n",
		"missing CA":            "    tls: {ca_file: nope.pem}\n",
	} {
		if _, err := load(etcd); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// TestServeProbeEndpointAllowList: a registry cluster whose endpoint is
// outside probe.registry_endpoint_allow is never dialed (a listener
// counts connections) and is reported as refused; an allowed cluster of
// the same registry is probed meanwhile.
func TestServeProbeEndpointAllowList(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dialed atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			conn.Close()
		}
	}()
	defer ln.Close()
	dir := t.TempDir()
	registry := fmt.Sprintf(`clusters:
  - cluster: etcd-ok
    product: payments
    endpoints: [%s]
  - cluster: etcd-evil
    product: payments
    endpoints: [http://%s]
`, c.Endpoints()[0], ln.Addr())
	os.WriteFile(filepath.Join(dir, "clusters.yml"), []byte(registry), 0o600)
	cfg := fmt.Sprintf(`registry:
  file: clusters.yml
probe:
  registry_targets: true
  registry_endpoint_allow: [%q]
  inspections:
    health: {interval: 200ms, timeout: 5s}
`, c.Endpoints()[0])
	cfgPath := filepath.Join(dir, "etcdgate.yml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	p, base := startGateway(t, "--config", cfgPath)
	waitFor(t, 20*time.Second, "health runs of the allowed cluster", func() bool {
		v := metricValue(t, base, `etcdgate_probe_runs_total{inspection="health",status="success"}`)
		return v != "" && v != "0" && v != "1" && v != "2"
	})
	if n := dialed.Load(); n != 0 {
		t.Fatalf("the refused endpoint was dialed %d times", n)
	}
	if v := metricValue(t, base, "etcdgate_probe_registry_targets_refused"); v != "1" {
		t.Fatalf("etcdgate_probe_registry_targets_refused = %q", v)
	}
	if !strings.Contains(p.out.String(), "cluster=etcd-evil") {
		t.Fatalf("the refusal is not logged:\n%s", p.out.String())
	}
	_, body := httpGet(base + "/api/v1/inspections?cluster=etcd-evil")
	if strings.Contains(body, `"cluster":"etcd-evil"`) {
		t.Fatalf("the refused cluster has records: %s", body)
	}
}

// TestHandshakeLogThrottled: a flood of failed TLS handshakes logs one
// line per interval; other server errors pass.
func TestHandshakeLogThrottled(t *testing.T) {
	var buf bytes.Buffer
	l := serverErrorLog(slog.New(slog.NewTextHandler(&buf, nil)))
	for range 100 {
		l.Printf("http: TLS handshake error from 10.0.0.1:1234: remote error: tls: bad certificate")
	}
	l.Printf("http: Accept error: too many open files")
	if n := strings.Count(buf.String(), "TLS handshake error"); n != 1 {
		t.Fatalf("%d handshake lines:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "Accept error") {
		t.Fatalf("other errors dropped:\n%s", buf.String())
	}
}

// TestAttackPasswordFlood: concurrent requests with ever new wrong
// passwords cost bcrypt each, but take at most half the cores: they get
// 401, health answers meanwhile, a credential already verified is served
// from the cache, and memory stays bounded.
func TestAttackPasswordFlood(t *testing.T) {
	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte("reader-pw"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte(fmt.Sprintf("basic_auth_users:\n  reader: %s\n", h)), 0o600)
	port := testnet.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startProcess(t, gatewayBinary, "serve", "--listen-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", filepath.Join(dir, "data"), "--web.config.file", webCfg)
	waitFor(t, 20*time.Second, "etcdgate ready", func() bool { code, _ := httpGet(base + "/-/ready"); return code == http.StatusOK })
	get := func(user, pass string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/labels", nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("reader", "reader-pw"); code != http.StatusOK { // verified once, then cached
		t.Fatalf("reader: %d", code)
	}
	before := procStatusBytes(t, p, "VmRSS")
	const workers, perWorker = 16, 4
	codes := make(chan int, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				codes <- get("reader", fmt.Sprintf("guess-%d-%d", w, i))
			}
		})
	}
	var slowest time.Duration
	flooding := make(chan struct{})
	go func() { wg.Wait(); close(flooding) }()
	for done := false; !done; {
		select {
		case <-flooding:
			done = true
		case <-time.After(100 * time.Millisecond):
			start := time.Now()
			if code, _ := httpGet(base + "/-/healthy"); code != http.StatusOK {
				t.Fatalf("health during the flood: %d", code)
			}
			if code := get("reader", "reader-pw"); code != http.StatusOK {
				t.Fatalf("cached credential during the flood: %d", code)
			}
			slowest = max(slowest, time.Since(start))
		}
	}
	close(codes)
	for c := range codes {
		if c != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", c)
		}
	}
	peak := procStatusBytes(t, p, "VmHWM")
	t.Logf("%d wrong passwords; slowest health + cached read during the flood %s; RSS before %d MiB, peak %d MiB",
		workers*perWorker, slowest.Round(time.Millisecond), before>>20, peak>>20)
	if slowest > 2*time.Second {
		t.Fatalf("health and a cached read took %s during the flood", slowest)
	}
	if growth := peak - before; growth > 100<<20 {
		t.Fatalf("peak RSS grew by %d MiB", growth>>20)
	}
	if v := metricValueAs(t, base, "reader", "reader-pw", `etcdgate_http_auth_refused_total{reason="unauthenticated"}`); v != fmt.Sprint(workers*perWorker) {
		t.Fatalf("refusals counted: %q", v)
	}
}

// metricValueAs is metricValue with basic-auth credentials.
func metricValueAs(t *testing.T, base, user, pass, series string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest
		}
	}
	return ""
}

// TestCheckConfigWithWebConfig: check config --web.config.file checks
// web.authorization against the users of the web config file.
func TestCheckConfigWithWebConfig(t *testing.T) {
	dir := t.TempDir()
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte(fmt.Sprintf("basic_auth_users:\n  alice: %s\n", mustHash(t, "pw"))), 0o600)
	good, bad := filepath.Join(dir, "good.yml"), filepath.Join(dir, "bad.yml")
	os.WriteFile(good, []byte("web: {authorization: {read: {users: [alice]}}}\n"), 0o600)
	os.WriteFile(bad, []byte("web: {authorization: {read: {users: [bob]}}}\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "config", "--web.config.file", webCfg, good}, &out, &errOut); code != 0 {
		t.Fatalf("good: %d %s", code, errOut.String())
	}
	if code := run([]string{"check", "config", bad}, &out, &errOut); code != 0 {
		t.Fatalf("bad without the web config (cannot be checked): %d %s", code, errOut.String())
	}
	if code := run([]string{"check", "config", "--web.config.file", webCfg, bad}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), `user "bob" is not in basic_auth_users`) {
		t.Fatalf("bad: %d %s", code, errOut.String())
	}
}
