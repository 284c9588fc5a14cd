package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/config"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
	"github.com/etcdgate/etcdgate/ring"
)

// testUsers are the basic-auth users of the auth tests; each password is
// the user name plus "-secret".
var testUsers = []string{"writer", "reader", "admin", "root"}

func testWebConfig(t *testing.T) *web.Config {
	t.Helper()
	users := make(map[string]config.Secret)
	for _, u := range testUsers {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-secret"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users[u] = config.Secret(h)
	}
	return &web.Config{Users: users, HTTPConfig: web.HTTPConfig{HTTP2: true}}
}

var testAuthorization = &Authorization{
	Write: Principals{Users: []string{"writer", "root"}},
	Read:  Principals{Users: []string{"reader", "root"}},
	Admin: Principals{Users: []string{"admin", "root"}},
}

// certAuthorization adds client certificates by CN to testAuthorization.
var certAuthorization = &Authorization{
	Write: Principals{Users: []string{"writer", "root"}, ClientCerts: []string{"scraper"}},
	Read:  Principals{Users: []string{"reader", "root"}, ClientCerts: []string{"grafana"}},
	Admin: Principals{Users: []string{"admin", "root"}, ClientCerts: []string{"operator"}},
}

// newAuthAPI is the test API with lifecycle and pprof on, guarded by p.
func newAuthAPI(t *testing.T, p *AuthPolicy) (*API, *prometheus.Registry) {
	t.Helper()
	env := newTestEnv(t)
	reg := prometheus.NewRegistry()
	b := env.api.backend.Load()
	a := New(Options{
		Ingester: b.ingester, Storage: b.storage, Registerer: reg, Gatherer: reg,
		Reload: func() error { return nil }, EnableLifecycle: true, EnablePprof: true,
		RelabelStatus: func() any { return "off" }, Auth: p, Ring: staticRing{},
		RingAggregate: func(context.Context, ring.AggregateRequest, []uint64) ([]byte, error) { return nil, nil },
		Config:        func() (string, error) { return "retention: 15d\n", nil }, RuntimeInfo: func() RuntimeInfo { return RuntimeInfo{} },
	})
	return a, reg
}

// staticRing turns the ring's endpoints on for the route walk.
type staticRing struct{}

func (staticRing) RingStatus(context.Context) any { return map[string]any{"nodes": []any{}} }

