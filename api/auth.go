package api

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// AuthOptions are what an AuthPolicy is built from.
type AuthOptions struct {
	// Web is the parsed --web.config.file (LoadWebConfig); nil means
	// none: plain HTTP and every endpoint open, as in Prometheus.
	Web *web.Config
	// Authorization splits roles; nil lets every authenticated identity
	// use every endpoint (Prometheus's behaviour).
	Authorization *Authorization
}

// AuthPolicy is one immutable snapshot of who may do what. The API holds
// the current one behind an atomic pointer; a reload builds a new one
// (NewAuthPolicy fails without side effects) and swaps it in.
type AuthPolicy struct {
	users    map[string][]byte // basic-auth user -> bcrypt hash
	dummy    []byte            // hash compared for unknown users, so timing does not reveal them
	certAuth bool              // verified client certificates are identities
	tls      *tls.Config       // nil: plain HTTP
	http2    bool
	headers  map[string]string
	limiter  *rate.Limiter // nil: no rate limit
	// grants maps each identity to its roles; nil grants every role to
	// every authenticated identity.
	grants map[principal]roleSet
}

type principalKind uint8

const (
	kindUser principalKind = iota + 1
	kindCert
)

// principal is an authenticated identity: a basic-auth user or the
// subject common name of a verified client certificate.
type principal struct {
	kind principalKind
	name string
}

type roleSet uint8

func (s roleSet) has(r Role) bool { return s&(1<<r) != 0 }

// NewAuthPolicy validates o and builds its snapshot: the server TLS
// configuration (through the toolkit's ConfigToTLSConfig), the users and
// the role grants. Every user named in the authorization block must be a
// basic_auth_users entry, and client certificates must be verifiable.
func NewAuthPolicy(o AuthOptions) (*AuthPolicy, error) {
	p := &AuthPolicy{http2: true}
	if o.Web == nil {
		if o.Authorization != nil {
			return nil, fmt.Errorf("%w: web.authorization needs --web.config.file with basic_auth_users or client certificates", ErrAuthConfig)
		}
		return p, nil
	}
	w := o.Web
	p.http2, p.headers = w.HTTPConfig.HTTP2, w.HTTPConfig.Header
	if w.TLSConfig.IsEnabled() {
		cfg, err := web.ConfigToTLSConfig(&w.TLSConfig)
		if err != nil {
			return nil, fmt.Errorf("%w: tls_server_config: %w", ErrAuthConfig, err)
		}
		p.tls = cfg
		p.certAuth = cfg.ClientCAs != nil &&
			(cfg.ClientAuth == tls.RequireAndVerifyClientCert || cfg.ClientAuth == tls.VerifyClientCertIfGiven)
	}
	if w.RateLimiterConfig.Interval > 0 {
		p.limiter = rate.NewLimiter(rate.Every(w.RateLimiterConfig.Interval), w.RateLimiterConfig.Burst)
	}
	if len(w.Users) > 0 {
		p.users = make(map[string][]byte, len(w.Users))
		cost := bcrypt.MinCost // the dummy costs what the dearest real hash costs
		for u, h := range w.Users {
			c, err := bcrypt.Cost([]byte(h))
			if err != nil {
				// The message names the user, never the hash.
				return nil, fmt.Errorf("%w: basic_auth_users: user %q: not a bcrypt hash", ErrAuthConfig, u)
			}
			p.users[u] = []byte(h)
			cost = max(cost, c)
		}
		var err error
		if p.dummy, err = bcrypt.GenerateFromPassword([]byte("etcdgate unknown user"), cost); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAuthConfig, err)
		}
	}
	if o.Authorization == nil {
		return p, nil
	}
	if err := o.Authorization.Validate(); err != nil {
		return nil, err
	}
	if !p.Required() {
		return nil, fmt.Errorf("%w: web.authorization needs basic_auth_users, or client_auth_type RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file, in the web config file", ErrAuthConfig)
	}
	p.grants = make(map[principal]roleSet)
	for role, ps := range map[Role]Principals{RoleWrite: o.Authorization.Write, RoleRead: o.Authorization.Read, RoleAdmin: o.Authorization.Admin} {
		for _, u := range ps.Users {
			if _, ok := p.users[u]; !ok {
				return nil, fmt.Errorf("%w: web.authorization.%s: user %q is not in basic_auth_users of the web config file", ErrAuthConfig, role, u)
			}
			p.grants[principal{kindUser, u}] |= 1 << role
		}
		if len(ps.ClientCerts) > 0 && !p.certAuth {
			return nil, fmt.Errorf("%w: web.authorization.%s: client_certs need client_auth_type RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file", ErrAuthConfig, role)
		}
		for _, cn := range ps.ClientCerts {
			p.grants[principal{kindCert, cn}] |= 1 << role
		}
	}
	return p, nil
}

// Required reports whether endpoints other than health need credentials.
func (p *AuthPolicy) Required() bool { return len(p.users) > 0 || p.certAuth }

// TLSConfig is the server's TLS configuration, nil for plain HTTP. Its
// certificate is re-read at every handshake (the toolkit's behaviour), so
// a renewed certificate needs no reload.
func (p *AuthPolicy) TLSConfig() *tls.Config { return p.tls }

// HTTP2 reports whether HTTP/2 is offered over TLS (http_server_config.http2).
func (p *AuthPolicy) HTTP2() bool { return p.http2 }

