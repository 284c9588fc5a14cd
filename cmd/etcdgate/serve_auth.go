package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdgate/etcdgate/api"
)

// addSecurityFlags declares Prometheus's security flags on serve.
func (f *serveFlags) addSecurityFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.webConfigFile, "web.config.file", "",
		"Prometheus-format web config file: TLS (tls_server_config), client certificates, basic_auth_users (bcrypt), "+
			"http_server_config, rate_limit. Re-read on reload. Without it the API is plain HTTP and open")
	fs.BoolVar(&f.enableLifecycle, "web.enable-lifecycle", false, "serve POST|PUT /-/reload (SIGHUP always reloads)")
	fs.BoolVar(&f.enablePprof, "web.enable-pprof", false, "serve /debug/pprof/* (needs the admin role when auth is on)")
	fs.DurationVar(&f.readTimeout, "web.read-timeout", api.DefaultReadTimeout,
		"longest time of a request but a write, body and answer: a client that stops reading is cut at it")
}

// WebConfig is the web section of etcdgate's config: the roles of the
// identities the web config file authenticates.
type WebConfig struct {
	// Authorization splits writers, readers and admins; unset, every
	// authenticated identity may use every endpoint.
	Authorization *api.Authorization `yaml:"authorization"`
}

// Validate checks the authorization block on its own; NewAuthPolicy
// checks it against the web config file.
func (w WebConfig) Validate() error {
	if w.Authorization == nil {
		return nil
	}
	return w.Authorization.Validate()
}

// authState is the gateway's current auth policy. tls is fixed at start:
// the listener is plain or TLS for the life of the process.
type authState struct {
	policy atomic.Pointer[api.AuthPolicy]
	tls    bool
}

// newAuthPolicy reads the web config file (if any) and builds the policy
// with the config's roles.
func newAuthPolicy(webConfigFile string, cfg Config) (*api.AuthPolicy, error) {
	o := api.AuthOptions{Authorization: cfg.Web.Authorization}
	if webConfigFile != "" {
		w, err := api.LoadWebConfig(webConfigFile)
		if err != nil {
			return nil, err
		}
		o.Web = w
	}
	return api.NewAuthPolicy(o)
}

// reloadAuthPolicy re-reads the web config file for a reload. Turning TLS
// on or off needs a restart; such a reload is refused.
func (g *gateway) reloadAuthPolicy(cfg Config) (*api.AuthPolicy, error) {
	p, err := newAuthPolicy(g.flags.webConfigFile, cfg)
	if err != nil {
		return nil, err
	}
	if (p.TLSConfig() != nil) != g.auth.tls {
		return nil, errors.New("web config: turning TLS on or off needs a restart")
	}
	return p, nil
}

// serve serves HTTP on ln, over TLS when the web config file asks for it.
// Every handshake takes the TLS settings of the current policy, so a
// reload changes CAs and client_auth_type for new connections, and the
// certificate files are re-read at each handshake.
func (g *gateway) serve(ln net.Listener) error {
	p := g.auth.policy.Load()
	base := p.TLSConfig()
	if base == nil {
		return g.server.Serve(ln)
	}
	protos := []string{"h2", "http/1.1"}
	if !p.HTTP2() {
		protos = protos[1:]
		g.server.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	cfg := base.Clone()
	cfg.NextProtos = protos
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := g.auth.policy.Load().TLSConfig().Clone()
		c.NextProtos = protos
		return c, nil
	}
	g.server.TLSConfig = cfg
	return g.server.ServeTLS(ln, "", "")
}

// runCheckWebConfig validates web config files as serve reads them.
func runCheckWebConfig(paths []string, stdout, stderr io.Writer) int {
	code := 0
	for _, path := range paths {
		if _, err := newAuthPolicy(path, Config{}); err != nil {
			fmt.Fprintf(stderr, "FAILED: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "SUCCESS: %s is a valid web config file\n", path)
	}
	return code
}

// validate checks the registry etcd client's credentials: a user needs a
// password, a client certificate needs its key.
func (e RegistryEtcdConfig) validate() error {
	if err := e.Limits.Validate(); err != nil {
		return fmt.Errorf("registry.etcd.limits: %w", err)
	}
	if (e.Username == "") != (e.Password == "") {
		return errors.New("registry.etcd: username and password go together")
	}
	if (e.TLS.CertFile == "") != (e.TLS.KeyFile == "") {
		return errors.New("registry.etcd.tls: cert_file and key_file go together")
	}
	return nil
}

// clientConfig is the registry's etcd client: TLS when a CA or client
// certificate is given, and the etcd user when set.
func (e RegistryEtcdConfig) clientConfig() (clientv3.Config, error) {
	tc, err := e.TLS.tls().Load()
	if err != nil {
		return clientv3.Config{}, err
	}
	return clientv3.Config{
		Endpoints: e.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: tc, Username: e.Username, Password: string(e.Password),
	}, nil
}

// serverErrorLog is the HTTP server's error log: TLS handshake failures
// (a scanner, a client without a valid certificate) can come once per
// connection, so they are logged at most once per handshakeLogInterval
// with the number suppressed; other errors pass.
func serverErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(&handshakeThrottle{logger: logger}, "", 0)
}

const handshakeLogInterval = 10 * time.Second

type handshakeThrottle struct {
	logger     *slog.Logger
	mu         sync.Mutex
	last       time.Time // guarded by mu
	suppressed int       // guarded by mu
}

func (h *handshakeThrottle) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if !strings.Contains(msg, "TLS handshake error") {
		h.logger.Warn(msg)
		return len(p), nil
	}
	h.mu.Lock()
	now := time.Now()
	if now.Sub(h.last) < handshakeLogInterval {
		h.suppressed++
		h.mu.Unlock()
		return len(p), nil
	}
	n := h.suppressed
	h.last, h.suppressed = now, 0
	h.mu.Unlock()
	h.logger.Warn(msg, "suppressed_since_last_log", n)
	return len(p), nil
}