func mustPolicy(t *testing.T, o AuthOptions) *AuthPolicy {
	t.Helper()
	p, err := NewAuthPolicy(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// routeRequest builds a request matching a route's pattern.
func routeRequest(t *testing.T, base string, rt Route) *http.Request {
	t.Helper()
	method, path, _ := strings.Cut(rt.Pattern, " ")
	path = strings.ReplaceAll(path, "{name}", "job")
	path = strings.ReplaceAll(path, "{$}", "") // the fleet page, "GET /{$}"
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// slowRoute reports routes whose handler runs for seconds once let in
// (profiles); the tests check only that the guard refuses them.
func slowRoute(rt Route) bool {
	return strings.HasSuffix(rt.Pattern, "/profile") || strings.HasSuffix(rt.Pattern, "/trace")
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, http.Header) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// TestAuthEveryRoute walks every route the router serves: without
// credentials or with a wrong password each answers 401 (health and
// readiness excepted), and each role reaches exactly its endpoints. A
// route added without a role fails here.
func TestAuthEveryRoute(t *testing.T) {
	a, reg := newAuthAPI(t, mustPolicy(t, AuthOptions{Web: testWebConfig(t), Authorization: testAuthorization}))
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	routes := a.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes: pprof or metrics missing", len(routes))
	}
	roleOf := map[string]Role{"writer": RoleWrite, "reader": RoleRead, "admin": RoleAdmin}
	refused := 0
	for _, rt := range routes {
		t.Run(rt.Pattern, func(t *testing.T) {
			code, hdr := do(t, srv.Client(), routeRequest(t, srv.URL, rt))
			if rt.Role == RoleOpen {
				if !strings.HasSuffix(rt.Pattern, " /-/healthy") && !strings.HasSuffix(rt.Pattern, " /-/ready") {
					t.Fatal("only health and readiness may be open")
				}
				if code != http.StatusOK {
					t.Fatalf("open endpoint without credentials: %d", code)
				}
				return
			}
			if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("no credentials: %d, WWW-Authenticate %q", code, hdr.Get("WWW-Authenticate"))
			}
			refused++
			for _, bad := range [][2]string{{"reader", "wrong"}, {"nobody", "nobody-secret"}, {"reader", ""}} {
				req := routeRequest(t, srv.URL, rt)
				req.SetBasicAuth(bad[0], bad[1])
				if code, _ := do(t, srv.Client(), req); code != http.StatusUnauthorized {
					t.Fatalf("bad credentials %s: %d", bad[0], code)
				}
				refused++
			}
			for user, role := range roleOf {
				if role == rt.Role && slowRoute(rt) {
					continue
				}
				req := routeRequest(t, srv.URL, rt)
				req.SetBasicAuth(user, user+"-secret")
				code, _ := do(t, srv.Client(), req)
				switch {
				case role != rt.Role && code != http.StatusForbidden:
					t.Errorf("%s (%s) on a %s endpoint: %d, want 403", user, role, rt.Role, code)
				case role == rt.Role && (code == http.StatusUnauthorized || code == http.StatusForbidden):
					t.Errorf("%s (%s) refused on its own endpoint: %d", user, role, code)
				}
				if code == http.StatusForbidden {
					refused++
				}
			}
		})
	}
	got := testutil.ToFloat64(a.auth.failures.WithLabelValues("unauthenticated")) +
		testutil.ToFloat64(a.auth.failures.WithLabelValues("forbidden"))
	if int(got) != refused {
		t.Fatalf("etcdgate_http_auth_refused_total = %v, want %d", got, refused)
	}
	_ = reg
}

// TestAuthWithoutAuthorization: users but no authorization block let
// every authenticated user do everything, as Prometheus does.
func TestAuthWithoutAuthorization(t *testing.T) {
	a, _ := newAuthAPI(t, mustPolicy(t, AuthOptions{Web: testWebConfig(t)}))
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for _, path := range []string{"/api/v1/write", "/-/reload"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		req.SetBasicAuth("reader", "reader-secret")
		if code, _ := do(t, srv.Client(), req); code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Fatalf("%s as reader: %d", path, code)
		}
		req, _ = http.NewRequest(http.MethodPost, srv.URL+path, nil)
		if code, _ := do(t, srv.Client(), req); code != http.StatusUnauthorized {
			t.Fatalf("%s without credentials: %d", path, code)
		}
	}
}

// TestAuthSwap: a new policy applies to the next request.
func TestAuthSwap(t *testing.T) {
	a, _ := newAuthAPI(t, nil)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	get := func(user string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/labels", nil)
		if user != "" {
			req.SetBasicAuth(user, user+"-secret")
		}
		code, _ := do(t, srv.Client(), req)
		return code
	}
	if c := get(""); c != http.StatusOK {
		t.Fatalf("open API: %d", c)
	}
	a.SetAuth(mustPolicy(t, AuthOptions{Web: testWebConfig(t), Authorization: testAuthorization}))
	if c, w := get(""), get("writer"); c != http.StatusUnauthorized || w != http.StatusForbidden {
		t.Fatalf("after swap: anonymous %d, writer %d", c, w)
	}
	if c := get("reader"); c != http.StatusOK {
		t.Fatalf("reader after swap: %d", c)
	}
	a.SetAuth(nil)
	if c := get(""); c != http.StatusOK {
		t.Fatalf("after opening again: %d", c)
	}
}