// permits reports whether one of ids holds role.
func (p *AuthPolicy) permits(ids []principal, role Role) bool {
	if p.grants == nil {
		return len(ids) > 0
	}
	for _, id := range ids {
		if p.grants[id].has(role) {
			return true
		}
	}
	return false
}

// authenticator checks credentials against the current policy. It lives
// as long as the API; the policy is swapped on reload.
type authenticator struct {
	policy atomic.Pointer[AuthPolicy]
	// ok caches verified (user, hash, password) triples and bad the
	// refused ones, each bounded: bcrypt costs ~50 ms per check. They are
	// apart so that a flood of wrong passwords cannot evict the right ones.
	ok, bad verdictCache
	// slots bounds concurrent bcrypt comparisons, so a flood of unknown
	// passwords takes at most half the cores.
	slots    chan struct{}
	failures *prometheus.CounterVec
	logger   *slog.Logger
	lastLog  atomic.Int64 // unix nanos of the last refusal logged
	refused  atomic.Int64 // refusals since then
}

// authLogInterval throttles the refusal log: a scanner probing the port
// must not flood it.
const authLogInterval = 10 * time.Second

func newAuthenticator(reg prometheus.Registerer, logger *slog.Logger) *authenticator {
	au := &authenticator{
		ok:     verdictCache{max: 1024},
		bad:    verdictCache{max: 256},
		slots:  make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		logger: logger,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcdgate_http_auth_refused_total",
			Help: "HTTP requests refused by authentication or authorization, by reason (unauthenticated, forbidden, rate_limited).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"unauthenticated", "forbidden", "rate_limited"} {
		au.failures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(au.failures)
	}
	return au
}

// guard wraps an endpoint with the credential and role check of the
// current policy. Health endpoints (RoleOpen) only get the headers.
func (a *API) guard(role Role, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := a.auth.policy.Load()
		if p == nil {
			next(w, r)
			return
		}
		for k, v := range p.headers {
			w.Header().Set(k, v)
		}
		if role == RoleOpen {
			next(w, r)
			return
		}
		if p.limiter != nil && !p.limiter.Allow() {
			a.auth.refuse(r, "rate_limited")
			w.Header().Set("Retry-After", "1")
			http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
			return
		}
		if !p.Required() {
			next(w, r)
			return
		}
		ids, ok := a.auth.authenticate(r, p)
		if !ok {
			a.auth.refuse(r, "unauthenticated")
			w.Header().Set("WWW-Authenticate", `Basic realm="etcdgate", charset="UTF-8"`)
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		if !p.permits(ids, role) {
			a.auth.refuse(r, "forbidden")
			http.Error(w, fmt.Sprintf("%s: this endpoint needs the %s role", http.StatusText(http.StatusForbidden), role), http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

// authenticate returns the verified identities of r: the subject CN of a
// client certificate the handshake verified, and the basic-auth user if
// the password matches. Credentials that are sent must be right: a wrong
// password is refused even beside a valid certificate.
func (au *authenticator) authenticate(r *http.Request, p *AuthPolicy) ([]principal, bool) {
	ids := make([]principal, 0, 2)
	if p.certAuth && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		ids = append(ids, principal{kindCert, r.TLS.PeerCertificates[0].Subject.CommonName})
	}
	if user, pass, sent := r.BasicAuth(); sent && len(p.users) > 0 {
		if !au.verify(r, p, user, pass) {
			return nil, false
		}
		ids = append(ids, principal{kindUser, user})
	}
	return ids, len(ids) > 0
}

// verify checks a password with bcrypt (constant time in the password),
// against a dummy hash for unknown users, and caches the verdict.
func (au *authenticator) verify(r *http.Request, p *AuthPolicy, user, pass string) bool {
	hash, known := p.users[user]
	if !known {
		hash = p.dummy
	}
	key := verdictKey(user, hash, pass)
	if au.ok.has(key) {
		return known
	}
	if au.bad.has(key) {
		return false
	}
	select {
	case au.slots <- struct{}{}:
	case <-r.Context().Done():
		return false
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
	<-au.slots
	if err != nil || !known {
		au.bad.add(key)
		return false
	}
	au.ok.add(key)
	return true
}

// refuse counts a refusal and logs it, at most once per authLogInterval.
// The line names the path and the peer, never a user name or password.
func (au *authenticator) refuse(r *http.Request, reason string) {
	au.failures.WithLabelValues(reason).Inc()
	n := au.refused.Add(1)
	now := time.Now().UnixNano()
	last := au.lastLog.Load()
	if now-last < int64(authLogInterval) || !au.lastLog.CompareAndSwap(last, now) {
		return
	}
	au.refused.Add(-n)
	au.logger.Warn("HTTP request refused", "reason", reason, "path", r.URL.Path, "remote_addr", r.RemoteAddr,
		"refused_since_last_log", n)
}

// verdictKey digests a (user, hash, password) triple: the caches hold no
// password, and a changed hash after a reload misses the cache.
func verdictKey(user string, hash []byte, pass string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, b := range [][]byte{[]byte(user), hash, []byte(pass)} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// verdictCache is a bounded set of digests; when full it starts over,
// which costs one bcrypt per active credential.
type verdictCache struct {
	max int
	mu  sync.Mutex
	m   map[[sha256.Size]byte]struct{}
}

func (c *verdictCache) has(k [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[k]
	return ok
}

func (c *verdictCache) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[[sha256.Size]byte]struct{}, c.max)
	}
	c.m[k] = struct{}{}
}