// TestLifecycleAndPprofOff: without the flags, reload answers 403 and
// profiles are not served.
func TestLifecycleAndPprofOff(t *testing.T) {
	env := newTestEnv(t)
	b := env.api.backend.Load()
	reloaded := false
	a := New(Options{Ingester: b.ingester, Storage: b.storage, Reload: func() error { reloaded = true; return nil }})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for _, m := range []string{http.MethodPost, http.MethodPut} {
		req, _ := http.NewRequest(m, srv.URL+"/-/reload", nil)
		if code, _ := do(t, srv.Client(), req); code != http.StatusForbidden {
			t.Fatalf("%s /-/reload with lifecycle off: %d", m, code)
		}
	}
	if reloaded {
		t.Fatal("reloaded with lifecycle off")
	}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		if code, _ := httpGet(t, srv.URL+p); code != http.StatusNotFound {
			t.Fatalf("%s with pprof off: %d", p, code)
		}
	}
	for _, rt := range a.Routes() {
		if strings.Contains(rt.Pattern, "pprof") {
			t.Fatalf("route %s with pprof off", rt.Pattern)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthHeadersAndRateLimit: http_server_config headers are on every
// answer, health included; rate_limit answers 429 but never to health.
func TestAuthHeadersAndRateLimit(t *testing.T) {
	wc := &web.Config{
		HTTPConfig:        web.HTTPConfig{Header: map[string]string{"X-Frame-Options": "deny"}},
		RateLimiterConfig: web.RateLimiterConfig{Burst: 2, Interval: 1 << 62},
	}
	a, _ := newAuthAPI(t, mustPolicy(t, AuthOptions{Web: wc}))
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	codes := []int{}
	for range 4 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/labels", nil)
		code, hdr := do(t, srv.Client(), req)
		if hdr.Get("X-Frame-Options") != "deny" {
			t.Fatalf("header missing: %v", hdr)
		}
		codes = append(codes, code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 || codes[3] != 429 {
		t.Fatalf("codes %v, want 200 200 429 429", codes)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/-/healthy", nil)
	if code, hdr := do(t, srv.Client(), req); code != 200 || hdr.Get("X-Frame-Options") != "deny" {
		t.Fatalf("health: %d %v", code, hdr)
	}
}

// TestAuthClientCerts serves over TLS with RequireAndVerifyClientCert: a
// certificate of the CA is accepted and mapped by its CN to its role; a
// certificate of another CA, or none, fails the handshake; an unknown CN
// of the right CA is refused with 403.
func TestAuthClientCerts(t *testing.T) {
	certs, other := etcdtest.NewCerts(t), etcdtest.NewCerts(t)
	wc := testWebConfig(t)
	wc.TLSConfig = web.TLSConfig{
		TLSCertPath: certs.ServerCert, TLSKeyPath: certs.ServerKey, ClientCAs: certs.CA,
		ClientAuth: "RequireAndVerifyClientCert", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13,
	}
	p := mustPolicy(t, AuthOptions{Web: wc, Authorization: certAuthorization})
	a, _ := newAuthAPI(t, p)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler(), TLSConfig: p.TLSConfig(), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	base := "https://" + ln.Addr().String()

	client := func(c *etcdtest.Certs, cn string) *http.Client {
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(certs.CA)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if c != nil {
			cf, kf := c.IssueClient(t, cn)
			pair, err := tls.LoadX509KeyPair(cf, kf)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	status := func(c *http.Client, method, path string) (int, error) {
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, tc := range []struct {
		name         string
		certs        *etcdtest.Certs
		cn           string
		read, write  int
		reload       int
		handshakeErr bool
	}{
		{name: "scraper writes", certs: certs, cn: "scraper", read: 403, write: 400, reload: 403},
		{name: "grafana reads", certs: certs, cn: "grafana", read: 200, write: 403, reload: 403},
		{name: "operator reloads", certs: certs, cn: "operator", read: 403, write: 403, reload: 200},
		{name: "unknown CN", certs: certs, cn: "stranger", read: 403, write: 403, reload: 403},
		{name: "other CA", certs: other, cn: "grafana", handshakeErr: true},
		{name: "no certificate", handshakeErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client(tc.certs, tc.cn)
			read, err := status(c, http.MethodGet, "/api/v1/labels")
			if tc.handshakeErr {
				if err == nil {
					t.Fatalf("served %d without a valid certificate", read)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			write, _ := status(c, http.MethodPost, "/api/v1/write")
			reload, _ := status(c, http.MethodPost, "/-/reload")
			if read != tc.read || write != tc.write || reload != tc.reload {
				t.Fatalf("read %d write %d reload %d, want %d %d %d", read, write, reload, tc.read, tc.write, tc.reload)
			}
		})
	}
}

// TestNewAuthPolicyRefuses: every inconsistent configuration is an
// ErrAuthConfig naming the problem, never the hash.
func TestNewAuthPolicyRefuses(t *testing.T) {
	wc := testWebConfig(t)
	certs := etcdtest.NewCerts(t)
	tlsOnly := &web.Config{TLSConfig: web.TLSConfig{TLSCertPath: certs.ServerCert, TLSKeyPath: certs.ServerKey}}
	badHash := &web.Config{Users: map[string]config.Secret{"u": "plaintext-password"}}
	for _, tc := range []struct {
		name string
		o    AuthOptions
		want string
	}{
		{"authorization without web config", AuthOptions{Authorization: testAuthorization}, "needs --web.config.file"},
		{"authorization without identities", AuthOptions{Web: tlsOnly, Authorization: &Authorization{Read: Principals{Users: []string{"x"}}}}, "needs basic_auth_users"},
		{"unknown user", AuthOptions{Web: wc, Authorization: &Authorization{Read: Principals{Users: []string{"ghost"}}}}, `user "ghost" is not in basic_auth_users`},
		{"client certs without verification", AuthOptions{Web: wc, Authorization: &Authorization{Write: Principals{ClientCerts: []string{"x"}}}}, "client_certs need"},
		{"empty name", AuthOptions{Web: wc, Authorization: &Authorization{Admin: Principals{Users: []string{" "}}}}, "empty user"},
		{"not a bcrypt hash", AuthOptions{Web: badHash}, `user "u": not a bcrypt hash`},
		{"missing key", AuthOptions{Web: &web.Config{TLSConfig: web.TLSConfig{TLSCertPath: certs.ServerCert}}}, "missing one of key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAuthPolicy(tc.o)
			if !errors.Is(err, ErrAuthConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrAuthConfig with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "plaintext-password") {
				t.Fatalf("error reveals the secret: %v", err)
			}
		})
	}
}

// TestLoadWebConfig reads Prometheus-format files: good ones parse with
// paths resolved next to the file, malformed ones are refused.
func TestLoadWebConfig(t *testing.T) {
	certs := etcdtest.NewCerts(t)
	dir := t.TempDir()
	for _, f := range []string{certs.ServerCert, certs.ServerKey, certs.CA} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yml", `tls_server_config:
  cert_file: server.pem
  key_file: server-key.pem
  client_ca_file: ca.pem
  client_auth_type: VerifyClientCertIfGiven
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  alice: `+string(hash)+"\n")
	c, err := LoadWebConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSConfig.TLSCertPath != filepath.Join(dir, "server.pem") || c.TLSConfig.MinVersion != tls.VersionTLS12 || !c.HTTPConfig.HTTP2 {
		t.Fatalf("parsed %+v", c.TLSConfig)
	}
	p, err := NewAuthPolicy(AuthOptions{Web: c})
	if err != nil || !p.Required() || !p.certAuth || p.TLSConfig() == nil {
		t.Fatalf("policy %+v, %v", p, err)
	}
	for name, body := range map[string]string{
		"unknown-key.yml":     "basic_auth_user: {}\n",
		"bad-yaml.yml":        "basic_auth_users: [\n",
		"plain-password.yml":  "basic_auth_users:\n  alice: hunter2\n",
		"password-as-map.yml": "basic_auth_users: hunter2\n",
		"password-as-seq.yml": "basic_auth_users:\n  alice: {hunter2: x}\n",
		"bad-header.yml":      "http_server_config:\n  headers:\n    Server: etcdgate\n",
		"missing-cert.yml":    "tls_server_config:\n  cert_file: nope.pem\n  key_file: server-key.pem\n",
		"bad-client-auth.yml": "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  client_auth_type: Maybe\n",
	} {
		_, err := LoadWebConfig(write(name, body))
		if !errors.Is(err, ErrAuthConfig) {
			t.Errorf("%s: error %v, want ErrAuthConfig", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error reveals the password: %v", name, err)
		}
	}
	if _, err := LoadWebConfig(filepath.Join(dir, "absent.yml")); !errors.Is(err, ErrAuthConfig) {
		t.Fatalf("absent file: %v", err)
	}
}

// TestAuthMalformedHeaders: broken Authorization headers are 401, never
// a 5xx or a pass.
func TestAuthMalformedHeaders(t *testing.T) {
	a, _ := newAuthAPI(t, mustPolicy(t, AuthOptions{Web: testWebConfig(t), Authorization: testAuthorization}))
	h := a.Handler()
	for _, v := range []string{
		"Basic", "Basic ", "Basic !!!notbase64", "Basic cmVhZGVy", // "reader" without a colon
		"Bearer reader-secret", "basic cmVhZGVyOnJlYWRlci1zZWNyZXQ=x", strings.Repeat("A", 64<<10),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("reader:reader-secret\x00")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("r", 100)+":"+strings.Repeat("p", 100))),
	} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/labels", nil)
		req.Header.Set("Authorization", v)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %.40q: %d", v, rec.Code)
		}
	}
}

// FuzzAuthorizationHeader: whatever the header, the guard answers 401
// unless it carries exactly the credentials of a user with the read role.
func FuzzAuthorizationHeader(f *testing.F) {
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("reader:reader-secret"))
	for _, s := range []string{good, "Basic", "Basic Og==", "Bearer x", "Basic cmVhZGVyOg=="} {
		f.Add(s)
	}
	var h http.Handler
	f.Fuzz(func(t *testing.T, v string) {
		if h == nil {
			a, _ := newAuthAPI(t, mustPolicy(t, AuthOptions{Web: testWebConfig(t), Authorization: testAuthorization}))
			h = a.Handler()
		}
		req := httptest.NewRequest(http.MethodGet, "/api/v1/labels", nil)
		req.Header.Set("Authorization", v)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		user, pass, ok := req.BasicAuth()
		valid := ok && (user == "reader" || user == "root") && pass == user+"-secret"
		if valid != (rec.Code == http.StatusOK) || (!valid && rec.Code != http.StatusUnauthorized) {
			t.Fatalf("Authorization %q: %d", v, rec.Code)
		}
	})
}

// BenchmarkAuthGuard measures the guard on a health-free endpoint with a
// cached verdict (the common case) and with bcrypt at cost 10 (the first
// request of a credential, or every request of a wrong one past the
// refused cache).
func BenchmarkAuthGuard(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewAuthPolicy(AuthOptions{Web: &web.Config{Users: map[string]config.Secret{"u": config.Secret(hash)}}})
	if err != nil {
		b.Fatal(err)
	}
	a := New(Options{Auth: p})
	ok := a.guard(RoleRead, func(w http.ResponseWriter, _ *http.Request) {})
	for _, bc := range []struct {
		name   string
		cached bool
	}{{"verdict=cached", true}, {"verdict=bcrypt", false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/api/v1/labels", nil)
				if bc.cached {
					req.SetBasicAuth("u", "pw")
				} else {
					i++
					req.SetBasicAuth("u", "pw"+strconv.Itoa(i)) // a new wrong password: always bcrypt
				}
				ok(httptest.NewRecorder(), req)
			}
		})
	}
}
